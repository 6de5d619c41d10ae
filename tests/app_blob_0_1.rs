//! `app-blob` as it was on the 0.1 line of auth-skeleton, built for the mixed-fleet system tests
//! (`it/mixed_fleet.rs`) since the workspace's own app-blob moved to the current release: the
//! files of the commit recorded in `release/moves/app-blob-0.1.toml` (the last commit of `main`
//! where app-blob pinned 0.1.1 from the `fleet` registry), taken from the repository's history
//! with `git archive` and built with that commit's `Cargo.lock` (`--locked`), its registry and
//! its cargo configuration. `cargo build-app-blob-0-1` runs it (CI does, before the tests).
//!
//! The copy lives in `app-blob-0.1/src` under the workspace's target directory and builds into
//! `app-blob-0.1/target` there: a target directory of its own, since its `app-blob` binary has
//! the name of the workspace's. Only files whose contents changed are rewritten, so a second run
//! rebuilds nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The record of the commit to build, relative to the workspace root.
pub const RECORD: &str = "release/moves/app-blob-0.1.toml";

/// The directory under the workspace's target directory that holds the copy and its build.
const SCRATCH: &str = "app-blob-0.1";

/// What [`RECORD`] says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The app (`apps/<app>`), and its package's name.
    pub app: String,
    /// The release of the library it pins at `rev`, from the `fleet` registry.
    pub auth_skeleton: String,
    /// The commit of `main`.
    pub rev: String,
}

/// Reads [`RECORD`] in the workspace at `workspace`.
///
/// # Errors
/// When the file cannot be read or is not a record.
pub fn record(workspace: &Path) -> Result<Record, String> {
    let path = workspace.join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let record: Record = toml::from_str(&text).map_err(|e| format!("{RECORD}: {e}"))?;
    if record.rev.len() != 40 || !record.rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{RECORD}: rev must be a full commit hash, not `{}`",
            record.rev
        ));
    }
    Ok(record)
}

/// A scratch copy of the workspace as it was at the recorded commit.
pub struct OldAppBlob {
    /// What was built.
    pub record: Record,
    /// The copy's root.
    pub root: PathBuf,
    /// Its target directory.
    pub target: PathBuf,
}

impl OldAppBlob {
    /// Writes the files of the recorded commit into `app-blob-0.1/src` under the target directory
    /// of the workspace at `workspace`.
    ///
    /// # Errors
    /// When the record cannot be read, the commit is not in the repository (a shallow clone), its
    /// app does not pin the recorded release from the `fleet` registry, or a file cannot be
    /// written.
    pub fn prepare(workspace: &Path) -> Result<Self, String> {
        let record = record(workspace)?;
        let rev = &record.rev;
        let commit = format!("{rev}^{{commit}}");
        run(Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(["cat-file", "-e", &commit]))
        .map_err(|_| {
            format!(
                "{RECORD} names commit {rev}, which this clone does not have; a shallow clone \
                 lacks main's history (`git fetch --unshallow`)"
            )
        })?;
        let archive = output(Command::new("git").arg("-C").arg(workspace).args([
            "archive",
            "--format=tar",
            rev,
        ]))?;
        let staging = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        tar::Archive::new(archive.as_slice())
            .unpack(staging.path())
            .map_err(|e| format!("unpacking `git archive {rev}`: {e}"))?;
        check_pin(staging.path(), &record)?;

        let base = target_directory(workspace)?.join(SCRATCH);
        let old = Self {
            record,
            root: base.join("src"),
            target: base.join("target"),
        };
        sync(staging.path(), &old.root)?;
        Ok(old)
    }

    /// `cargo build --locked -p <app>` in the copy; returns the binary's path.
    ///
    /// # Errors
    /// When the build fails; the error holds cargo's output.
    pub fn build(&self) -> Result<PathBuf, String> {
        let app = &self.record.app;
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target)
            // The commit's own Cargo.lock, as it was built and tested on main.
            .args(["build", "--locked", "--package", app]);
        run(&mut command)?;
        Ok(self.target.join("debug").join(app))
    }
}

/// The app's manifest in the copy at `root` must pin the recorded release from the registry:
/// otherwise the record names the wrong commit.
fn check_pin(root: &Path, record: &Record) -> Result<(), String> {
    let path = format!("apps/{}/Cargo.toml", record.app);
    let text = std::fs::read_to_string(root.join(&path))
        .map_err(|e| format!("{path} at {}: {e}", record.rev))?;
    let manifest: toml::Table = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let entry = manifest
        .get("dependencies")
        .and_then(|d| d.get("auth-skeleton"));
    let field = |name: &str| entry.and_then(|e| e.get(name)).and_then(|v| v.as_str());
    let pin = format!("={}", record.auth_skeleton);
    if field("version") == Some(pin.as_str()) && field("registry") == Some("fleet") {
        Ok(())
    } else {
        Err(format!(
            "{path} at {} does not pin auth-skeleton {pin} from the fleet registry, as {RECORD} \
             says it does",
            record.rev
        ))
    }
}

/// The target directory cargo uses for the workspace at `workspace` (`target/`, or wherever
/// `CARGO_TARGET_DIR` or cargo's configuration puts it).
fn target_directory(workspace: &Path) -> Result<PathBuf, String> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(workspace)
        .manifest_path(workspace.join("Cargo.toml"))
        .no_deps()
        .exec()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    Ok(metadata.target_directory.into_std_path_buf())
}

/// Runs `command`; its standard output when it succeeds, else both outputs.
fn output(command: &mut Command) -> Result<Vec<u8>, String> {
    let output = command
        .output()
        .map_err(|e| format!("{command:?} did not start: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "{command:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`output`], as text.
fn run(command: &mut Command) -> Result<String, String> {
    output(command).map(|stdout| String::from_utf8_lossy(&stdout).into_owned())
}

/// Makes the files under `to` those under `from`, rewriting only the ones that differ so that
/// cargo sees unchanged files as unchanged.
fn sync(from: &Path, to: &Path) -> Result<(), String> {
    let wanted = files(from)?;
    for path in &wanted {
        let (source, dest) = (from.join(path), to.join(path));
        let bytes = std::fs::read(&source).map_err(|e| e.to_string())?;
        if std::fs::read(&dest).ok().as_ref() != Some(&bytes) {
            std::fs::create_dir_all(dest.parent().expect("a parent")).map_err(|e| e.to_string())?;
            std::fs::write(&dest, bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
        }
    }
    if to.exists() {
        for stale in files(to)?.difference(&wanted) {
            std::fs::remove_file(to.join(stale)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Every file below `root`, relative to it.
fn files(root: &Path) -> Result<BTreeSet<PathBuf>, String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("below the root");
                found.insert(relative.to_path_buf());
            }
        }
    }
    Ok(found)
}
