//! The move of `app-blob` from the 0.1 line to the current release, done in a scratch copy of
//! the workspace exactly as `docs/releasing.md` tells an app team ("Moving an app to a release"):
//! apply the patches in `release/moves/`, point both of its `auth-skeleton` entries back at the
//! library's directory with the current pin, build, test. `cargo move-app-blob` runs it (CI
//! does, on every run); the fleet's system tests use the binary it builds to upgrade a database
//! written by the real 0.1 binary.
//!
//! The copy lives in `target/move-app-blob/src` and builds into `target/move-app-blob/target`:
//! a target directory of its own, since its `app-blob` binary has the name of the workspace's.
//! Only files whose contents changed are rewritten, so a second run rebuilds nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The patches of the move, in the order they apply.
pub const PATCHES: [&str; 2] = [
    "release/moves/app-blob-0.1-to-0.2.patch",
    "release/moves/app-blob-0.1-to-0.2-tests-and-bench.patch",
];

/// The app's manifest, whose two entries of the library change.
const MANIFEST: &str = "apps/app-blob/Cargo.toml";

/// The entries as the app has them on the 0.1 line; after the move they point at the library's
/// directory with the current release's pin ([`path_entries`]).
const REGISTRY_ENTRIES: [&str; 2] = [
    r#"auth-skeleton = { version = "=0.1.1", registry = "fleet" }"#,
    r#"auth-skeleton = { version = "=0.1.1", registry = "fleet", features = ["testing"] }"#,
];

/// The entries after the move, pinning `version`.
fn path_entries(version: &str) -> [String; 2] {
    [
        format!(
            r#"auth-skeleton = {{ path = "../../crates/auth-skeleton", version = "={version}" }}"#
        ),
        r#"auth-skeleton = { path = "../../crates/auth-skeleton", features = ["testing"] }"#
            .to_owned(),
    ]
}

/// The library's version in the workspace at `root` (its manifest's first `version = "..."`).
fn library_version(root: &Path) -> Result<String, String> {
    let manifest = root.join("crates/auth-skeleton/Cargo.toml");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no version", manifest.display()))
}

/// A scratch copy of the workspace with `app-blob` moved.
pub struct Moved {
    /// The copy's root.
    pub root: PathBuf,
    /// Its target directory.
    pub target: PathBuf,
}

impl Moved {
    /// Copies the workspace at `workspace` (its tracked files, as they are in the working tree)
    /// into `target/move-app-blob/src` and makes the move there.
    ///
    /// # Errors
    /// When a file cannot be copied, a patch does not apply (the patches no longer fit the
    /// source: renew them, `release/moves/README.md`) or the manifest lacks an entry to edit.
    pub fn prepare(workspace: &Path) -> Result<Self, String> {
        let staging = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let listed = run(Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(["ls-files", "-z"]))?;
        for path in listed.split('\0').filter(|p| !p.is_empty()) {
            let from = workspace.join(path);
            if !from.is_file() {
                continue; // deleted in the working tree
            }
            let to = staging.path().join(path);
            std::fs::create_dir_all(to.parent().expect("a parent")).map_err(|e| e.to_string())?;
            std::fs::copy(&from, &to).map_err(|e| format!("{path}: {e}"))?;
        }
        for patch in PATCHES {
            run(Command::new("git")
                .current_dir(staging.path())
                .arg("apply")
                .arg(workspace.join(patch)))
            .map_err(|e| format!("{patch} does not apply: {e}"))?;
        }
        let manifest = staging.path().join(MANIFEST);
        let mut text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        let version = library_version(workspace)?;
        for (before, after) in REGISTRY_ENTRIES.iter().zip(path_entries(&version)) {
            if !text.contains(before) {
                return Err(format!("{MANIFEST} has no line `{before}`"));
            }
            text = text.replace(before, &after);
        }
        std::fs::write(&manifest, text).map_err(|e| e.to_string())?;

        let base = workspace.join("target/move-app-blob");
        let moved = Self {
            root: base.join("src"),
            target: base.join("target"),
        };
        sync(staging.path(), &moved.root)?;
        Ok(moved)
    }

    /// `cargo build -p app-blob` in the copy; returns the binary's path.
    ///
    /// # Errors
    /// When the build fails; the error holds cargo's output.
    pub fn build(&self) -> Result<PathBuf, String> {
        run(&mut self.cargo(&["build", "-p", "app-blob"]))?;
        Ok(self.target.join("debug/app-blob"))
    }

    /// `cargo test -p app-blob` in the copy (on both databases when `TEST_POSTGRES_URL` is set);
    /// returns cargo's output.
    ///
    /// # Errors
    /// When a test fails; the error holds cargo's output.
    pub fn test(&self) -> Result<String, String> {
        run(&mut self.cargo(&["test", "-p", "app-blob"]))
    }

    fn cargo(&self, args: &[&str]) -> Command {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target)
            // Every crate the copy needs is the workspace's, already fetched; the registry of
            // releases is in the copy itself.
            .arg("--offline")
            .args(args);
        command
    }
}

/// Runs `command`; its standard output when it succeeds, else both outputs.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("{command:?} did not start: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{command:?}: {}\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Makes the files under `to` those under `from`, rewriting only the ones that differ so that
/// cargo sees unchanged files as unchanged; `Cargo.lock`, which cargo rewrites, is copied only
/// when missing.
fn sync(from: &Path, to: &Path) -> Result<(), String> {
    let wanted = files(from)?;
    for path in &wanted {
        let (source, dest) = (from.join(path), to.join(path));
        let bytes = std::fs::read(&source).map_err(|e| e.to_string())?;
        let lock = path == Path::new("Cargo.lock");
        let same = match std::fs::read(&dest) {
            Ok(existing) => lock || existing == bytes,
            Err(_) => false,
        };
        if !same {
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
