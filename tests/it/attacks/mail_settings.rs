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

/// An SMTP relay that refuses every message and quotes its first line holding `token=` in the
/// refusal, as some relays quote what they reject; returns its port.
async fn quoting_relay() -> u16 {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read);
                let _ = write.write_all(b"220 relay.test ESMTP\r\n").await;
                let (mut in_data, mut quoted) = (false, String::new());
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let command = line.trim_end().to_owned();
                    let reply = if in_data {
                        if command != "." {
                            if quoted.is_empty() && command.contains("token=") {
                                quoted = command;
                            }
                            continue;
                        }
                        in_data = false;
                        format!("554 rejected, it said: {quoted}\r\n")
                    } else if command.to_ascii_uppercase().starts_with("EHLO") {
                        "250 relay.test\r\n".to_owned()
                    } else if command.eq_ignore_ascii_case("DATA") {
                        in_data = true;
                        "354 go ahead\r\n".to_owned()
                    } else if command.eq_ignore_ascii_case("QUIT") {
                        "221 bye\r\n".to_owned()
                    } else {
                        "250 OK\r\n".to_owned()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A relay's refusal that quotes the message must not put its live link in the service's log.
async fn a_refusal_quoting_the_message_puts_no_link_in_the_log(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let port = quoting_relay().await;
    let transport = format!("smtp://127.0.0.1:{port}");
    let service = ServiceProcess::start(
        &binary("app-rows"),
        &[
            ("DATABASE_URL", &database.url),
            ("MAIL_TRANSPORT", &transport),
        ],
    );
    crate::http::signup(&service.base_url, "ann@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !service.logs().contains("mail delivery failed") {
        assert!(Instant::now() < deadline, "no attempt:\n{}", service.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = service.logs();
    assert!(
        logs.contains("554"),
        "the refusal's code is logged:\n{logs}"
    );
    assert!(
        !logs.contains("token="),
        "a live link reached the log:\n{logs}"
    );
}

auth_skeleton::both_backends!(
    a_refusal_quoting_the_message_puts_no_link_in_the_log,
    a_public_service_refuses_to_log_mail_or_send_it_in_cleartext,
    the_deployment_templates_ship_no_log_transport,
);
