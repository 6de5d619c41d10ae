//! `cargo publish-local` on a copy of the repository's registry: the library as packaged today
//! goes in, cargo resolves and unpacks it from there without network, and a second publish of
//! the same version, or a package that is not the library, is refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use semver::Version;
use sha2::{Digest, Sha256};
use system_tests::registry;

const PUBLISH: &str = env!("CARGO_BIN_EXE_publish-local");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn publish(registry: &Path, file: &Path) -> Output {
    Command::new(PUBLISH)
        .arg("--registry")
        .arg(registry)
        .arg(file)
        .output()
        .expect("publish-local runs")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The versions of the index lines, in the file's order.
fn index_versions(registry: &Path) -> Vec<Version> {
    registry::published(registry, "auth-skeleton")
        .unwrap()
        .into_iter()
        .map(|p| p.vers)
        .collect()
}

/// A package of no more than a manifest and an empty library, packaged by cargo in `dir`.
fn package_of(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2024\"\n\
             description = \"d\"\nlicense = \"MIT\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    run(cargo()
        .args(["package", "--no-verify", "--allow-dirty", "--offline"])
        .current_dir(&root));
    root.join(format!("target/package/{name}-{version}.crate"))
}

#[test]
fn a_published_release_resolves_offline_and_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let version = auth_skeleton::AUTH_SKELETON_VERSION;

    // The library as it is now, packaged as a release is (without building it).
    let target = root.join("target");
    run(cargo()
        .args([
            "package",
            "-p",
            "auth-skeleton",
            "--no-verify",
            "--allow-dirty",
        ])
        .args(["--offline", "--locked", "--target-dir"])
        .arg(&target)
        .current_dir(workspace()));
    let packaged = target.join(format!("package/auth-skeleton-{version}.crate"));

    // A copy of the repository's registry, laid out as in the repository, without the
    // workspace's own version if it is already published there.
    copy_dir(&workspace().join(".cargo"), &root.join(".cargo"));
    let registry = root.join("registry");
    copy_dir(&workspace().join("registry"), &registry);
    let index = registry::index_file(&registry, "auth-skeleton");
    let current = Version::parse(version).unwrap();
    if index_versions(&registry).contains(&current) {
        let kept: String = std::fs::read_to_string(&index)
            .unwrap()
            .lines()
            .filter(|l| !l.contains(&format!("\"vers\":\"{version}\"")))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&index, kept).unwrap();
        std::fs::remove_file(registry::crate_file(&registry, "auth-skeleton", &current)).unwrap();
    }
    let before = index_versions(&registry);
    assert!(before.contains(&Version::new(0, 1, 0)), "{before:?}");

    let output = publish(&registry, &packaged);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One more line, in version order (a made-up 0.0.1 goes first).
    let output = publish(&registry, &package_of(root, "auth-skeleton", "0.0.1"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = index_versions(&registry);
    assert_eq!(after.len(), before.len() + 2, "{after:?}");
    assert!(after.is_sorted(), "{after:?}");
    assert_eq!(after[0], Version::new(0, 0, 1));

    // A crate outside the workspace, with the repository's .cargo/config.toml above it, takes
    // the release (and its `testing` feature, a features2 entry) from the copy.
    let scratch = root.join("scratch");
    std::fs::create_dir_all(scratch.join("src")).unwrap();
    std::fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nauth-skeleton = {{ version = \"={version}\", registry = \"fleet\", \
             features = [\"testing\"] }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(scratch.join("src/lib.rs"), "").unwrap();
    run(cargo()
        .args(["generate-lockfile", "--offline"])
        .current_dir(&scratch));
    let lock = std::fs::read_to_string(scratch.join("Cargo.lock")).unwrap();
    let cksum = format!("{:x}", Sha256::digest(std::fs::read(&packaged).unwrap()));
    assert!(
        lock.contains(&format!(
            "name = \"auth-skeleton\"\nversion = \"{version}\"\n\
             source = \"sparse+https://fleet.invalid/index/\"\nchecksum = \"{cksum}\"\n"
        )),
        "{lock}"
    );
    // Unpacking it checks the file against the index's checksum.
    let host = run(Command::new("rustc").args(["--print", "host-tuple"])).stdout;
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(&scratch)
        .manifest_path(scratch.join("Cargo.toml"))
        .other_options(vec![
            "--offline".to_owned(),
            "--filter-platform".to_owned(),
            String::from_utf8(host).unwrap().trim().to_owned(),
        ])
        .exec();
    let unpacked = metadata.as_ref().ok().and_then(|m| {
        m.packages
            .iter()
            .find(|p| p.name.as_str() == "auth-skeleton")
            .map(|p| p.manifest_path.clone())
    });
    // Cargo unpacks it below its home, in a directory of this temporary registry's own: remove
    // it.
    if let Some(dir) = unpacked.as_ref().and_then(|m| m.parent()?.parent())
        && dir.parent().is_some_and(|p| p.ends_with("registry/src"))
        && dir.file_name().is_some_and(|n| n.starts_with('-'))
    {
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert!(metadata.is_ok(), "{metadata:?}");
    assert!(unpacked.is_some());

    // A second publish of a version is refused and changes nothing.
    let index_text = std::fs::read(&index).unwrap();
    let crate_file = registry::crate_file(&registry, "auth-skeleton", &current);
    let crate_bytes = std::fs::read(&crate_file).unwrap();
    let output = publish(&registry, &packaged);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("auth-skeleton {version} is already published")),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&index).unwrap(), index_text);
    assert_eq!(std::fs::read(&crate_file).unwrap(), crate_bytes);

    // So is a package that is not the library.
    let other = package_of(root, "not-auth-skeleton", "9.9.9");
    let output = publish(&registry, &other);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "it is the package not-auth-skeleton 9.9.9, and this registry holds only auth-skeleton"
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&index).unwrap(), index_text);
    assert!(!registry.join("not-auth-skeleton-9.9.9.crate").exists());
    assert!(
        !registry
            .join("index")
            .join(registry::index_path("not-auth-skeleton"))
            .exists()
    );
}
