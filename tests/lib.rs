//! Helpers for the system tests in `it/`: locating the real app binaries that `cargo test
//! --workspace` builds next to the test executable. And the release tooling's shared parts:
//! the repository's registry of releases ([`registry`]), the known defects of releases
//! ([`advisories`]), and app-blob as it was on the 0.1 line, built for the mixed-fleet tests
//! ([`app_blob_0_1`]).

use std::path::PathBuf;

pub mod advisories;
pub mod app_blob_0_1;
pub mod registry;

/// The path of a workspace binary (`app-rows`, `app-blob`) in the current target profile.
///
/// # Panics
/// When the binary has not been built; build the workspace first (`cargo test --workspace` does).
pub fn binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/system-HASH -> target/<profile>/NAME
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("the target directory");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` (or `cargo test --workspace`) first",
        path.display()
    );
    path.display().to_string()
}
