//! `cargo fleet`: which release of `auth-skeleton` each app runs.
//!
//! Prints the library's version in the workspace, the releases published in the repository's
//! registry (`registry/`) and the known advisories (`release/advisories.toml`), then one line per
//! app (every workspace member under `apps/`): its version, the requirement it pins the library
//! with, where that release comes from (`path DIR` in the repository, or `registry NAME`),
//! whether it is the newest release (of the workspace's library and the registry's) or behind
//! it, and the advisories that affect its pin. With `--check` it exits 1 when an app's
//! requirement is not an exact `=X.Y.Z` pin, since anything looser lets a release reach an app
//! without an edit of its manifest, or when an app pins a release that an advisory affects.
//!
//! The table reads each app's own `[dependencies]` entry. The advisories are also checked on
//! what cargo resolves: every release of the library that any workspace member links, through any
//! entry (target-specific, build, renamed, or through another crate of the workspace), but not
//! its dev-dependencies, which only its tests link. With `--check` an affected release linked
//! that way fails too, and so does a dependency graph that cannot be resolved offline.
//!
//! ```text
//! cargo fleet [--check] [--manifest-path PATH/Cargo.toml]
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;

use cargo_metadata::camino::Utf8Path;
use cargo_metadata::semver::{Comparator, Op, Version, VersionReq};
use cargo_metadata::{Dependency, DependencyKind, Metadata, MetadataCommand, Package, PackageId};
use system_tests::advisories::{self, Advisory};
use system_tests::registry;

/// The library whose pins the fleet reports.
const LIBRARY: &str = "auth-skeleton";

