//! What operators and browsers see around every response: the request id, security headers,
//! CORS for the allowed origins, and `/metrics`.

use auth_skeleton::http::headers::API_CSP;
use reqwest::Method;

use crate::support::*;

async fn every_response_carries_a_request_id_and_security_headers(backend: Backend) {
    let server = start(backend).await;
    for path in ["/healthz", "/v1/auth/me", "/no/such/route"] {
        let reply = server.send(server.get(path)).await;
        let id = reply.header("x-request-id").unwrap_or_default();
        assert!(id.len() >= 16, "{path}: a generated request id: {id:?}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            reply.header("content-security-policy"),
            Some(API_CSP),
            "{path}"
        );
    }
    let auth = server.send(server.get("/v1/auth/me")).await;
    assert_eq!(auth.header("cache-control"), Some("no-store"));

    let a = server.send(server.get("/healthz")).await;
    let b = server.send(server.get("/healthz")).await;
    assert_ne!(
        a.header("x-request-id"),
        b.header("x-request-id"),
        "ids are per request"
    );
}

async fn a_sane_client_request_id_is_echoed_and_a_bad_one_replaced(backend: Backend) {
    let server = start(backend).await;
    let reply = server
        .send(
            server
                .get("/healthz")
                .header("x-request-id", "client-42.a:b_c"),
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some("client-42.a:b_c"));
    let long = "x".repeat(200);
    for bad in ["<script>alert(1)</script>", long.as_str(), "a b"] {
        let reply = server
            .send(server.get("/healthz").header("x-request-id", bad))
            .await;
        let id = reply.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
}

const WEB: &str = "https://web.example.com";

async fn cors_allows_the_listed_origins_with_credentials(backend: Backend) {
    let (server, _) = start_with(backend, &[("ALLOWED_ORIGINS", WEB)]).await;
    let preflight = server
        .send(
            server
                .request(Method::OPTIONS, "/v1/auth/login")
                .header("origin", WEB)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type"),
        )
        .await;
    assert!(preflight.status < 300, "{}", preflight.status);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(WEB));
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    let methods = preflight
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    // No route takes PATCH.
    assert!(!methods.contains("PATCH"), "{methods}");
    // A long-poll of the contract: `Prefer: wait` with `If-None-Match`, from a web page.
    let preflight = server
        .send(
            server
                .request(Method::OPTIONS, "/v1/auth/me")
                .header("origin", WEB)
                .header("access-control-request-method", "GET")
                .header(
                    "access-control-request-headers",
                    "prefer, if-none-match, range, if-range",
                ),
        )
        .await;
    assert!(
        preflight.status < 300,
        "{} {:?}",
        preflight.status,
        preflight.bytes
    );
    let headers = preflight
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in ["prefer", "range", "if-range"] {
        assert!(headers.contains(name), "{name}: {headers}");
    }

    let reply = server
        .send(server.get("/v1/auth/me").header("origin", WEB))
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(WEB));
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    // A page reads what the contract's answers say in headers: the version, when to retry,
    // whether its long-poll waited, and which part of a save it got.
    for name in [
        "x-request-id",
        "etag",
        "retry-after",
        "preference-applied",
        "content-range",
        "accept-ranges",
    ] {
        assert!(exposed.contains(name), "{name}: {exposed}");
    }
}

async fn cors_ignores_other_origins(backend: Backend) {
    let (server, _) = start_with(backend, &[("ALLOWED_ORIGINS", WEB)]).await;
    let reply = server
        .send(
            server
                .get("/healthz")
                .header("origin", "https://evil.example.com"),
        )
        .await;
    assert_eq!(reply.status, 200, "the request is served");
    // Without Access-Control-Allow-Origin the browser withholds the response from the page.
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let preflight = server
        .send(
            server
                .request(Method::OPTIONS, "/v1/auth/login")
                .header("origin", "https://evil.example.com")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(preflight.header("access-control-allow-origin"), None);
}

/// The value of the sample `name{labels}` in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics_count_requests_by_route_pattern_and_logins_by_outcome(backend: Backend) {
    let server = start(backend).await;
    // The recorder is process-wide and other tests run alongside: compare before and after.
    let before = server.send(server.get("/metrics")).await;
    let before = String::from_utf8(before.bytes).unwrap();
    let token = bearer(&server, "ann@example.com").await;
    assert_eq!(
        login(&server, "ann@example.com", TEST_PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        login(&server, "ann@example.com", "wrong-password-1")
            .await
            .status,
        401
    );
    for id in ["a", "b"] {
        let path = format!("/v1/auth/sessions/{id}");
        let reply = server
            .send(server.request(Method::DELETE, &path).bearer_auth(&token))
            .await;
        assert_eq!(reply.status, 404);
    }

    let reply = server.send(server.get("/metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let page = String::from_utf8(reply.bytes).unwrap();
    let grew = |series: &str, by: f64| {
        let delta = sample(&page, series) - sample(&before, series);
        assert!(
            delta >= by,
            "{series} grew by {delta}, expected {by}:\n{page}"
        );
    };
    grew(r#"auth_logins_total{outcome="success"}"#, 1.0);
    grew(r#"auth_logins_total{outcome="failure"}"#, 1.0);
    grew(
        r#"http_requests_total{method="DELETE",route="/v1/auth/sessions/{id}",status="404"}"#,
        2.0,
    );
    grew(
        r#"http_requests_total{method="POST",route="/v1/auth/signup",status="201"}"#,
        1.0,
    );
    assert!(
        page.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/v1/auth/login",le="+Inf"}"#),
        "latency histogram:\n{page}"
    );
    assert!(
        !page.contains("/v1/auth/sessions/a"),
        "raw paths are never labels"
    );
    assert!(page.contains("# TYPE http_request_duration_seconds histogram"));
}

auth_skeleton::both_backends!(
    every_response_carries_a_request_id_and_security_headers,
    a_sane_client_request_id_is_echoed_and_a_bad_one_replaced,
    cors_allows_the_listed_origins_with_credentials,
    cors_ignores_other_origins,
    metrics_count_requests_by_route_pattern_and_logins_by_outcome,
);
