//! Storage exhaustion by unverified and runaway accounts: with `REQUIRE_VERIFIED_EMAIL=true`
//! an unverified account stores nothing (`403 email_not_verified`) yet can still verify itself,
//! and every account's writes are limited per user (`RATE_LIMIT_PUSH_USER`,
//! `RATE_LIMIT_SAVE_USER`).

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

async fn an_unverified_account_saves_no_blob(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(
        &binary("app-blob"),
        &[
            ("DATABASE_URL", &database.url),
            ("REQUIRE_VERIFIED_EMAIL", "true"),
        ],
    );
    let (token, _) = signup(&service.base_url, "ann@example.com").await;
    let put = reqwest::Client::new()
        .put(format!("{}/v1/save", service.base_url))
        .bearer_auth(&token)
        .header("If-None-Match", "*")
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 403);
    let body: serde_json::Value = put.json().await.unwrap();
    assert_eq!(body["code"], "email_not_verified");
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

    let database = TestDatabase::new(backend).await;
    let blob = ServiceProcess::start(
        &binary("app-blob"),
        &[
            ("DATABASE_URL", &database.url),
            ("RATE_LIMIT_SAVE_USER", "2/minute"),
        ],
    );
    let (token, _) = signup(&blob.base_url, "ann@example.com").await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut etag: Option<String> = None;
    for n in 0..3u8 {
        let mut request = client
            .put(format!("{}/v1/save", blob.base_url))
            .bearer_auth(&token)
            .body(vec![n; 64]);
        request = match &etag {
            Some(tag) => request.header("If-Match", tag),
            None => request.header("If-None-Match", "*"),
        };
        let response = request.send().await.unwrap();
        statuses.push(response.status().as_u16());
        if let Some(tag) = response.headers().get("etag") {
            etag = Some(tag.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, [201, 200, 429]);
}

auth_skeleton::both_backends!(
    an_unverified_account_stores_nothing_until_it_verifies,
    an_unverified_account_saves_no_blob,
    writes_are_limited_per_user,
);
