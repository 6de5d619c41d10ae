//! Storage exhaustion by unverified and runaway accounts: with `REQUIRE_VERIFIED_EMAIL=true`
//! an unverified account stores nothing (`403 email_not_verified`) yet can still verify itself,
//! and every account's writes are limited per user (`RATE_LIMIT_PUSH_USER`).
//!
//! Both are features of the library's 0.2 line, so they are checked on the apps that run it
//! (app-rows, app-notes); app-blob stays on the 0.1 line, which has neither.

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use super::{MailedService, token_of};
use crate::http::{call, signup};

fn change(id: &str) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    json!({"changes": [{"collection": "notes", "id": id, "ts": now, "counter": 0,
        "node": "d1", "deleted": false, "data": {"text": "x"}}]})
}

async fn an_unverified_account_stores_nothing_until_it_verifies(backend: Backend) {
    let mailed = MailedService::start(backend, &[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let base = mailed.base();
    let (token, _) = signup(base, "ann@example.com").await;

    let push = call(
        base,
        Method::POST,
        "/v1/rows/push",
        Some(&token),
        Some(change("n1")),
    )
    .await;
    assert_eq!(
        (push.status, push.code()),
        (403, "email_not_verified"),
        "{:?}",
        push.body
    );
    let pull = call(base, Method::GET, "/v1/rows/pull", Some(&token), None).await;
    assert_eq!((pull.status, pull.code()), (403, "email_not_verified"));
    // The account's own routes still work, so that it can verify itself.
    let me = call(base, Method::GET, "/v1/auth/me", Some(&token), None).await;
    assert_eq!(me.status, 200);

    let link = token_of(
        &mailed.sink.wait_for("ann@example.com", 0).await,
        "verify-email",
    );
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/verify-email/confirm",
        None,
        Some(json!({"token": link})),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let push = call(
        base,
        Method::POST,
        "/v1/rows/push",
        Some(&token),
        Some(change("n1")),
    )
    .await;
    assert_eq!(push.status, 200, "verified now: {:?}", push.body);
    assert_eq!(push.body["results"][0]["status"], "applied");
}

async fn an_unverified_account_writes_no_note(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(
        &binary("app-notes"),
        &[
            ("DATABASE_URL", &database.url),
            ("REQUIRE_VERIFIED_EMAIL", "true"),
        ],
    );
    let (token, _) = signup(&service.base_url, "ann@example.com").await;
    let put = call(
        &service.base_url,
        Method::PUT,
        "/v1/note",
        Some(&token),
        Some(json!({"text": "x".repeat(1024)})),
    )
    .await;
    assert_eq!(
        (put.status, put.code()),
        (403, "email_not_verified"),
        "{:?}",
        put.body
    );
    let get = call(
        &service.base_url,
        Method::GET,
        "/v1/note",
        Some(&token),
        None,
    )
    .await;
    assert_eq!((get.status, get.code()), (403, "email_not_verified"));
}

async fn writes_are_limited_per_user(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let rows = ServiceProcess::start(
        &binary("app-rows"),
        &[
            ("DATABASE_URL", &database.url),
            ("RATE_LIMIT_PUSH_USER", "3/minute"),
        ],
    );
    let (token, _) = signup(&rows.base_url, "ann@example.com").await;
    for n in 0..3 {
        let id = format!("n{n}");
        let reply = call(
            &rows.base_url,
            Method::POST,
            "/v1/rows/push",
            Some(&token),
            Some(change(&id)),
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let reply = call(
        &rows.base_url,
        Method::POST,
        "/v1/rows/push",
        Some(&token),
        Some(change("n3")),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (429, "rate_limited"));
    let (other, _) = signup(&rows.base_url, "bob@example.com").await;
    let reply = call(
        &rows.base_url,
        Method::POST,
        "/v1/rows/push",
        Some(&other),
        Some(change("n0")),
    )
    .await;
    assert_eq!(reply.status, 200, "another user has a budget of its own");
}

auth_skeleton::both_backends!(
    an_unverified_account_stores_nothing_until_it_verifies,
    an_unverified_account_writes_no_note,
    writes_are_limited_per_user,
);
