//! Save files beside the SQLite database, for saves at or above `SAVE_FILE_THRESHOLD`
//! (`docs/adr/0020-save-files-beside-the-database.md`).
//!
//! A file is named by its content and its owner ([`file_name`]), so the versions of one user's
//! history that hold the same bytes share one file, and `blob_data.file` counts its references.
//! The order of a write is what makes a crash harmless:
//! 1. the body streams into a temporary file under `tmp/`, which is then synced;
//! 2. it is renamed to its name (or dropped when that file exists already) and the directory is
//!    synced;
//! 3. only then does the transaction that inserts the row naming it commit.
//!
//! A crash before 3 leaves a file that no row names; a crash after it, a row whose file is
//! durable. Files no row names are deleted by [`FileStore::collect`] after the write that
//! dropped the last row naming them, and by [`FileStore::sweep`] at start and periodically
//! (a crash between a commit and its clean-up, a clean-up that skipped its turn), and after an
//! account's deletion.
//!
//! Between 2 and 3 nothing may delete the file. Within the process, a write holds the store's
//! gate for reading from its placement until its commit, and clean-ups hold it for writing
//! while they decide and delete. Across processes (another instance started on the same
//! database by mistake, a backup), `clean-up.lock` does the same: writes and backups hold it
//! shared, a clean-up needs it exclusively and skips its turn when it cannot have it, so no file
//! that a write is about to name, or that a backup's database copy names, goes away. An upload
//! holds its temporary file locked while it writes it; a sweep deletes only temporary files
//! that nobody holds.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use auth_skeleton::db::Db;
use auth_skeleton::private_files;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// The directory of temporary files, under the store's root.
const TMP_DIR: &str = "tmp";
/// The lock that writes and backups hold shared and clean-ups exclusively (see the module's
/// documentation).
const CLEAN_UP_LOCK: &str = "clean-up.lock";
/// How much of an upload is gathered before it is written to its temporary file.
const SPOOL_BUFFER: usize = 256 * 1024;
/// How much of a file one read sends.
const READ_CHUNK: usize = 512 * 1024;
/// An empty temporary file younger than this may be one an upload has just created and not yet
/// locked: a sweep leaves it.
const FRESH_TEMP: Duration = Duration::from_secs(60);

/// The content-addressed files of one database.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
    gate: Arc<RwLock<()>>,
}

/// The file name of `user_id`'s bytes whose SHA-256 is `sha256`.
///
/// The owner is part of the name so that no file is shared between accounts: a deleted
/// account's bytes go with its rows, and the speed of an upload tells nothing about the
/// content of another account's saves.
pub fn file_name(user_id: &str, sha256: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"app-blob/file\0");
    hasher.update(user_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(sha256);
    hex::encode(hasher.finalize())
}

