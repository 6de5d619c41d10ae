//! Each app's `/openapi.json`, checked by a client nobody here wrote: schemathesis (PyPI) runs
//! every one of its checks against the real binary, signed in, on both backends. Its settings,
//! and each exception with the reason no schema can state that rule, are in
//! `tests/schemathesis.toml`; `.ci/install-schemathesis` installs the pinned version.

use std::path::{Path, PathBuf};
use std::process::Command;

use auth_skeleton::rate_limit::Limit;
use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use system_tests::binary;

use crate::http::signup;

/// The schemathesis executable: `SCHEMATHESIS`, or the one `.ci/install-schemathesis` put in
/// `target/tools`.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return path.into();
    }
    let app = PathBuf::from(binary("app-rows"));
    // target/<profile>/app-rows -> target/tools/...
    let target = app
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let path = target.join("tools/schemathesis/bin/schemathesis");
    assert!(
        path.exists(),
        "{} is missing: run `bash .ci/install-schemathesis` (.ci/run does)",
        path.display()
    );
    path
}

fn workspace_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

async fn run_against(app: &str, backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let mail = tempfile::tempdir().unwrap();
    let transport = format!("file:{}", mail.path().display());
    // Many requests from one client in a few seconds: the limits would answer most with 429
    // (a documented answer, but one that hides what the operation does).
    let names: Vec<String> = Limit::ALL
        .iter()
        .map(|l| format!("RATE_LIMIT_{}", l.name()))
        .collect();
    let mut vars = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("MAIL_TRANSPORT", transport.as_str()),
    ];
    vars.extend(names.iter().map(|n| (n.as_str(), "off")));
    let service = ServiceProcess::start(&binary(app), &vars);
    let (token, _) = signup(&service.base_url, "fuzz@example.com").await;

    let config = workspace_file("schemathesis.toml");
    let output = Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", service.base_url)])
        .args(["--checks", "all", "--workers", "1", "--no-color"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures in {app}'s document on {backend:?}:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!service.logs().contains("panicked"), "{}", service.logs());
}

async fn app_rows_answers_as_its_document_says(backend: Backend) {
    run_against("app-rows", backend).await;
}

async fn app_blob_answers_as_its_document_says(backend: Backend) {
    run_against("app-blob", backend).await;
}

async fn app_notes_answers_as_its_document_says(backend: Backend) {
    run_against("app-notes", backend).await;
}

auth_skeleton::both_backends!(
    app_rows_answers_as_its_document_says,
    app_blob_answers_as_its_document_says,
    app_notes_answers_as_its_document_says,
);
