//! `cargo fleet` on this workspace, on a scratch one where one app stays behind and one is not
//! pinned, and on copies of this workspace where one app takes a release from the registry.

use std::path::Path;
use std::process::{Command, Output};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

fn fleet(manifest: &Path, args: &[&str]) -> Output {
    Command::new(FLEET)
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .expect("fleet runs")
}

/// The table's line for `app`, split into its columns.
fn line_of(stdout: &str, app: &str) -> Vec<String> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(app))
        .unwrap_or_else(|| panic!("no line for {app} in:\n{stdout}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_app_of_this_workspace_pins_the_current_release() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let output = fleet(&manifest, &["--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let version = auth_skeleton::AUTH_SKELETON_VERSION;
    assert!(
        stdout.starts_with(&format!("auth-skeleton {version} (crates/auth-skeleton)\n")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("published in registry/: 0.1.0")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\nadvisories in release/advisories.toml: ASK-2026-0001, ASK-2026-0002, ASK-2026-0003"
        ),
        "{stdout}"
    );
    for app in ["app-blob", "app-notes", "app-rows"] {
        let pin = format!("={version}");
        assert_eq!(
            line_of(&stdout, app)[2..],
            [pin.as_str(), "path", "crates/auth-skeleton", "current", "-"],
            "{stdout}"
        );
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn package(name: &str, version: &str, dependency: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2024\"\n\n\
         [dependencies]\n{dependency}\n"
    )
}

#[test]
fn an_app_behind_and_an_unpinned_app_are_shown_and_the_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\", \"apps/*\", \"tools\"]\n",
    );
    write(
        &root.join("crates/auth-skeleton/Cargo.toml"),
        &package("auth-skeleton", "0.3.1", ""),
    );
    let to_library = "path = \"../../crates/auth-skeleton\"";
    let apps = [
        (
            "new",
            format!("auth-skeleton = {{ {to_library}, version = \"=0.3.1\" }}"),
        ),
        ("old", "auth-skeleton = \"=0.2.4\"".to_owned()),
        (
            "loose",
            format!("auth-skeleton = {{ {to_library}, version = \"0.3\" }}"),
        ),
        ("plain", String::new()),
    ];
    for (name, dependency) in &apps {
        write(
            &root.join(format!("apps/{name}/Cargo.toml")),
            &package(name, "1.2.3", dependency),
        );
    }
    // Not under apps/: not part of the fleet, pinned or not.
    write(
        &root.join("tools/Cargo.toml"),
        &package(
            "tools",
            "0.0.0",
            "auth-skeleton = { path = \"../crates/auth-skeleton\" }",
        ),
    );
    for dir in [
        "crates/auth-skeleton",
        "apps/new",
        "apps/old",
        "apps/loose",
        "apps/plain",
        "tools",
    ] {
        write(&root.join(dir).join("src/lib.rs"), "");
    }

    let manifest = root.join("Cargo.toml");
    let output = fleet(&manifest, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("auth-skeleton 0.3.1 (crates/auth-skeleton)\n"),
        "{stdout}"
    );
    assert_eq!(
        line_of(&stdout, "new")[1..],
        [
            "1.2.3",
            "=0.3.1",
            "path",
            "crates/auth-skeleton",
            "current",
            "-"
        ]
    );
    assert_eq!(
        line_of(&stdout, "old")[1..],
        [
            "1.2.3",
            "=0.2.4",
            "registry",
            "crates.io",
            "behind",
            "0.3.1",
            "-"
        ]
    );
    assert_eq!(
        line_of(&stdout, "loose")[2..6],
        ["^0.3", "path", "crates/auth-skeleton", "not"]
    );
    assert!(
        line_of(&stdout, "plain")
            .join(" ")
            .ends_with("does not use auth-skeleton")
    );
    assert!(!stdout.contains("tools"), "{stdout}");

    let output = fleet(&manifest, &["--check"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("loose must depend on auth-skeleton with an exact requirement"),
        "{stderr}"
    );
}

/// A copy of this workspace (without `target/` and `.git`), with its registry, its advisories
/// and its `.cargo/config.toml`.
fn copy_of_workspace(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Points `app`'s dependency on the library (and its dev-dependency) at `=version` from the
/// `fleet` registry, as an app that stays behind does.
fn take_from_registry(root: &Path, app: &str, version: &str) {
    let manifest = root.join(format!("apps/{app}/Cargo.toml"));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut edited = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if !line.starts_with("auth-skeleton = ") {
                return line.to_owned();
            }
            edited += 1;
            let features = if line.contains("features") {
                ", features = [\"testing\"]"
            } else {
                ""
            };
            format!(
                "auth-skeleton = {{ version = \"={version}\", registry = \"fleet\"{features} }}"
            )
        })
        .collect();
    assert_eq!(edited, 2, "{text}");
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_app_on_a_release_with_advisories_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_of_workspace(root);
    take_from_registry(root, "app-rows", "0.1.0");
    let version = auth_skeleton::AUTH_SKELETON_VERSION;

    let output = fleet(&root.join("Cargo.toml"), &["--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // Behind the newest release, with every advisory of 0.1.0 (a newer 0.1.x in the registry
    // would be named after the newest).
    let line = line_of(&stdout, "app-rows");
    assert_eq!(
        line[2..7],
        ["=0.1.0", "registry", "fleet", "behind", version],
        "{stdout}"
    );
    assert!(
        line.join(" ")
            .ends_with(" ASK-2026-0001, ASK-2026-0002, ASK-2026-0003"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "fleet: app-rows pins auth-skeleton 0.1.0, affected by ASK-2026-0001, ASK-2026-0002, \
             ASK-2026-0003 (release/advisories.toml)"
        ),
        "{stderr}"
    );
    // The other apps are fine and not named.
    assert!(
        !stderr.contains("app-blob") && !stderr.contains("app-notes"),
        "{stderr}"
    );
    // Without --check it only shows.
    assert!(fleet(&root.join("Cargo.toml"), &[]).status.success());
}

#[test]
fn an_app_on_a_patched_release_from_the_registry_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_of_workspace(root);
    take_from_registry(root, "app-rows", "0.1.1");
    let version = auth_skeleton::AUTH_SKELETON_VERSION;

    let output = fleet(&root.join("Cargo.toml"), &["--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        line_of(&stdout, "app-rows")[2..],
        ["=0.1.1", "registry", "fleet", "behind", version, "-"],
        "{stdout}"
    );
}

fn append(path: &Path, text: &str) {
    let mut contents = std::fs::read_to_string(path).unwrap();
    contents.push_str(text);
    std::fs::write(path, contents).unwrap();
}

/// An affected release reached by an entry other than the app's own `[dependencies]` line
/// (target-specific, renamed, a build dependency, a crate of the workspace in between) or by a
/// member outside `apps/` still fails the check; a dev-dependency does not.
#[test]
fn a_release_linked_through_another_entry_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_of_workspace(root);
    // Every app is on the current release: 0.1.0 links only through the entries added here.
    let old = "version = \"=0.1.0\", registry = \"fleet\"";
    append(
        &root.join("apps/app-rows/Cargo.toml"),
        &format!(
            "\n[target.'cfg(unix)'.dependencies]\nauth-old = {{ package = \"auth-skeleton\", {old} }}\n"
        ),
    );
    append(
        &root.join("apps/app-notes/Cargo.toml"),
        &format!("\n[build-dependencies]\nauth-old = {{ package = \"auth-skeleton\", {old} }}\n"),
    );
    // A helper crate of the workspace that app-blob depends on, and an app outside apps/.
    append(
        &root.join("apps/app-blob/Cargo.toml"),
        "\n[target.'cfg(all())'.dependencies]\nhelper = { path = \"../../crates/helper\" }\n",
    );
    write(
        &root.join("crates/helper/Cargo.toml"),
        &package("helper", "0.0.0", &format!("auth-skeleton = {{ {old} }}")),
    );
    write(&root.join("crates/helper/src/lib.rs"), "");
    write(
        &root.join("services/app-x/Cargo.toml"),
        &package("app-x", "0.0.0", &format!("auth-skeleton = {{ {old} }}")),
    );
    write(&root.join("services/app-x/src/main.rs"), "fn main() {}\n");
    let workspace = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&workspace).unwrap();
    std::fs::write(
        &workspace,
        text.replace("\"apps/*\",", "\"apps/*\", \"services/*\","),
    )
    .unwrap();
    // A dev-dependency on it: tests only, not reported.
    write(
        &root.join("tests/Cargo.toml"),
        &std::fs::read_to_string(root.join("tests/Cargo.toml"))
            .unwrap()
            .replace(
                "[dev-dependencies]\n",
                &format!(
                    "[dev-dependencies]\nauth-old = {{ package = \"auth-skeleton\", {old} }}\n"
                ),
            ),
    );

    let output = fleet(&workspace, &["--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // The table still shows each app's own line as current.
    for app in ["app-blob", "app-notes", "app-rows"] {
        assert_eq!(line_of(&stdout, app)[5], "current", "{stdout}");
    }
    let ids = "affected by ASK-2026-0001, ASK-2026-0002, ASK-2026-0003";
    for (member, path) in [
        ("app-rows", "app-rows 0.1.0 -> auth-skeleton 0.1.0"),
        ("app-notes", "app-notes 0.1.0 -> auth-skeleton 0.1.0"),
        (
            "app-blob",
            "app-blob 0.1.0 -> helper 0.0.0 -> auth-skeleton 0.1.0",
        ),
        ("helper", "helper 0.0.0 -> auth-skeleton 0.1.0"),
        ("app-x", "app-x 0.0.0 -> auth-skeleton 0.1.0"),
    ] {
        let line = format!("fleet: {member} links auth-skeleton 0.1.0 ({path}), {ids}");
        assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    }
    assert!(!stderr.contains("fleet: system-tests"), "{stderr}");
    // Without --check it only shows.
    assert!(fleet(&workspace, &[]).status.success());
}