/// Whether `name` is a name [`file_name`] makes (and so safe as a path component).
fn is_file_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl FileStore {
    /// The store in `root` (created with mode `0700` when missing).
    pub fn open(root: PathBuf) -> io::Result<Arc<Self>> {
        private_files::create_dir_all(&root.join(TMP_DIR))?;
        Ok(Arc::new(Self {
            root,
            gate: Arc::new(RwLock::new(())),
        }))
    }

    /// The directory beside the SQLite database file `database`: `DATABASE.blobs`.
    pub fn beside(database: &Path) -> PathBuf {
        let mut root = database.as_os_str().to_owned();
        root.push(".blobs");
        PathBuf::from(root)
    }

    /// The directory beside `db`'s file; `None` for PostgreSQL and an in-memory SQLite
    /// database, which have no place beside them.
    pub fn beside_database(db: &Db) -> Option<PathBuf> {
        let Db::Sqlite(sqlite) = db else {
            return None;
        };
        let options = sqlite.writer.connect_options();
        let file = options.get_filename();
        // `sqlite::memory:` is `file:sqlx-in-memory-N` to sqlx.
        let name = file.to_string_lossy();
        let in_memory = name.is_empty()
            || name.starts_with(":memory:")
            || name.starts_with("file:sqlx-in-memory-")
            || name.contains("mode=memory");
        (!in_memory).then(|| Self::beside(file))
    }

    /// Where the file `name` is kept.
    pub fn path(&self, name: &str) -> PathBuf {
        path_in(&self.root, name)
    }

    /// A new temporary file for an upload.
    pub fn spool(self: &Arc<Self>) -> io::Result<Spool> {
        let token: [u8; 16] = rand::random();
        let path = self
            .root
            .join(TMP_DIR)
            .join(format!("{}.part", hex::encode(token)));
        let file = private_files::create_file(&path)?;
        let temp = Temp { path };
        // Held until the file is in place or deleted: a sweep leaves a locked file alone.
        file.try_lock().map_err(io::Error::from)?;
        Ok(Spool {
            temp,
            file: Some(file),
            buffer: Vec::with_capacity(SPOOL_BUFFER),
            len: 0,
        })
    }

    /// Moves a synced upload to the file `name`, durably, and holds off every clean-up (of
    /// this process: the gate; of others: `clean-up.lock`) until the returned [`Placed`] is
    /// dropped: drop it once the row naming the file has committed (or failed to).
    pub async fn place(self: &Arc<Self>, spooled: Spooled, name: &str) -> io::Result<Placed> {
        debug_assert!(is_file_name(name));
        let guard = self.gate.clone().read_owned().await;
        let lock = self.hold_off_clean_ups().await?;
        let target = self.path(name);
        // The temporary file stays locked (open) until it has been renamed or deleted.
        let Spooled { temp, file, .. } = spooled;
        let temp_path = temp.path.clone();
        blocking(move || -> io::Result<()> {
            let _locked = file;
            if target.exists() {
                // The same bytes of the same user are there already, durable since they were
                // placed: this copy is not needed.
                return fs::remove_file(&temp_path);
            }
            let dir = target.parent().expect("a file's path has its directory");
            if !dir.is_dir() {
                private_files::create_dir_all(dir)?;
                sync_dir(dir.parent().expect("the store's root"))?;
            }
            fs::rename(&temp_path, &target)?;
            crate::failpoint::hit("save-file-renamed");
            sync_dir(dir)
        })
        .await?;
        temp.forget();
        crate::failpoint::hit("save-file-placed");
        Ok(Placed {
            name: name.to_owned(),
            _lock: lock,
            _guard: guard,
        })
    }

    /// Opens the file `name` for reading; `None` when it is gone (collected after a write
    /// replaced its version).
    pub async fn open_file(&self, name: &str) -> io::Result<Option<(File, u64)>> {
        if !is_file_name(name) {
            return Err(io::Error::other(
                "a row names a file that is not a content address",
            ));
        }
        let path = self.path(name);
        blocking(move || match File::open(&path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                Ok(Some((file, len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Deletes those of `names` that no row names any more (after a write that dropped rows
    /// naming them, or that placed a file it did not commit). Skipped while a backup or another
    /// process's write holds `clean-up.lock`: the next sweep deletes them then. Returns how many
    /// files were deleted.
    pub async fn collect(&self, db: &Db, names: Vec<String>) -> io::Result<usize> {
        if names.is_empty() {
            return Ok(0);
        }
        // The gate first: it also queues this process's clean-ups one behind another, which the
        // lock (one per open file) would turn away from each other.
        let _gate = self.gate.write().await;
        let Some(_lock) = self.exclude_others().await? else {
            return Ok(0);
        };
        let mut orphans = Vec::new();
        for name in names {
            if is_file_name(&name)
                && !crate::store::file_is_named(db, &name)
                    .await
                    .map_err(io::Error::other)?
            {
                orphans.push(self.path(&name));
            }
        }
        blocking(move || remove_all(&orphans)).await
    }

    /// Deletes every file that no row names, and the temporary files no upload holds. Runs at
    /// start and periodically; skipped while a backup or another process's write holds
    /// `clean-up.lock`. Returns how many files were deleted.
    pub async fn sweep(&self, db: &Db) -> io::Result<usize> {
        let _gate = self.gate.write().await;
        let Some(_lock) = self.exclude_others().await? else {
            return Ok(0);
        };
        let named: HashSet<String> = crate::store::named_files(db)
            .await
            .map_err(io::Error::other)?
            .into_iter()
            .collect();
        let root = self.root.clone();
        blocking(move || {
            let mut doomed = Vec::new();
            for entry in fs::read_dir(&root)? {
                let entry = entry?;
                let dir = entry.path();
                let name = entry.file_name();
                if name == TMP_DIR {
                    for temp in fs::read_dir(&dir)? {
                        let temp = temp?.path();
                        if is_abandoned(&temp)? {
                            doomed.push(temp);
                        }
                    }
                } else if entry.file_type()?.is_dir() {
                    for file in fs::read_dir(&dir)? {
                        let file = file?;
                        let name = file.file_name();
                        let name = name.to_string_lossy();
                        if is_file_name(&name) && !named.contains(name.as_ref()) {
                            doomed.push(file.path());
                        }
                    }
                }
            }
            remove_all(&doomed)
        })
        .await
    }

    /// The exclusive side of `clean-up.lock`, if no backup or write of another process holds
    /// it.
    async fn exclude_others(&self) -> io::Result<Option<File>> {
        let path = self.root.join(CLEAN_UP_LOCK);
        blocking(move || {
            let lock = open_lock(&path)?;
            match lock.try_lock() {
                Ok(()) => Ok(Some(lock)),
                Err(fs::TryLockError::WouldBlock) => Ok(None),
                Err(fs::TryLockError::Error(e)) => Err(e),
            }
        })
        .await
    }

    /// Holds off every clean-up of the store (of any process) until the returned file is
    /// closed: what a write takes from placing its file to its commit, and a backup before it
    /// copies the database.
    pub async fn hold_off_clean_ups(&self) -> io::Result<File> {
        let path = self.root.join(CLEAN_UP_LOCK);
        blocking(move || {
            let lock = open_lock(&path)?;
            lock.lock_shared()?;
            Ok(lock)
        })
        .await
    }

    /// Copies the files `names` into the store directory `target` (created, mode `0700`),
    /// syncing each file and directory; returns how many bytes were copied.
    pub async fn copy_into(&self, target: PathBuf, names: Vec<String>) -> io::Result<u64> {
        let root = self.root.clone();
        blocking(move || {
            // There even when the copy names no file: a restore copies it back as it is.
            private_files::create_dir_all(&target)?;
            let mut copied = 0;
            let mut dirs = HashSet::new();
            for name in names {
                if !is_file_name(&name) {
                    return Err(io::Error::other(
                        "a row names a file that is not a content address",
                    ));
                }
                let dir = target.join(&name[..2]);
                if dirs.insert(dir.clone()) {
                    private_files::create_dir_all(&dir)?;
                }
                let mut from = File::open(path_in(&root, &name))?;
                let mut to = private_files::create_file(&dir.join(&name))?;
                copied += io::copy(&mut from, &mut to)?;
                to.sync_all()?;
            }
            for dir in &dirs {
                sync_dir(dir)?;
            }
            sync_dir(&target)?;
            Ok(copied)
        })
        .await
    }
}

/// An upload being written to its temporary file.
#[derive(Debug)]
pub struct Spool {
    temp: Temp,
    /// Taken while a write runs on the blocking pool.
    file: Option<File>,
    buffer: Vec<u8>,
    len: u64,
}

impl Spool {
    /// Appends `bytes` (written out in blocks of a few hundred KiB).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
        if self.buffer.len() >= SPOOL_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool lost"))?;
        let buffer = std::mem::take(&mut self.buffer);
        let (file, mut buffer, written) = blocking(move || {
            let written = file.write_all(&buffer);
            Ok((file, buffer, written))
        })
        .await?;
        written?;
        buffer.clear();
        self.file = Some(file);
        self.buffer = buffer;
        Ok(())
    }

    /// Writes out the rest and syncs the file: its bytes are durable once this returns.
    pub async fn finish(mut self) -> io::Result<Spooled> {
        self.flush().await?;
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool lost"))?;
        let file = blocking(move || file.sync_all().map(|()| file)).await?;
        crate::failpoint::hit("save-file-synced");
        Ok(Spooled {
            temp: self.temp,
            file,
            len: self.len,
        })
    }
}

/// An upload whose temporary file is complete and durable, not yet in place.
#[derive(Debug)]
pub struct Spooled {
    temp: Temp,
    /// Open, and so locked, until it is in place.
    file: File,
    /// Its size.
    pub len: u64,
}

/// A file in place whose row is being committed; see [`FileStore::place`].
#[derive(Debug)]
pub struct Placed {
    /// The file's name, for the row.
    pub name: String,
    _lock: File,
    _guard: OwnedRwLockReadGuard<()>,
}

/// A temporary file, deleted when dropped unless it was moved into place.
#[derive(Debug)]
struct Temp {
    path: PathBuf,
}

impl Temp {
    /// It was moved into place (or deleted): nothing to clean up.
    fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        // An upload refused or cut off: its bytes are not needed.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether the temporary file at `path` was left by an upload that ended without placing it:
/// no upload holds its lock, and it is not an empty file an upload may have just created and
/// not yet locked.
fn is_abandoned(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(false),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    let meta = file.metadata()?;
    let fresh = meta
        .modified()?
        .elapsed()
        .map_or(true, |age| age < FRESH_TEMP);
    Ok(meta.len() > 0 || !fresh)
}

/// The bytes `start..start + len` of `file`, in chunks read on the blocking pool.
pub fn read_range(
    file: File,
    start: u64,
    len: u64,
) -> impl Stream<Item = Result<Bytes, io::Error>> + 'static {
    let file = Arc::new(file);
    futures_util::stream::try_unfold((start, start + len), move |(at, end)| {
        let file = file.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(READ_CHUNK);
            let chunk = blocking(move || {
                let mut buffer = vec![0; want];
                file.read_exact_at(&mut buffer, at)?;
                Ok(buffer)
            })
            .await?;
            Ok(Some((Bytes::from(chunk), (at + want as u64, end))))
        }
    })
}

/// Where the file `name` is kept under `root`: in a directory of its first two characters, so
/// that no directory grows past a few thousand entries.
fn path_in(root: &Path, name: &str) -> PathBuf {
    root.join(&name[..2]).join(name)
}

fn open_lock(path: &Path) -> io::Result<File> {
    match private_files::create_file(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::OpenOptions::new().read(true).write(true).open(path)
        }
        Err(e) => Err(e),
    }
}

fn remove_all(paths: &[PathBuf]) -> io::Result<usize> {
    let mut removed = 0;
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Makes the entries of `dir` durable (a rename or a new file in it).
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_user_and_per_content() {
        let a = file_name("u1", &[1; 32]);
        assert!(is_file_name(&a));
        assert_eq!(a, file_name("u1", &[1; 32]));
        assert_ne!(a, file_name("u2", &[1; 32]));
        assert_ne!(a, file_name("u1", &[2; 32]));
        for bad in [
            "",
            "../etc/passwd",
            &a[..63],
            &a.to_uppercase(),
            "zz".repeat(32).as_str(),
        ] {
            assert!(!is_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_store_sits_beside_the_database() {
        assert_eq!(
            FileStore::beside(Path::new("data/app-blob.db")),
            PathBuf::from("data/app-blob.db.blobs")
        );
    }
}
