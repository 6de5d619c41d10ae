//! Protocol-level behaviour: problem details for bad requests, unknown routes, health.

use serde_json::json;

use crate::support::*;

async fn malformed_bodies_are_invalid_request_naming_the_field(backend: Backend) {
    let server = start(backend).await;
    let reply = server
        .send(server.post("/v1/auth/signup", &json!({"email": "ann@example.com"})))
        .await;
    assert_problem(&reply, 400, "invalid_request");
    assert!(
        reply.body["detail"].as_str().unwrap().contains("password"),
        "{:?}",
        reply.body
    );

    let reply = server
        .send(server.post(
            "/v1/auth/signup",
            &json!({"email": "ann@example.com", "password": 12345678}),
        ))
        .await;
    assert_problem(&reply, 400, "invalid_request");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("password") && !detail.contains("12345678"),
        "{detail}"
    );

    let reply = server
        .send(server.post(
            "/v1/auth/login",
            &json!({"email": "a@b.co", "password": "x", "session": "carrier-pigeon"}),
        ))
        .await;
    assert_problem(&reply, 400, "invalid_request");
    assert!(reply.body["detail"].as_str().unwrap().contains("session"));

    let reply = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/auth/login")
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
    assert_problem(&reply, 400, "invalid_request");
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let server = start(backend).await;
    let padding = "x".repeat(64 * 1024);
    let reply = server
        .send(server.post(
            "/v1/auth/login",
            &json!({"email": "a@b.co", "password": "x", "pad": padding}),
        ))
        .await;
    assert_problem(&reply, 413, "payload_too_large");
}

async fn unknown_routes_are_not_found_problems(backend: Backend) {
    let server = start(backend).await;
    let reply = server.send(server.get("/v1/nothing-here")).await;
    assert_problem(&reply, 404, "not_found");
}

/// A documented path with a method it does not answer is `405` with `Allow` (RFC 9110), as
/// problem details; only an undocumented path is `404`.
async fn a_known_path_with_another_method_is_405_with_allow(backend: Backend) {
    let server = start(backend).await;
    for (method, path, allow) in [
        ("TRACE", "/v1/auth/me", "GET, HEAD"),
        ("PUT", "/healthz", "GET, HEAD"),
        ("GET", "/v1/auth/signup", "POST"),
        ("PATCH", "/v1/auth/sessions/abc", "DELETE"),
        ("OPTIONS", "/openapi.json", "GET, HEAD"),
        ("MADEUP", "/v1/auth/email/change", "POST, DELETE"),
        // A fixed path beside a templated one (`/v1/auth/sessions/{id}` takes DELETE).
        ("DELETE", "/v1/auth/sessions/revoke-others", "POST"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let reply = server.send(server.request(method.clone(), path)).await;
        assert_problem(&reply, 405, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
    let reply = server
        .send(server.request(reqwest::Method::TRACE, "/v1/auth/nope"))
        .await;
    assert_problem(&reply, 404, "not_found");
}

/// `HEAD` is answered wherever `GET` is (RFC 9110 §9.3.2): the `GET`'s status and headers, no
/// content.
async fn head_answers_like_get_without_content(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "ann@example.com").await;
    for (path, signed_in, status) in [
        ("/v1/auth/me", true, 200),
        ("/v1/auth/me", false, 401),
        ("/healthz", false, 200),
        ("/openapi.json", false, 200),
        ("/v1/auth/sessions", true, 200),
    ] {
        let with_token = |request: reqwest::RequestBuilder| match signed_in {
            true => request.bearer_auth(&token),
            false => request,
        };
        let head = with_token(server.request(reqwest::Method::HEAD, path))
            .send()
            .await
            .unwrap();
        let get = with_token(server.get(path)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), status, "HEAD {path}");
        assert_eq!(get.status().as_u16(), status, "GET {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no content"
        );
    }
}

async fn health_and_readiness(backend: Backend) {
    let server = start(backend).await;
    let health = server.send(server.get("/healthz")).await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.body,
        json!({"status": "ok", "app": "app-test", "version": "9.9.9", "auth_skeleton": env!("CARGO_PKG_VERSION")})
    );
    assert_eq!(server.send(server.get("/readyz")).await.status, 200);
    server.db.close().await;
    assert_eq!(
        server.send(server.get("/readyz")).await.status,
        503,
        "a closed database is not ready"
    );
}

async fn auth_responses_are_not_cached(backend: Backend) {
    let server = start(backend).await;
    let reply = signup(&server, "ann@example.com", "bearer").await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

auth_skeleton::both_backends!(
    a_known_path_with_another_method_is_405_with_allow,
    head_answers_like_get_without_content,
    malformed_bodies_are_invalid_request_naming_the_field,
    oversized_bodies_are_refused,
    unknown_routes_are_not_found_problems,
    health_and_readiness,
    auth_responses_are_not_cached,
);
