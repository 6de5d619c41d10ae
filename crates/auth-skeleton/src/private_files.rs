//! Files that only the service's own user may read: the SQLite database and its `-wal`/`-shm`
//! files, backups, key files, and the directories that hold them.
//!
//! They hold argon2 password hashes and session-token hashes; a local user who can copy them can
//! guess passwords offline. So whatever the process's umask (022 is the usual one, which would
//! give `0644` files and `0755` directories):
//!
//! - [`create_file`] and [`write_new`] create a *new* file with mode `0600` (owner read and
//!   write). The mode is given to `open(2)` itself, so the file is never readable by anyone else,
//!   not even for an instant, and an existing file is never touched (they fail instead);
//! - [`create_dir_all`] creates the missing directories of a path with mode `0700` and leaves
//!   existing ones as they are;
//! - [`exposure`] tells whether an existing file or directory is open to group or others, with
//!   the `chmod` that fixes it. Existing files are never changed behind the operator's back: the
//!   service warns at start instead (see `config::checks::exposed_files`).
//!
//! Code that writes a secret to disk (a generated key file, say) should create it with
//! [`write_new`] and add its path to `config::checks::exposed_files`, so that `serve`
//! and `check-config` warn when an operator's copy of it is readable by others:
//!
//! ```no_run
//! use std::path::Path;
//! use auth_skeleton::private_files;
//!
//! # fn demo(key: &[u8]) -> std::io::Result<()> {
//! let path = Path::new("/var/lib/app-rows/SECRET_KEY");
//! private_files::create_dir_all(path.parent().unwrap())?; // 0700 if it is new
//! match private_files::write_new(path, key) {
//!     Ok(()) => {}                                          // 0600, whatever the umask
//!     Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
//!         if let Some(exposed) = private_files::exposure(path)? {
//!             eprintln!("warning: {exposed}; run `{}`", exposed.fix());
//!         }
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! On platforms other than Unix there are no mode bits: files and directories are created
//! normally and [`exposure`] reports nothing.

use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The mode of every private file: read and write for its owner, nothing for anyone else.
pub const FILE_MODE: u32 = 0o600;

/// The mode of every private directory: its owner only.
pub const DIR_MODE: u32 = 0o700;

/// Creates a new, empty file at `path` with mode `0600`, whatever the umask, and returns it open
/// for writing.
///
/// Fails with [`io::ErrorKind::AlreadyExists`] when anything is at `path` already, including a
/// symbolic link (dangling or not): an existing file keeps its content and its mode.
///
/// ```no_run
/// use std::io::Write as _;
/// # fn demo() -> std::io::Result<()> {
/// let mut file = auth_skeleton::private_files::create_file("backup.db".as_ref())?;
/// file.write_all(b"...")?;
/// # Ok(()) }
/// ```
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

        // The umask can only take bits away from 0600: the file is never open to others.
        let file = options.mode(FILE_MODE).open(path)?;
        // A umask that takes the owner's own bits (0200, 0400) would leave a file the service
        // cannot reopen; set exactly 0600 on the file just created (through its descriptor).
        if file.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// Creates a new file at `path` with mode `0600` (see [`create_file`]), writes `contents` and
/// flushes them to disk. For keys and other secrets.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// auth_skeleton::private_files::write_new("SECRET_KEY".as_ref(), b"0123456789abcdef")?;
/// # Ok(()) }
/// ```
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = create_file(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` and its missing parents as directories with mode `0700`, whatever the umask.
/// Directories that exist already are left as they are (see [`exposure`]).
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// auth_skeleton::private_files::create_dir_all("data".as_ref())?;
/// # Ok(()) }
/// ```
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    match create_dir(path) {
        Ok(()) => Ok(()),
        // Created meanwhile by someone else: theirs, left as it is.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn create_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};

    std::fs::DirBuilder::new().mode(DIR_MODE).create(path)?;
    // As for files: restore the owner's bits if the umask took them, never adding any other.
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() && meta.permissions().mode() & 0o777 != DIR_MODE {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)
}

/// A file or directory that users other than its owner may read, write or enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// Its path, as given to [`exposure`].
    pub path: PathBuf,
    /// Its permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Whether it is a directory.
    pub is_dir: bool,
}

impl Exposure {
    /// The command that makes it private: `chmod 600 PATH` or `chmod 700 DIR`.
    pub fn fix(&self) -> String {
        let mode = if self.is_dir { DIR_MODE } else { FILE_MODE };
        format!("chmod {mode:o} {}", shell_quoted(&self.path))
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is open to users other than its owner (mode {:04o})",
            if self.is_dir {
                "the directory"
            } else {
                "the file"
            },
            self.path.display(),
            self.mode,
        )
    }
}

/// Whether the file or directory at `path` is open to group or others: `Ok(None)` when it is
/// private or does not exist. Symbolic links are followed (what matters is what they point to).
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// if let Some(exposed) = auth_skeleton::private_files::exposure("data/app-rows.db".as_ref())? {
///     // the file data/app-rows.db is open to ... (mode 0644); run `chmod 600 data/app-rows.db`
///     eprintln!("warning: {exposed}; run `{}`", exposed.fix());
/// }
/// # Ok(()) }
/// ```
pub fn exposure(path: &Path) -> io::Result<Option<Exposure>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;

        let mode = meta.permissions().mode() & 0o7777;
        Ok((mode & 0o077 != 0).then(|| Exposure {
            path: path.to_path_buf(),
            mode,
            is_dir: meta.is_dir(),
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

/// `path` as one shell word: as it is when that is safe, in single quotes otherwise.
fn shell_quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        create_dir_all(&dir).unwrap();

        let key = dir.join("SECRET_KEY");
        write_new(&key, b"k").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read(&key).unwrap(), b"k");
        assert_eq!(exposure(&key).unwrap(), None);
        assert_eq!(exposure(&dir).unwrap(), None);
        assert_eq!(exposure(&dir.join("missing")).unwrap(), None);
    }

    #[test]
    fn existing_files_are_neither_overwritten_nor_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = create_file(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(mode(&path), 0o644);

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &link).unwrap();
        let err = create_file(&link).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(!tmp.path().join("nowhere").exists());

        let dir = tmp.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&dir.join("inner")).unwrap();
        assert_eq!(mode(&dir), 0o755, "an existing directory is left alone");
        assert_eq!(mode(&dir.join("inner")), 0o700);
    }

    #[test]
    fn exposure_names_the_path_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("it's.db");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let exposed = exposure(&path).unwrap().expect("group-readable");
        assert_eq!(exposed.mode, 0o640);
        assert!(!exposed.is_dir);
        assert_eq!(
            exposed.fix(),
            format!(
                "chmod 600 '{}'",
                path.display().to_string().replace('\'', r"'\''")
            )
        );
        assert!(exposed.to_string().contains("mode 0640"), "{exposed}");

        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exposed = exposure(&dir).unwrap().expect("world-readable");
        assert!(exposed.is_dir);
        assert_eq!(exposed.fix(), format!("chmod 700 {}", dir.display()));
    }
}
