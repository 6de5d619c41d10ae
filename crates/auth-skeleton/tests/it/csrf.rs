//! The Origin check on cookie-authenticated unsafe requests, login and sign-up.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn cookie_requests_that_change_state_need_an_allowed_origin(backend: Backend) {
    let (server, _) = start_with(backend, &[("ALLOWED_ORIGINS", "https://web.example.com")]).await;
    let value = session_cookie(&signup(&server, "ann@example.com", "cookie").await);
    let cookie = format!("{COOKIE}={value}");
    let revoke = |origin: Option<&str>| {
        let mut request = server
            .request(Method::POST, "/v1/auth/sessions/revoke-others")
            .header("cookie", cookie.clone());
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        server.send(request)
    };
    assert_problem(&revoke(None).await, 403, "csrf_rejected");
    assert_problem(
        &revoke(Some("https://evil.example.com")).await,
        403,
        "csrf_rejected",
    );
    assert_problem(&revoke(Some("null")).await, 403, "csrf_rejected");
    assert_eq!(revoke(Some(ORIGIN)).await.status, 204);
    assert_eq!(revoke(Some("https://web.example.com")).await.status, 204);

    // A safe method needs no Origin.
    let me = server
        .send(server.get("/v1/auth/me").header("cookie", cookie.clone()))
        .await;
    assert_eq!(me.status, 200);
}

async fn bearer_requests_are_not_subject_to_the_origin_check(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "bob@example.com").await;
    let reply = server
        .send(
            server
                .request(Method::POST, "/v1/auth/sessions/revoke-others")
                .bearer_auth(&token)
                .header("origin", "https://evil.example.com"),
        )
        .await;
    assert_eq!(reply.status, 204);
}

async fn login_and_signup_refuse_a_foreign_origin(backend: Backend) {
    let server = start(backend).await;
    let body = json!({"email": "cat@example.com", "password": TEST_PASSWORD});
    let foreign = server
        .send(
            server
                .post("/v1/auth/signup", &body)
                .header("origin", "https://evil.example.com"),
        )
        .await;
    assert_problem(&foreign, 403, "csrf_rejected");
    assert!(
        auth_skeleton::store::user_by_email(&server.db, "cat@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let own = server
        .send(
            server
                .post("/v1/auth/signup", &body)
                .header("origin", ORIGIN),
        )
        .await;
    assert_eq!(own.status, 201);

    let foreign = server
        .send(
            server
                .post("/v1/auth/login", &body)
                .header("origin", "https://evil.example.com"),
        )
        .await;
    assert_problem(&foreign, 403, "csrf_rejected");
    let native = server.send(server.post("/v1/auth/login", &body)).await;
    assert_eq!(native.status, 200, "no Origin (a native client) is fine");
}

auth_skeleton::both_backends!(
    cookie_requests_that_change_state_need_an_allowed_origin,
    bearer_requests_are_not_subject_to_the_origin_check,
    login_and_signup_refuse_a_foreign_origin,
);
