//! `cargo publish-local`: adds a packaged release of `auth-skeleton` to the repository's registry.
//!
//! Reads the `.crate` file that `cargo package -p auth-skeleton` wrote, unpacks it into a
//! temporary directory, reads its manifest with `cargo metadata`, and writes the file and its
//! index line (with the file's SHA-256) into `registry/` (or `--registry DIR`). The index stays
//! ordered by version. A version already in the registry is refused and nothing is written, as is
//! a file that is not a packaged `auth-skeleton`.
//!
//! ```text
//! cargo publish-local [--registry DIR] target/package/auth-skeleton-X.Y.Z.crate
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cargo_metadata::MetadataCommand;
use sha2::{Digest, Sha256};
use system_tests::registry::{self, IndexEntry};

/// The only package this registry holds.
const LIBRARY: &str = "auth-skeleton";

const USAGE: &str = "usage: cargo publish-local [--registry DIR] PATH/auth-skeleton-X.Y.Z.crate";

fn main() -> ExitCode {
    let mut registry_dir: Option<PathBuf> = None;
    let mut crate_path: Option<PathBuf> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--registry") => match args.next() {
                Some(dir) => registry_dir = Some(dir.into()),
                None => return usage("--registry needs a directory"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(flag) if flag.starts_with('-') => {
                return usage(&format!("unknown argument {flag}"));
            }
            _ if crate_path.is_none() => crate_path = Some(arg.into()),
            _ => return usage("one .crate file at a time"),
        }
    }
    let Some(crate_path) = crate_path else {
        return usage("which .crate file?");
    };
    let registry_dir = match registry_dir {
        Some(dir) => dir,
        None => match MetadataCommand::new().no_deps().exec() {
            Ok(metadata) => metadata
                .workspace_root
                .join(registry::DIRECTORY)
                .into_std_path_buf(),
            Err(e) => {
                eprintln!("publish-local: cannot find the workspace's registry/: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match publish(&crate_path, shown(&registry_dir)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("publish-local: {}: {e}", crate_path.display());
            ExitCode::FAILURE
        }
    }
}

/// Publishes the `.crate` file at `crate_path` into the registry at `registry_dir`; the report and
/// the errors name the files below `registry_dir` as it is written.
fn publish(crate_path: &Path, registry_dir: &Path) -> Result<String, String> {
    let contents = std::fs::read(crate_path).map_err(|e| e.to_string())?;
    let cksum = format!("{:x}", Sha256::digest(&contents));

    let unpacked = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    tar::Archive::new(flate2::read::GzDecoder::new(contents.as_slice()))
        .unpack(unpacked.path())
        .map_err(|e| format!("not a packaged crate (a .tar.gz): {e}"))?;
    // A packaged crate is one directory, NAME-VERSION, with the normalised Cargo.toml in it.
    let top: Vec<PathBuf> = std::fs::read_dir(unpacked.path())
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| e.to_string())?;
    let [dir] = top.as_slice() else {
        return Err(format!(
            "not a packaged crate: {} entries at the top of the archive, where cargo package \
             writes one directory",
            top.len()
        ));
    };
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err("not a packaged crate: no Cargo.toml in the archive's directory".to_owned());
    }
    let metadata = MetadataCommand::new()
        .no_deps()
        .manifest_path(&manifest)
        .current_dir(unpacked.path())
        .exec()
        .map_err(|e| format!("cargo metadata of its Cargo.toml: {e}"))?;
    let [package] = metadata.packages.as_slice() else {
        return Err("its Cargo.toml is not one package".to_owned());
    };
    if package.name.as_str() != LIBRARY {
        return Err(format!(
            "it is the package {} {}, and this registry holds only {LIBRARY}",
            package.name, package.version
        ));
    }
    let expected = format!("{}-{}", package.name, package.version);
    if dir.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(format!(
            "not a packaged crate: its directory is {}, where cargo package writes {expected}",
            dir.display()
        ));
    }

    let entry = IndexEntry::of_package(package, cksum)?;
    let [crate_file, index_file] = registry::add(registry_dir, &entry, &contents)?;
    Ok(format!(
        "published {} {} to {}\n  {}\n  {} (sha256 {})",
        entry.name,
        entry.vers,
        registry_dir.display(),
        crate_file.display(),
        index_file.display(),
        entry.cksum
    ))
}

/// `path` relative to the current directory when it is below it.
fn shown(path: &Path) -> &Path {
    std::env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path)
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("publish-local: {problem}\n{USAGE}");
    ExitCode::from(2)
}
