//! Live links in a copy of the database: the outbox kept every pending message, link included,
//! in plaintext, so a backup or a stolen disk held working reset links. The bodies are sealed
//! with `SECRET_KEY`, which is not in the database; rotating the key keeps pending mail
//! deliverable through `SECRET_KEY_PREVIOUS`.

use std::time::Duration;

use auth_skeleton::read_db;
use auth_skeleton::secret_key::SecretKey;
use auth_skeleton::testing::{Backend, ServiceProcess, SmtpSink, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use super::{PUBLIC_URL, token_of};
use crate::http::{call, signup};

const ANN: &str = "ann@example.com";

/// A port where an SMTP sink can come up later, and the `MAIL_TRANSPORT` that points at it.
async fn smtp_down() -> (u16, String) {
    let sink = SmtpSink::start().await;
    let (port, url) = (sink.port, sink.url());
    sink.stop();
    (port, url)
}

/// Asks for a reset of [`ANN`]'s password.
async fn forgot(base: &str) {
    let body = json!({ "email": ANN });
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/password/forgot",
        None,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Waits until the service has tried (and failed) to deliver `n` messages.
async fn wait_for_failed_deliveries(service: &ServiceProcess, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while service.logs().matches("mail delivery failed").count() < n {
        assert!(std::time::Instant::now() < deadline, "{}", service.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything the database holds, as an attacker with a copy reads it: the SQLite file and its
/// WAL byte for byte, or every outbox row as text on PostgreSQL.
async fn copy_of(database: &TestDatabase) -> String {
    if let Some(dir) = database.dir() {
        let mut bytes = Vec::new();
        for name in ["test.db", "test.db-wal"] {
            bytes.extend(std::fs::read(dir.join(name)).unwrap_or_default());
        }
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let db = auth_skeleton::db::Db::connect(&database.url).await.unwrap();
    let rows: Vec<String> = read_db!(db, |pool| {
        sqlx::query_scalar("SELECT CAST(o.* AS TEXT) FROM auth_mail_outbox o")
            .fetch_all(pool)
            .await
    })
    .unwrap();
    db.close().await;
    assert!(!rows.is_empty(), "the mail is still waiting");
    rows.join("\n")
}

async fn a_copy_of_the_database_holds_no_usable_link(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let (port, transport) = smtp_down().await;
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("MAIL_TRANSPORT", transport.as_str()),
        ("PUBLIC_URL", PUBLIC_URL),
        ("COOKIE_SECURE", "false"),
    ];
    let mut service = ServiceProcess::start(&binary("app-rows"), &vars);
    signup(&service.base_url, ANN).await;
    forgot(&service.base_url).await;
    wait_for_failed_deliveries(&service, 2).await;
    assert!(service.terminate().success());
    let copy = copy_of(&database).await;

    // The same service (its key kept beside the database on SQLite) delivers them later.
    let sink = SmtpSink::start_on(port).await;
    let service = ServiceProcess::start(&binary("app-rows"), &vars);
    let verify = token_of(&sink.wait_for(ANN, 0).await, "verify-email");
    let reset = token_of(&sink.wait_for(ANN, 1).await, "reset-password");
    for token in [&verify, &reset] {
        assert!(!copy.contains(token.as_str()), "a live link in the copy");
    }
    assert!(!copy.contains("token="), "a link in the copy");
    assert!(
        !copy.contains("reset-password"),
        "a message body in the copy"
    );
    let reply = call(
        &service.base_url,
        Method::POST,
        "/v1/auth/password/reset",
        None,
        Some(json!({"token": reset, "new_password": "new-and-long-enough"})),
    )
    .await;
    assert_eq!(
        reply.status, 204,
        "the delivered link works: {}",
        reply.body
    );
}

async fn a_rotated_key_still_delivers_and_a_lost_one_drops(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let (port, transport) = smtp_down().await;
    let [old, new, other] = [(); 3].map(|_| SecretKey::generate().to_base64().to_string());
    let start = |current: &str, previous: Option<&str>| {
        let mut vars = vec![
            ("DATABASE_URL", database.url.as_str()),
            ("MAIL_TRANSPORT", transport.as_str()),
            ("PUBLIC_URL", PUBLIC_URL),
            ("COOKIE_SECURE", "false"),
            ("SECRET_KEY", current),
        ];
        vars.extend(previous.map(|p| ("SECRET_KEY_PREVIOUS", p)));
        ServiceProcess::start(&binary("app-rows"), &vars)
    };

    // Sealed under the old key, delivered by a service that has rotated to the new one.
    let mut service = start(&old, None);
    signup(&service.base_url, ANN).await;
    wait_for_failed_deliveries(&service, 1).await;
    assert!(service.terminate().success());
    let sink = SmtpSink::start_on(port).await;
    let mut service = start(&new, Some(&old));
    let verify = token_of(&sink.wait_for(ANN, 0).await, "verify-email");
    let reply = call(
        &service.base_url,
        Method::POST,
        "/v1/auth/verify-email/confirm",
        None,
        Some(json!({ "token": verify })),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Sealed under the new key, then the key is lost: the message can never be sent.
    sink.stop();
    forgot(&service.base_url).await;
    wait_for_failed_deliveries(&service, 1).await;
    assert!(service.terminate().success());
    let sink = SmtpSink::start_on(port).await;
    let service = start(&other, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !service
        .logs()
        .contains("no secret key of this service opens it")
    {
        assert!(std::time::Instant::now() < deadline, "{}", service.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sink.count_for(ANN),
        0,
        "nothing sent under a key it cannot open"
    );
}

auth_skeleton::both_backends!(
    a_copy_of_the_database_holds_no_usable_link,
    a_rotated_key_still_delivers_and_a_lost_one_drops,
);
