//! `cargo fleet`: which release of `auth-skeleton` each app runs.
//!
//! Prints the library's version in the workspace, then one line per app (every workspace member
//! under `apps/`): its version, the requirement it pins the library with, where that release
//! comes from (a directory of the repository, or a registry), and whether it is the current
//! release or behind it. With `--check` it exits 1 when an app's requirement is not an exact
//! `=X.Y.Z` pin, since anything looser lets a release reach an app without an edit of its
//! manifest.
//!
//! ```text
//! cargo fleet [--check] [--manifest-path PATH/Cargo.toml]
//! ```

use std::process::ExitCode;

use cargo_metadata::camino::Utf8Path;
use cargo_metadata::semver::{Comparator, Op, Version, VersionReq};
use cargo_metadata::{DependencyKind, MetadataCommand, Package};

/// The library whose pins the fleet reports.
const LIBRARY: &str = "auth-skeleton";

fn main() -> ExitCode {
    let mut check = false;
    let mut command = MetadataCommand::new();
    command.no_deps();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--manifest-path" => match args.next() {
                Some(path) => {
                    command.manifest_path(path);
                }
                None => return usage("--manifest-path needs a path"),
            },
            "-h" | "--help" => {
                println!("usage: cargo fleet [--check] [--manifest-path PATH/Cargo.toml]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let metadata = match command.exec() {
        Ok(metadata) => metadata,
        Err(e) => {
            eprintln!("fleet: cargo metadata failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let members = metadata.workspace_packages();
    let Some(library) = members.iter().find(|p| p.name.as_str() == LIBRARY) else {
        eprintln!("fleet: {LIBRARY} is not a member of this workspace");
        return ExitCode::FAILURE;
    };
    let apps_dir = metadata.workspace_root.join("apps");
    let mut apps: Vec<&Package> = members
        .iter()
        .copied()
        .filter(|p| p.manifest_path.starts_with(&apps_dir))
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));

    let dir = library
        .manifest_path
        .parent()
        .and_then(|d| d.strip_prefix(&metadata.workspace_root).ok())
        .map_or_else(String::new, |d| format!(" ({d})"));
    println!("{LIBRARY} {}{dir}", library.version);
    println!();
    let rows: Vec<[String; 5]> = apps
        .iter()
        .map(|app| row(app, &library.version, &metadata.workspace_root))
        .collect();
    let header = ["app", "version", "pins", "from", "status"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(&rows) {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
    let loose: Vec<&str> = rows
        .iter()
        .filter(|r| r[4].starts_with("not pinned"))
        .map(|r| r[0].as_str())
        .collect();
    if check && !loose.is_empty() {
        eprintln!(
            "fleet: {} must depend on {LIBRARY} with an exact requirement (=X.Y.Z); see docs/releasing.md",
            loose.join(", ")
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One app's line: name, version, requirement, source, status.
fn row(app: &Package, current: &Version, root: &Utf8Path) -> [String; 5] {
    let dependency = app
        .dependencies
        .iter()
        .find(|d| d.name == LIBRARY && d.kind == DependencyKind::Normal);
    let Some(dependency) = dependency else {
        return [
            app.name.to_string(),
            app.version.to_string(),
            "-".into(),
            "-".into(),
            format!("does not use {LIBRARY}"),
        ];
    };
    let from = match (&dependency.path, &dependency.source) {
        // A path shows which copy: the library's own directory, or a vendored release.
        (Some(path), _) => path.strip_prefix(root).unwrap_or(path).to_string(),
        (None, Some(source)) if source.is_crates_io() => "crates.io".to_owned(),
        (None, _) => dependency
            .registry
            .clone()
            .unwrap_or_else(|| "registry".to_owned()),
    };
    let status = match exact_pin(&dependency.req) {
        None => "not pinned: use =X.Y.Z".to_owned(),
        Some(pinned) if &pinned == current => "current".to_owned(),
        Some(pinned) if &pinned < current => format!("behind {current}"),
        Some(_) => format!("ahead of {current}"),
    };
    [
        app.name.to_string(),
        app.version.to_string(),
        dependency.req.to_string(),
        from,
        status,
    ]
}

/// The version an `=X.Y.Z` requirement names, or `None` for any other requirement.
fn exact_pin(req: &VersionReq) -> Option<Version> {
    match req.comparators.as_slice() {
        [
            Comparator {
                op: Op::Exact,
                major,
                minor: Some(minor),
                patch: Some(patch),
                pre,
            },
        ] => Some(Version {
            pre: pre.clone(),
            ..Version::new(*major, *minor, *patch)
        }),
        _ => None,
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("fleet: {problem}\nusage: cargo fleet [--check] [--manifest-path PATH/Cargo.toml]");
    ExitCode::from(2)
}
