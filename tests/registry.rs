//! The repository's registry of `auth-skeleton` releases, `registry/`.
//!
//! It is a cargo *local registry*: each release as its packaged file,
//! `registry/auth-skeleton-X.Y.Z.crate`, and an index with one JSON line per release,
//! `registry/index/au/th/auth-skeleton`, in cargo's index format
//! (<https://doc.rust-lang.org/cargo/reference/registry-index.html>). `.cargo/config.toml` puts it
//! in place of the registry named `fleet`, so an app writes
//! `auth-skeleton = { version = "=0.1.0", registry = "fleet" }` and builds without network.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, Package};
use semver::Version;
use serde::{Deserialize, Serialize};

/// The registry's directory, relative to the workspace root.
pub const DIRECTORY: &str = "registry";

/// The name apps give the registry (`registry = "fleet"`), defined in `.cargo/config.toml`.
pub const NAME: &str = "fleet";

/// The index of crates.io, where the library's own dependencies come from. Every dependency of an
/// index line names its registry: one that names none is looked up in this registry itself.
pub const CRATES_IO_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

/// The path of a crate's index file below the index directory: `1/a`, `2/ab`, `3/a/abc`, or
/// `au/th/auth-skeleton` (the first two pairs of letters, lower case).
pub fn index_path(name: &str) -> PathBuf {
    let lower = name.to_lowercase();
    match lower.len() {
        1 => Path::new("1").join(&lower),
        2 => Path::new("2").join(&lower),
        3 => Path::new("3").join(&lower[..1]).join(&lower),
        _ => Path::new(&lower[..2]).join(&lower[2..4]).join(&lower),
    }
}

/// The index file of `name` in the registry at `registry`.
pub fn index_file(registry: &Path, name: &str) -> PathBuf {
    registry.join("index").join(index_path(name))
}

/// The packaged file of one release in the registry at `registry`.
pub fn crate_file(registry: &Path, name: &str, version: &Version) -> PathBuf {
    registry.join(format!("{name}-{version}.crate"))
}

/// One release: one line of the index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The package's name.
    pub name: String,
    /// Its version.
    pub vers: Version,
    /// Every dependency, of every kind, as its packaged manifest declares it.
    pub deps: Vec<IndexDependency>,
    /// SHA-256 of the `.crate` file, in lower-case hex.
    pub cksum: String,
    /// Features whose members are plain features or `dependency/feature`.
    pub features: BTreeMap<String, Vec<String>>,
    /// Features that use `dep:` or `?/`, which older cargo versions cannot read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features2: BTreeMap<String, Vec<String>>,
    /// Whether the release is yanked.
    #[serde(default)]
    pub yanked: bool,
    /// The native library the package links, if any.
    #[serde(default)]
    pub links: Option<String>,
    /// The package's minimum supported Rust version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
    /// The index format: 2 when `features2` is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
}

