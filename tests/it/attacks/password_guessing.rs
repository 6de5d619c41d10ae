//! Password guessing with a stolen session, and hashing starvation.
//!
//! Password change, email change and account deletion re-check the password: a stolen session
//! must not guess it without limit (60 wrong guesses and then the right one changed it). A
//! flood of logins must get `503 overloaded` at once rather than queue every real login behind
//! it for seconds, and must leave signed-in requests that need no hash alone.

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use crate::http::{call, login, me, signup};

async fn a_stolen_session_cannot_guess_the_password(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    let base = service.base_url.as_str();
    let (stolen, _) = signup(base, "ann@example.com").await;

    // The routes that check a password share one budget per user. (Email change has a
    // stricter limit of its own, which would hide this one.)
    let guess = |n: usize| {
        let wrong = format!("guess-number-{n}");
        if n.is_multiple_of(2) {
            (
                Method::POST,
                "/v1/auth/password/change",
                json!({"current_password": wrong, "new_password": "taken-over-at-last"}),
            )
        } else {
            (
                Method::DELETE,
                "/v1/auth/account",
                json!({"password": wrong}),
            )
        }
    };
    let mut refused_at = None;
    for n in 0..60 {
        let (method, path, body) = guess(n);
        let reply = call(base, method, path, Some(&stolen), Some(body)).await;
        match (reply.status, reply.code()) {
            (401, "invalid_credentials") => {}
            (429, "rate_limited") => {
                refused_at = Some(n);
                break;
            }
            other => panic!("guess {n}: {other:?} {:?}", reply.body),
        }
    }
    let refused_at = refused_at.expect("60 wrong guesses and never refused");
    assert!(refused_at <= 10, "refused only after {refused_at} guesses");
    let reply = call(
        base,
        Method::POST,
        "/v1/auth/password/change",
        Some(&stolen),
        Some(json!({"current_password": TEST_PASSWORD, "new_password": "taken-over-at-last"})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code()),
        (429, "rate_limited"),
        "even the right password waits: {:?}",
        reply.body
    );
    assert_eq!(
        login(base, "ann@example.com", TEST_PASSWORD).await.status,
        200
    );
}

async fn a_login_flood_is_refused_at_once_and_spares_signed_in_requests(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(
        &binary("app-rows"),
        &[
            ("DATABASE_URL", &database.url),
            // Many clients: the per-IP and per-email limits are not what stops this flood.
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    );
    let base = service.base_url.as_str();
    let (token, _) = signup(base, "ann@example.com").await;

    let flood = (0..200).map(|n| {
        let client = reqwest::Client::new();
        async move {
            let response = client
                .post(format!("{base}/v1/auth/login"))
                .json(&json!({"email": format!("nobody{n}@example.com"), "password": "wrong-password-1"}))
                .send()
                .await
                .expect("the service answers");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, retry_after, body)
        }
    });
    let signed_in = async {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(me(base, &token).await.status);
        }
        statuses
    };
    let (answers, statuses) = tokio::join!(join_all(flood), signed_in);
    assert_eq!(statuses, vec![200; 5], "signed-in requests need no hash");
    let mut overloaded = 0;
    for (status, retry_after, body) in answers {
        match status {
            401 => {}
            503 => {
                overloaded += 1;
                assert_eq!(body["code"], "overloaded", "{body}");
                assert!(retry_after.is_some(), "503 carries Retry-After");
            }
            other => panic!("a flooding login got {other}: {body}"),
        }
    }
    assert!(overloaded > 0, "200 logins at once and none was refused");
}

auth_skeleton::both_backends!(
    a_stolen_session_cannot_guess_the_password,
    a_login_flood_is_refused_at_once_and_spares_signed_in_requests,
);
