//! The request log of the real binary: one line per request with method, route pattern,
//! status, latency and request id, as text or JSON, and never a secret.

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use serde_json::{Value, json};
use system_tests::binary;

const MAILED_TOKEN: &str = "mailedtokenNEVERLOGGED42";

/// Sends a request of each kind whose secrets must stay out of the log; returns the bearer token.
async fn traffic(base_url: &str) -> String {
    let client = reqwest::Client::new();
    let reply = client
        .get(format!("{base_url}/healthz"))
        .header("x-request-id", "probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["x-request-id"], "probe-1");
    let signup: Value = client
        .post(format!("{base_url}/v1/auth/signup"))
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().unwrap().to_owned();
    client
        .delete(format!("{base_url}/v1/auth/sessions/some-session-id"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base_url}/verify-email?token={MAILED_TOKEN}"))
        .send()
        .await
        .unwrap();
    token
}

async fn json_logs_have_one_line_per_request_and_no_secrets(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let mut service = ServiceProcess::start(
        &binary("app-rows"),
        &[("DATABASE_URL", &database.url), ("LOG_FORMAT", "json")],
    );
    let token = traffic(&service.base_url).await;
    assert!(service.terminate().success());
    let logs = service.logs();
    let requests: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 4, "one line per request:\n{logs}");
    let health = &requests[0];
    assert_eq!(health["fields"]["method"], "GET");
    assert_eq!(health["fields"]["route"], "/healthz");
    assert_eq!(health["fields"]["status"], 200);
    assert!(health["fields"]["latency_ms"].is_number(), "{health}");
    assert_eq!(health["span"]["request_id"], "probe-1");
    let revoke = &requests[2];
    assert_eq!(
        revoke["fields"]["route"], "/v1/auth/sessions/{id}",
        "the pattern, not the path"
    );
    assert_eq!(revoke["fields"]["status"], 404);
    assert!(revoke["span"]["request_id"].as_str().unwrap().len() >= 16);
    // Events inside a request carry its id too (the signup event here).
    assert!(
        logs.lines()
            .any(|l| l.contains("\"signup\"") && l.contains("request_id")),
        "{logs}"
    );
    for secret in [
        TEST_PASSWORD,
        &token,
        token.split('.').nth(1).unwrap(),
        MAILED_TOKEN,
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} reached the log:\n{logs}"
        );
    }
}

async fn text_logs_are_one_readable_line_per_request(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let mut service =
        ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    traffic(&service.base_url).await;
    assert!(service.terminate().success());
    let logs = service.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("request_id=probe-1") && l.contains(" request "))
        .unwrap_or_else(|| panic!("no request line for probe-1:\n{logs}"));
    for part in ["method=GET", "route=/healthz", "status=200", "latency_ms="] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes off a terminal: {line:?}"
    );
    assert!(!logs.contains(MAILED_TOKEN));
}

auth_skeleton::both_backends!(
    json_logs_have_one_line_per_request_and_no_secrets,
    text_logs_are_one_readable_line_per_request,
);
