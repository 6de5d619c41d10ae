//! `cargo fleet` on this workspace and on a scratch one where one app stays behind and one is
//! not pinned.

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
    for app in ["app-blob", "app-notes", "app-rows"] {
        let pin = format!("={version}");
        assert_eq!(
            line_of(&stdout, app)[2..],
            [pin.as_str(), "crates/auth-skeleton", "current"],
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
        ["1.2.3", "=0.3.1", "crates/auth-skeleton", "current"]
    );
    assert_eq!(
        line_of(&stdout, "old")[1..],
        ["1.2.3", "=0.2.4", "crates.io", "behind", "0.3.1"]
    );
    assert_eq!(
        line_of(&stdout, "loose")[2..5],
        ["^0.3", "crates/auth-skeleton", "not"]
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
