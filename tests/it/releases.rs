//! The releases in `registry/` are the ones `release/releases.toml` lists, each one the files of
//! a commit that a clone of `main` has, and every fix an advisory names is in `main`'s history.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use semver::Version;
use serde::Deserialize;
use system_tests::{advisories, registry};

const LIBRARY: &str = "auth-skeleton";
/// Where the library lives in this repository, as `.cargo_vcs_info.json` says.
const PATH_IN_VCS: &str = "crates/auth-skeleton";

#[derive(Deserialize)]
struct Releases {
    release: Vec<Release>,
}

#[derive(Deserialize)]
struct Release {
    version: Version,
    branch: String,
    commit: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn git(args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("-C")
        .arg(root())
        .args(args)
        .output()
        .expect("git runs")
}

/// Whether `commit` is `HEAD` or one of its ancestors.
fn in_history(commit: &str) -> bool {
    git(&["merge-base", "--is-ancestor", commit, "HEAD"])
        .status
        .success()
}

/// The file at `path` in `commit`, or `None` when the commit has no such file.
fn file_at(commit: &str, path: &str) -> Option<Vec<u8>> {
    let output = git(&["show", &format!("{commit}:{path}")]);
    output.status.success().then_some(output.stdout)
}

fn listed() -> Vec<Release> {
    let text = std::fs::read_to_string(root().join("release/releases.toml")).expect("the list");
    toml::from_str::<Releases>(&text)
        .expect("release/releases.toml")
        .release
}

#[test]
fn the_registry_holds_exactly_the_listed_releases() {
    let published: BTreeSet<Version> = registry::published(&root().join("registry"), LIBRARY)
        .expect("the index")
        .into_iter()
        .map(|p| p.vers)
        .collect();
    let listed: BTreeSet<Version> = listed().into_iter().map(|r| r.version).collect();
    assert_eq!(published, listed);
}

/// Each published archive's files, but for what `cargo package` writes itself (the normalised
/// `Cargo.toml`, `Cargo.lock`, `.cargo_vcs_info.json`), are byte for byte the library's files at
/// the listed commit, and that commit is in `main`'s history.
#[test]
fn every_release_is_the_files_of_a_commit_in_main_s_history() {
    for release in listed() {
        let what = format!(
            "{LIBRARY} {} ({} {})",
            release.version, release.branch, release.commit
        );
        assert!(
            in_history(&release.commit),
            "{what}: not in the history of HEAD"
        );
        let archive = registry::crate_file(&root().join("registry"), LIBRARY, &release.version);
        let bytes = std::fs::read(&archive).expect("the archive");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let prefix = format!("{LIBRARY}-{}/", release.version);
        let mut compared = 0;
        for entry in tar.entries().expect("a tar archive") {
            let mut entry = entry.expect("an entry");
            let name = entry.path().expect("a path").display().to_string();
            let inside = name
                .strip_prefix(&prefix)
                .expect("under NAME-VERSION/")
                .to_owned();
            let in_repo = match inside.as_str() {
                ".cargo_vcs_info.json" | "Cargo.toml" | "Cargo.lock" => continue,
                "Cargo.toml.orig" => "Cargo.toml".to_owned(),
                other => other.to_owned(),
            };
            let mut packaged = Vec::new();
            entry.read_to_end(&mut packaged).expect("the entry's bytes");
            let committed = file_at(&release.commit, &format!("{PATH_IN_VCS}/{in_repo}"));
            assert!(
                committed.as_deref() == Some(packaged.as_slice()),
                "{what}: {inside} differs from {PATH_IN_VCS}/{in_repo} at the commit"
            );
            compared += 1;
        }
        assert!(compared > 20, "{what}: only {compared} files compared");
    }
}

#[test]
fn every_fix_an_advisory_names_is_in_main_s_history() {
    let advisories = advisories::load(&root()).expect("release/advisories.toml");
    assert!(!advisories.is_empty());
    for advisory in advisories {
        assert!(!advisory.fix.is_empty(), "{}: no fix named", advisory.id);
        for commit in &advisory.fix {
            assert!(
                in_history(commit),
                "{}: {commit} is not in the history of HEAD",
                advisory.id
            );
        }
    }
}
