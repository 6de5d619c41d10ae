//! Live reset links in production logs: a service whose public URL is outside the machine must
//! not print mail to its log, nor send it in cleartext over the network, and the deployment
//! templates must not ship such settings.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use system_tests::binary;

/// Starts `app serve` with `vars` and expects it to refuse within a few seconds; returns its
/// standard error. A service that starts after all is stopped and the test fails.
fn refused_start(app: &str, vars: &[(&str, &str)]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(binary(app))
        .arg("serve")
        .env("BIND", "127.0.0.1:0")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{app} started:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

/// The `NAME=value` lines of a deployment environment file.
fn env_file(path: &str) -> BTreeMap<String, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/{path}")).expect("the template");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn a_public_service_refuses_to_log_mail_or_send_it_in_cleartext(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let public = [
        ("DATABASE_URL", database.url.as_str()),
        ("PUBLIC_URL", "https://rows.example.com"),
    ];
    // The default transport is `log`: with a public URL every reset link would land in the log.
    let stderr = refused_start("app-rows", &public);
    assert!(stderr.contains("MAIL_TRANSPORT"), "{stderr}");

    let mut cleartext = public.to_vec();
    cleartext.push(("MAIL_TRANSPORT", "smtp://user:hunter2@smtp.example.com:587"));
    let stderr = refused_start("app-rows", &cleartext);
    assert!(stderr.contains("tls=required"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is never echoed: {stderr}"
    );

    // Said explicitly, cleartext to a relay is allowed (a relay on a private network).
    let mut explicit = public.to_vec();
    explicit.push(("MAIL_TRANSPORT", "smtp://relay.internal:25?tls=none"));
    let (status, stderr) = ServiceProcess::run(&binary("app-rows"), &["migrate"], &explicit);
    assert!(status.success(), "{stderr}");
}

/// The shipped environment files, used as they are, never put mail in the log: a service on
/// them refuses to start until its operator names a real transport.
async fn the_deployment_templates_ship_no_log_transport(backend: Backend) {
    for (app, template) in [
        ("app-rows", "deploy/env/app-rows.env"),
        ("app-blob", "deploy/env/app-blob.env"),
    ] {
        let settings = env_file(template);
        assert_ne!(
            settings.get("MAIL_TRANSPORT").map(String::as_str),
            Some("log"),
            "{template}"
        );
        let database = TestDatabase::new(backend).await;
        let mut vars: Vec<(&str, &str)> = settings
            .iter()
            .filter(|(k, _)| k.as_str() != "DATABASE_URL")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        vars.push(("DATABASE_URL", &database.url));
        let (status, stderr) = ServiceProcess::run(&binary(app), &["check-config"], &vars);
        assert!(
            !status.success() && stderr.contains("MAIL_TRANSPORT"),
            "{template} as shipped: {stderr}"
        );
    }
}

auth_skeleton::both_backends!(
    a_public_service_refuses_to_log_mail_or_send_it_in_cleartext,
    the_deployment_templates_ship_no_log_transport,
);
