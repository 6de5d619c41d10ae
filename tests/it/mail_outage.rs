//! An SMTP outage loses no mail: the message waits in the database across a restart of the
//! service and is delivered once the SMTP server is back.

use auth_skeleton::testing::{Backend, ServiceProcess, SmtpSink, TEST_PASSWORD, TestDatabase};
use serde_json::json;
use system_tests::binary;

async fn mail_survives_an_smtp_outage_and_a_restart(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let transport = sink.url();
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("MAIL_TRANSPORT", transport.as_str()),
        ("PUBLIC_URL", "https://app.test"),
    ];
    let mut service = ServiceProcess::start(&binary("app-rows"), &vars);
    sink.stop();

    let started = std::time::Instant::now();
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/auth/signup", service.base_url))
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status().as_u16(),
        201,
        "sign-up does not wait for SMTP"
    );
    eprintln!("sign-up with SMTP down answered in {:?}", started.elapsed());

    // Let the worker try (and fail), then stop the service.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !service.logs().contains("mail delivery failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery attempt:\n{}",
            service.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(service.terminate().success());
    assert!(sink.mails().is_empty());

    let sink = SmtpSink::start_on(port).await;
    let _service = ServiceProcess::start(&binary("app-rows"), &vars);
    let mail = sink.wait_for("ann@example.com", 0).await;
    assert!(
        mail.link("https://app.test/verify-email?token=").is_some(),
        "{}",
        mail.text()
    );
}

auth_skeleton::both_backends!(mail_survives_an_smtp_outage_and_a_restart);