/// One dependency of an index line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDependency {
    /// The name the package uses for it (its rename, if it has one).
    pub name: String,
    /// The version requirement.
    pub req: String,
    /// The features it enables.
    pub features: Vec<String>,
    /// Whether it is optional.
    pub optional: bool,
    /// Whether its default features are on.
    pub default_features: bool,
    /// The platform it is limited to (`cfg(...)` or a target triple), if any.
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    pub kind: String,
    /// The index of the registry it comes from.
    pub registry: Option<String>,
    /// The package's real name when `name` is a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl IndexEntry {
    /// The index line of `package`, read from the manifest of its unpacked `.crate` file by
    /// `cargo metadata`, whose SHA-256 is `cksum`.
    ///
    /// # Errors
    /// When a dependency does not come from a registry (a packaged crate has none such) or is of
    /// a kind cargo's index has no name for.
    pub fn of_package(package: &Package, cksum: String) -> Result<Self, String> {
        let deps = package
            .dependencies
            .iter()
            .map(|d| {
                let kind = match d.kind {
                    DependencyKind::Normal => "normal",
                    DependencyKind::Development => "dev",
                    DependencyKind::Build => "build",
                    _ => return Err(format!("dependency {}: unknown kind {}", d.name, d.kind)),
                };
                // crates.io is the one registry `cargo metadata` names by its source alone.
                let registry = match (&d.registry, &d.source) {
                    (Some(index), _) => index.clone(),
                    (None, Some(source)) if source.is_crates_io() => CRATES_IO_INDEX.to_owned(),
                    (None, source) => {
                        return Err(format!(
                            "dependency {} does not come from a registry (source: {})",
                            d.name,
                            source
                                .as_ref()
                                .map_or("none".to_owned(), ToString::to_string)
                        ));
                    }
                };
                let (name, package) = match &d.rename {
                    Some(rename) => (rename.clone(), Some(d.name.clone())),
                    None => (d.name.clone(), None),
                };
                Ok(IndexDependency {
                    name,
                    req: d.req.to_string(),
                    features: d.features.clone(),
                    optional: d.optional,
                    default_features: d.uses_default_features,
                    target: d.target.as_ref().map(ToString::to_string),
                    kind: kind.to_owned(),
                    registry: Some(registry),
                    package,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (features2, features): (BTreeMap<_, _>, BTreeMap<_, _>) = package
            .features
            .clone()
            .into_iter()
            .partition(|(_, members)| {
                members
                    .iter()
                    .any(|m| m.starts_with("dep:") || m.contains("?/"))
            });
        Ok(IndexEntry {
            name: package.name.to_string(),
            vers: package.version.clone(),
            deps,
            cksum,
            v: (!features2.is_empty()).then_some(2),
            features,
            features2,
            yanked: false,
            links: package.links.clone(),
            rust_version: package.rust_version.as_ref().map(ToString::to_string),
        })
    }
}

/// A release the index lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Published {
    /// Its version.
    pub vers: Version,
    /// Whether it is yanked.
    #[serde(default)]
    pub yanked: bool,
}

/// The releases of `name` in the registry at `registry`, in the index's order; none when the
/// registry or the crate's index file does not exist.
///
/// # Errors
/// When the index file cannot be read or a line is not an index entry.
pub fn published(registry: &Path, name: &str) -> Result<Vec<Published>, String> {
    let path = index_file(registry, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Whether two versions are one release for cargo, which ignores build metadata (`+...`).
fn same_release(a: &Version, b: &Version) -> bool {
    (a.major, a.minor, a.patch, &a.pre) == (b.major, b.minor, b.patch, &b.pre)
}

/// Adds one release to the registry at `registry`: its `.crate` file (`contents`, whose SHA-256
/// `entry.cksum` must be) and its line in the index, which stays ordered by version. Returns the
/// files written.
///
/// A release is never replaced: when the index lists the version, or its `.crate` file exists,
/// nothing is written and the error says so.
///
/// # Errors
/// When the version is already in the registry, or a file cannot be read or written.
pub fn add(registry: &Path, entry: &IndexEntry, contents: &[u8]) -> Result<[PathBuf; 2], String> {
    let index = index_file(registry, &entry.name);
    let crate_path = crate_file(registry, &entry.name, &entry.vers);
    let existing = match std::fs::read_to_string(&index) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", index.display())),
    };
    let mut lines: Vec<(Version, String)> = Vec::new();
    for (i, line) in existing.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let release: Published = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: {e}", index.display(), i + 1))?;
        if same_release(&release.vers, &entry.vers) {
            return Err(format!(
                "{} {} is already published ({} lists {}); a published release is never \
                 replaced: release the change under a new version",
                entry.name,
                entry.vers,
                index.display(),
                release.vers
            ));
        }
        lines.push((release.vers, line.to_owned()));
    }
    let line = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    lines.push((entry.vers.clone(), line));
    lines.sort_by(|a, b| a.0.cmp(&b.0));

    // The .crate first, never over an existing one; the index line, which makes the release
    // visible, last.
    std::fs::create_dir_all(registry).map_err(|e| format!("{}: {e}", registry.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&crate_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists although the index does not list {} {}; a published release is never \
                 replaced: remove the stray file if it was never used",
                crate_path.display(),
                entry.name,
                entry.vers
            ),
            _ => format!("{}: {e}", crate_path.display()),
        })?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", crate_path.display()))
        .and_then(|()| write_index(&index, &lines));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&crate_path);
        return Err(e);
    }
    Ok([crate_path, index])
}

/// Replaces the index file with `lines` at once: a new file next to it, renamed over it.
fn write_index(index: &Path, lines: &[(Version, String)]) -> Result<(), String> {
    let dir = index.parent().expect("an index file has a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut text = String::new();
    for (_, line) in lines {
        text.push_str(line);
        text.push('\n');
    }
    let new = index.with_extension("new");
    std::fs::write(&new, text)
        .and_then(|()| std::fs::rename(&new, index))
        .map_err(|e| format!("{}: {e}", index.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(index_path("a"), Path::new("1/a"));
        assert_eq!(index_path("ab"), Path::new("2/ab"));
        assert_eq!(index_path("abc"), Path::new("3/a/abc"));
        assert_eq!(
            index_path("Auth-Skeleton"),
            Path::new("au/th/auth-skeleton")
        );
    }
}