fn main() -> ExitCode {
    let mut check = false;
    let mut command = MetadataCommand::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--manifest-path" => match args.next() {
                Some(path) => {
                    // Cargo reads its configuration (where the `fleet` registry is) from the
                    // directory it runs in: the workspace's, not the caller's.
                    if let Some(dir) = Path::new(&path).parent().filter(|d| d.is_dir()) {
                        command.current_dir(dir);
                    }
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
    // The resolved graph, for the releases linked through any entry; offline, since the
    // registry of releases is in the repository and everything else is in Cargo.lock.
    let mut resolved = command.clone();
    resolved.other_options(vec!["--offline".to_owned()]);
    command.no_deps();
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
    let root = &metadata.workspace_root;
    let published: Vec<Version> =
        match registry::published(root.join(registry::DIRECTORY).as_std_path(), LIBRARY) {
            Ok(published) => published
                .into_iter()
                .filter(|p| !p.yanked)
                .map(|p| p.vers)
                .collect(),
            Err(e) => {
                eprintln!("fleet: the registry: {e}");
                return ExitCode::FAILURE;
            }
        };
    let advisories = match advisories::load(root.as_std_path()) {
        Ok(advisories) => advisories,
        Err(e) => {
            eprintln!("fleet: the advisories: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fleet = Fleet {
        root,
        current: &library.version,
        published: &published,
        advisories: &advisories,
        registries: registry_names(root.as_std_path()),
    };
    let apps_dir = root.join("apps");
    let mut apps: Vec<&Package> = members
        .iter()
        .copied()
        .filter(|p| p.manifest_path.starts_with(&apps_dir))
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));

    let dir = library
        .manifest_path
        .parent()
        .and_then(|d| d.strip_prefix(root).ok())
        .map_or_else(String::new, |d| format!(" ({d})"));
    println!("{LIBRARY} {}{dir}", library.version);
    println!(
        "published in {}/: {}",
        registry::DIRECTORY,
        list(published.iter().map(ToString::to_string), "none")
    );
    println!(
        "advisories in {}: {}",
        advisories::FILE,
        list(advisories.iter().map(|a| a.id.clone()), "none")
    );
    println!();
    let rows: Vec<Row> = apps.iter().map(|app| fleet.row(app)).collect();
    let header = ["app", "version", "pins", "from", "status", "advisories"].map(str::to_owned);
    let cells: Vec<[String; 6]> = std::iter::once(header)
        .chain(rows.iter().map(Row::cells))
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| cells.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in &cells {
        let mut line = String::new();
        for (cell, width) in r.iter().zip(&widths) {
            line.push_str(&format!("{cell:width$}  "));
        }
        line.push_str(&r[5]);
        println!("{}", line.trim_end());
    }

    let loose: Vec<&str> = rows
        .iter()
        .filter(|r| r.uses_library && r.exact.is_none())
        .map(|r| r.app.as_str())
        .collect();
    let mut failed = false;
    if check && !loose.is_empty() {
        eprintln!(
            "fleet: {} must depend on {LIBRARY} with an exact requirement (=X.Y.Z); see docs/releasing.md",
            loose.join(", ")
        );
        failed = true;
    }
    let affected = rows.iter().filter(|r| check && !r.advisories.is_empty());
    for row in affected {
        let ids = list(row.advisories.iter().map(|a| a.id.clone()), "");
        let pinned = row
            .exact
            .as_ref()
            .map_or_else(|| row.pins.clone(), ToString::to_string);
        let fixed = fleet.fixed_after(row);
        let advice = if fixed.is_empty() {
            "no release without them is published yet".to_owned()
        } else {
            let fixed: Vec<String> = fixed.iter().map(ToString::to_string).collect();
            format!("move it to {}", fixed.join(" or "))
        };
        eprintln!(
            "fleet: {} pins {LIBRARY} {pinned}, affected by {ids} ({}): {advice}; see docs/releasing.md",
            row.app,
            advisories::FILE
        );
        failed = true;
    }
    match resolved.exec() {
        Ok(graph) => {
            for linked in linked_releases(&graph) {
                let ids: Vec<String> = advisories
                    .iter()
                    .filter(|a| a.affects(&linked.version))
                    .map(|a| a.id.clone())
                    .collect();
                // An app's own pin is reported on its line already.
                let shown = rows
                    .iter()
                    .any(|r| r.app == linked.member && r.exact.as_ref() == Some(&linked.version));
                if ids.is_empty() || shown {
                    continue;
                }
                eprintln!(
                    "fleet: {} links {LIBRARY} {} ({}), affected by {} ({})",
                    linked.member,
                    linked.version,
                    linked.path.join(" -> "),
                    ids.join(", "),
                    advisories::FILE
                );
                failed |= check;
            }
        }
        Err(_) => {
            eprintln!(
                "fleet: the workspace's dependency graph does not resolve offline, so the \
                 releases it links were not checked (`cargo metadata --offline` says why)"
            );
            failed |= check;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A release of the library that a workspace member links.
struct Linked {
    member: String,
    version: Version,
    /// The packages from the member to the library, as `name version`.
    path: Vec<String>,
}

/// Every release of the library in the closure of each workspace member's normal and build
/// dependencies, with one path that leads to it.
fn linked_releases(graph: &Metadata) -> Vec<Linked> {
    let Some(resolve) = &graph.resolve else {
        return Vec::new();
    };
    let packages: HashMap<&PackageId, &Package> =
        graph.packages.iter().map(|p| (&p.id, p)).collect();
    let nodes: HashMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let shown = |id: &PackageId| {
        packages
            .get(id)
            .map_or_else(|| id.repr.clone(), |p| format!("{} {}", p.name, p.version))
    };
    let mut found = Vec::new();
    for member in &graph.workspace_members {
        let Some(root) = packages.get(member) else {
            continue;
        };
        if root.name.as_str() == LIBRARY {
            continue;
        }
        let mut parent: HashMap<&PackageId, &PackageId> = HashMap::new();
        let mut seen: BTreeSet<&PackageId> = BTreeSet::from([member]);
        let mut queue = vec![member];
        while let Some(id) = queue.pop() {
            let Some(node) = nodes.get(id) else {
                continue;
            };
            for dep in &node.deps {
                // The member's own dev-dependencies reach its tests, not what it ships.
                let shipped = dep
                    .dep_kinds
                    .iter()
                    .any(|k| k.kind != DependencyKind::Development);
                if (id == member && !shipped) || !seen.insert(&dep.pkg) {
                    continue;
                }
                parent.insert(&dep.pkg, id);
                queue.push(&dep.pkg);
            }
        }
        for id in seen {
            let Some(package) = packages.get(id) else {
                continue;
            };
            if package.name.as_str() != LIBRARY {
                continue;
            }
            let mut path = vec![shown(id)];
            let mut at = id;
            while let Some(up) = parent.get(at) {
                path.push(shown(up));
                at = up;
            }
            path.reverse();
            found.push(Linked {
                member: root.name.to_string(),
                version: package.version.clone(),
                path,
            });
        }
    }
    found
}

/// What the app lines are measured against.
struct Fleet<'a> {
    root: &'a Utf8Path,
    /// The library's version in the workspace.
    current: &'a Version,
    /// The releases in the repository's registry, not yanked.
    published: &'a [Version],
    advisories: &'a [Advisory],
    /// The registries cargo's configuration names: (name, index URL).
    registries: Vec<(String, String)>,
}

/// One app's line.
struct Row<'a> {
    app: String,
    version: String,
    uses_library: bool,
    /// The requirement, as cargo shows it.
    pins: String,
    /// The version an exact pin names.
    exact: Option<Version>,
    from: String,
    status: String,
    advisories: Vec<&'a Advisory>,
}

impl Row<'_> {
    fn cells(&self) -> [String; 6] {
        [
            self.app.clone(),
            self.version.clone(),
            self.pins.clone(),
            self.from.clone(),
            self.status.clone(),
            list(
                self.advisories.iter().map(|a| a.id.clone()),
                if self.uses_library { "-" } else { "" },
            ),
        ]
    }
}

impl<'a> Fleet<'a> {
    /// Every release an app can pin: the registry's and the workspace's, in order.
    fn releases(&self) -> Vec<&'a Version> {
        let mut releases: Vec<&Version> = self.published.iter().collect();
        releases.push(self.current);
        releases.sort();
        releases.dedup();
        releases
    }

    fn row(&self, app: &Package) -> Row<'a> {
        let mut row = Row {
            app: app.name.to_string(),
            version: app.version.to_string(),
            uses_library: false,
            pins: "-".into(),
            exact: None,
            from: "-".into(),
            status: format!("does not use {LIBRARY}"),
            advisories: Vec::new(),
        };
        let dependency = app
            .dependencies
            .iter()
            .find(|d| d.name == LIBRARY && d.kind == DependencyKind::Normal);
        let Some(dependency) = dependency else {
            return row;
        };
        row.uses_library = true;
        row.pins = dependency.req.to_string();
        row.from = self.source(dependency);
        row.exact = exact_pin(&dependency.req);
        let releases = self.releases();
        let newest = releases.last().copied().unwrap_or(self.current);
        row.status = match &row.exact {
            None => "not pinned: use =X.Y.Z".to_owned(),
            Some(pinned) if pinned == newest => "current".to_owned(),
            Some(pinned) if pinned < newest => {
                // A newer release the pin's requirement would accept without `=`: no breaking
                // change on the way to it.
                let compatible = VersionReq::parse(&format!("^{pinned}"))
                    .ok()
                    .and_then(|req| {
                        releases
                            .iter()
                            .rev()
                            .find(|v| **v > pinned && *v != &newest && req.matches(v))
                    });
                match compatible {
                    Some(v) => format!("behind {newest} (compatible: {v})"),
                    None => format!("behind {newest}"),
                }
            }
            Some(_) => format!("ahead of {newest}"),
        };
        // An exact pin has its release's advisories; a looser one those of every release it
        // accepts.
        let candidates: Vec<&Version> = match &row.exact {
            Some(pinned) => vec![pinned],
            None => releases
                .into_iter()
                .filter(|v| dependency.req.matches(v))
                .collect(),
        };
        row.advisories = self
            .advisories
            .iter()
            .filter(|a| candidates.iter().any(|v| a.affects(v)))
            .collect();
        row
    }

    /// Where the dependency's release comes from: `path DIR`, `registry NAME`, `git URL`.
    fn source(&self, dependency: &Dependency) -> String {
        if let Some(path) = &dependency.path {
            // A path shows which copy: the library's own directory, or a vendored release.
            return format!("path {}", path.strip_prefix(self.root).unwrap_or(path));
        }
        let Some(source) = &dependency.source else {
            return "-".to_owned();
        };
        if source.is_crates_io() {
            return "registry crates.io".to_owned();
        }
        if let Some(git) = source.repr.strip_prefix("git+") {
            return format!("git {git}");
        }
        // `cargo metadata` names a registry by its index URL (with or without --no-deps), as in
        // Cargo.lock: "sparse+https://fleet.invalid/index/"; the name is in cargo's configuration.
        let index = dependency
            .registry
            .as_deref()
            .unwrap_or(&source.repr)
            .trim_start_matches("registry+");
        match self.registries.iter().find(|(_, url)| url == index) {
            Some((name, _)) => format!("registry {name}"),
            None => format!("registry {index}"),
        }
    }

    /// The releases after an app's pin that no advisory of its line affects.
    fn fixed_after(&self, row: &Row) -> Vec<&'a Version> {
        self.releases()
            .into_iter()
            .filter(|v| row.exact.as_ref().is_none_or(|pinned| *v > pinned))
            .filter(|v| !self.advisories.iter().any(|a| a.affects(v)))
            .collect()
    }
}

/// The registries named in cargo's configuration files as cargo finds them for the workspace at
/// `root` (`.cargo/config.toml` there and in every directory above, then cargo's home), nearest
/// first: (name, index URL).
fn registry_names(root: &Path) -> Vec<(String, String)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let files = root
        .ancestors()
        .flat_map(|dir| {
            let dir = dir.join(".cargo");
            [dir.join("config.toml"), dir.join("config")]
        })
        .chain(
            home.into_iter()
                .flat_map(|h| [h.join("config.toml"), h.join("config")]),
        );
    let mut names = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(config) = text.parse::<toml::Table>() else {
            continue;
        };
        let Some(registries) = config.get("registries").and_then(|r| r.as_table()) else {
            continue;
        };
        for (name, registry) in registries {
            if let Some(index) = registry.get("index").and_then(|i| i.as_str()) {
                names.push((name.clone(), index.to_owned()));
            }
        }
    }
    names
}

/// The items joined with ", ", or `none` when there are none.
fn list(items: impl Iterator<Item = String>, none: &str) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join(", ")
    }
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
