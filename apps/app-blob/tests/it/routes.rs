//! Every route of `/v1/save`: success paths, headers and error codes.

use auth_skeleton::testing::{Backend, TEST_PASSWORD};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn limits_are_public(backend: Backend) {
    let server = start_with(backend, &[("SAVE_HISTORY", "4")]).await;
    let reply = server.send(server.get("/v1/save/limits")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"max_bytes": 1_048_576, "history": 4}));
}

async fn save_routes_need_a_session(backend: Backend) {
    let server = start(backend).await;
    for (method, path) in [
        (Method::GET, "/v1/save"),
        (Method::PUT, "/v1/save"),
        (Method::DELETE, "/v1/save"),
        (Method::GET, "/v1/save/meta"),
        (Method::GET, "/v1/save/history"),
        (Method::GET, "/v1/save/history/g1-00000000"),
    ] {
        let reply = server
            .send(
                server
                    .request(method.clone(), path)
                    .header("If-None-Match", "*")
                    .body("x"),
            )
            .await;
        assert_problem(&reply, 401, "unauthenticated");
    }
}

async fn create_read_replace_and_delete(backend: Backend) {
    let server = start(backend).await;
    let signup = server
        .send(server.post(
            "/v1/auth/signup",
            &json!({"email": "ann@example.com", "password": TEST_PASSWORD,
                    "session": "bearer", "device_name": "Pixel 9"}),
        ))
        .await;
    assert_eq!(signup.status, 201);
    let ann = User {
        server: &server,
        token: signup.body["token"].as_str().unwrap().to_owned(),
        id: signup.body["user"]["id"].as_str().unwrap().to_owned(),
    };

    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    assert_problem(&ann.get("/v1/save/meta").await, 404, "no_save");

    let created = ann.put(b"level 1", &[("If-None-Match", "*")]).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let v1 = etag(&created);
    assert!(v1.starts_with('"') && v1.ends_with('"'), "{v1}");
    assert_eq!(created.body["version"], v1.as_str());
    assert_eq!(created.body["size"], 7);
    assert_eq!(created.body["sha256"], sha256_hex(b"level 1").as_str());
    assert_eq!(created.body["updated_at"], "2025-11-28T05:20:00Z");
    assert_eq!(created.body["device_name"], "Pixel 9");
    assert_eq!(created.header("cache-control"), Some("no-store"));

    let read = ann.get("/v1/save").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.bytes, b"level 1");
    assert_eq!(etag(&read), v1);
    assert_eq!(
        read.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(read.header("cache-control"), Some("no-store"));

    let meta = ann.get("/v1/save/meta").await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body, created.body);
    assert_eq!(etag(&meta), v1);

    let head = ann.send(ann.request(Method::HEAD, "/v1/save")).await;
    assert_eq!(head.status, 200);
    assert_eq!(etag(&head), v1);
    assert!(head.bytes.is_empty());

    server.clock.advance(std::time::Duration::from_secs(60));
    let replaced = ann.put(b"level 2", &[("If-Match", &v1)]).await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    let v2 = etag(&replaced);
    assert_ne!(v2, v1);
    assert_eq!(replaced.body["version"], v2.as_str());
    assert_eq!(replaced.body["updated_at"], "2025-11-28T05:21:00Z");
    assert_eq!(ann.get("/v1/save").await.bytes, b"level 2");

    let deleted = ann.delete(&[("If-Match", &v2)]).await;
    assert_eq!(deleted.status, 204);
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    assert_problem(&ann.get("/v1/save/meta").await, 404, "no_save");
    assert_problem(&ann.delete(&[("If-Match", &v2)]).await, 404, "no_save");

    // After a delete, the save can be created again, under a new version.
    let again = ann.create(b"level 1").await;
    assert!(again != v1 && again != v2);
}

async fn conditional_reads(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"save").await;
    let get = |headers: Vec<(&'static str, String)>| {
        let mut request = ann.request(Method::GET, "/v1/save");
        for (k, v) in headers {
            request = request.header(k, v);
        }
        ann.send(request)
    };

    for matching in [
        v1.clone(),
        format!("W/{v1}"),
        "*".into(),
        format!("\"x\", {v1}"),
    ] {
        let reply = get(vec![("If-None-Match", matching.clone())]).await;
        assert_eq!(reply.status, 304, "{matching}");
        assert!(reply.bytes.is_empty());
        assert_eq!(etag(&reply), v1);
    }
    let reply = get(vec![("If-None-Match", "\"g0-00000000\"".into())]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.bytes, b"save");

    // If-Match on a read: RFC 9110 says a failed one is 412.
    let reply = get(vec![("If-Match", "\"g0-00000000\"".into())]).await;
    assert_problem(&reply, 412, "version_conflict");
    assert_eq!(reply.body["current"]["version"], v1.as_str());
    assert_eq!(get(vec![("If-Match", v1.clone())]).await.status, 200);

    // The meta answers the same conditions (the contract: `304` while If-None-Match matches).
    let meta = |name: &'static str, value: String| {
        ann.send(
            ann.request(Method::GET, "/v1/save/meta")
                .header(name, value),
        )
    };
    let reply = meta("If-None-Match", v1.clone()).await;
    assert_eq!(reply.status, 304);
    assert!(reply.bytes.is_empty());
    assert_eq!(etag(&reply), v1);
    let reply = meta("If-None-Match", "\"g0-00000000\"".into()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["version"], v1.as_str());
    let reply = meta("If-Match", "\"g0-00000000\"".into()).await;
    assert_problem(&reply, 412, "version_conflict");
    assert_problem(
        &meta("If-None-Match", "nonsense".into()).await,
        400,
        "invalid_request",
    );
}

async fn unguarded_writes_are_precondition_required(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    assert_problem(&ann.put(b"x", &[]).await, 428, "precondition_required");
    // If-None-Match with a tag would overwrite any other version: not a guard.
    assert_problem(
        &ann.put(b"x", &[("If-None-Match", "\"g1-00000000\"")]).await,
        428,
        "precondition_required",
    );
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");

    let v1 = ann.create(b"x").await;
    assert_problem(&ann.put(b"y", &[]).await, 428, "precondition_required");
    assert_problem(&ann.delete(&[]).await, 428, "precondition_required");
    assert_problem(
        &ann.delete(&[("If-None-Match", "*")]).await,
        428,
        "precondition_required",
    );
    let meta = ann.get("/v1/save/meta").await;
    assert_eq!(meta.body["version"], v1.as_str());
}

async fn stale_writes_are_refused_with_the_current_meta(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;

    // If-Match when there is no save: the version it names is gone; `current` is null.
    let reply = ann.put(b"x", &[("If-Match", "\"g1-00000000\"")]).await;
    assert_problem(&reply, 412, "version_conflict");
    assert_eq!(reply.body["current"], serde_json::Value::Null);

    let v1 = ann.create(b"one").await;
    let current = ann.get("/v1/save/meta").await.body;
    let v2 = ann.replace(&v1, b"two").await;
    let current2 = ann.get("/v1/save/meta").await.body;
    assert_ne!(current, current2);

    for headers in [
        vec![("If-None-Match", "*")],
        vec![("If-Match", v1.as_str())],
        vec![("If-Match", "\"g9-00000000\", \"g8-00000000\"")],
        // A weak tag never matches If-Match, even the current one.
        vec![("If-Match", &*format!("W/{v2}"))],
        // If-Match holds, If-None-Match does not.
        vec![("If-Match", v2.as_str()), ("If-None-Match", "*")],
    ] {
        let reply = ann.put(b"three", &headers).await;
        assert_problem(&reply, 412, "version_conflict");
        assert_eq!(reply.body["current"], current2, "{headers:?}");
    }
    let reply = ann.delete(&[("If-Match", &v1)]).await;
    assert_problem(&reply, 412, "version_conflict");
    assert_eq!(reply.body["current"], current2);

    // Nothing changed: not the save, not the history.
    assert_eq!(ann.get("/v1/save").await.bytes, b"two");
    let history = ann.get("/v1/save/history").await;
    assert_eq!(history.body["versions"], json!([current]));

    // A list that contains the current version, and `*`, both hold.
    let listed = format!("\"g9-00000000\", {v2}");
    let v3 = etag(&ann.put(b"three", &[("If-Match", &listed)]).await);
    assert_eq!(ann.put(b"four", &[("If-Match", "*")]).await.status, 200);
    assert_ne!(v3, v2);
}

async fn malformed_headers_are_invalid_requests(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"x").await;
    for (headers, names) in [
        (vec![("If-Match", "g1")], "If-Match"),
        (vec![("If-Match", "\"unterminated")], "If-Match"),
        (vec![("If-None-Match", "*, \"a\"")], "If-None-Match"),
        (
            vec![("If-Match", v1.as_str()), ("Content-Digest", "sha-256=abc")],
            "Content-Digest",
        ),
        (
            vec![("If-Match", v1.as_str()), ("Content-Digest", "md5=:AAAA:")],
            "Content-Digest",
        ),
        (
            vec![
                ("If-Match", v1.as_str()),
                ("Idempotency-Key", &*"k".repeat(256)),
            ],
            "Idempotency-Key",
        ),
    ] {
        let reply = ann.put(b"y", &headers).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(names), "{detail}");
    }
    let reply = ann
        .send(
            ann.request(Method::GET, "/v1/save")
                .header("If-None-Match", "nope"),
        )
        .await;
    assert_problem(&reply, 400, "invalid_request");
    assert_eq!(ann.get("/v1/save").await.bytes, b"x");
}

async fn other_methods_are_not_allowed(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    for (method, path, allow) in [
        (Method::POST, "/v1/save", "GET, HEAD, PUT, DELETE"),
        (Method::PUT, "/v1/save/meta", "GET, HEAD"),
        (Method::DELETE, "/v1/save/history", "GET, HEAD"),
        (Method::POST, "/v1/save/limits", "GET, HEAD"),
    ] {
        let reply = ann.send(ann.request(method, path)).await;
        assert_problem(&reply, 405, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow));
    }
    assert_problem(&ann.get("/v1/save/nope").await, 404, "not_found");
}

async fn each_user_sees_only_their_own_save(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let bob = User::signup(&server, "bob@example.com").await;
    let v1 = ann.create(b"ann's").await;
    ann.replace(&v1, b"ann's too").await;

    assert_problem(&bob.get("/v1/save").await, 404, "no_save");
    assert_eq!(
        bob.get("/v1/save/history").await.body,
        json!({"versions": []})
    );
    let path = format!("/v1/save/history/{}", v1.trim_matches('"'));
    assert_problem(&bob.get(&path).await, 404, "not_found");
    assert_eq!(ann.get(&path).await.bytes, b"ann's");
    // Ann's ETag means nothing for Bob's (missing) save.
    assert_problem(
        &bob.put(b"bob's", &[("If-Match", &v1)]).await,
        412,
        "version_conflict",
    );
    bob.create(b"bob's").await;
    assert_eq!(ann.get("/v1/save").await.bytes, b"ann's too");
}

async fn versions_never_repeat_even_for_the_same_bytes(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let a1 = ann.create(b"A").await;
    let b = ann.replace(&a1, b"B").await;
    let a2 = ann.replace(&b, b"A").await;
    assert!(a1 != b && b != a2 && a1 != a2, "{a1} {b} {a2}");
    // The first A's ETag does not match the second A.
    assert_problem(
        &ann.put(b"C", &[("If-Match", &a1)]).await,
        412,
        "version_conflict",
    );
    // Nor does deleting and creating again bring an old ETag back.
    assert_eq!(ann.delete(&[("If-Match", &a2)]).await.status, 204);
    let a3 = ann.create(b"A").await;
    assert!(![&a1, &b, &a2].contains(&&a3));
}

/// Writes show up in `/metrics` by outcome (the counters are process-wide, so only their
/// presence is checked).
async fn writes_are_counted_in_metrics(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"one").await;
    let v2 = ann.replace(&v1, b"two").await;
    assert_eq!(ann.put(b"x", &[("If-Match", &v1)]).await.status, 412);
    assert_eq!(ann.delete(&[("If-Match", &v2)]).await.status, 204);
    let text = String::from_utf8(server.send(server.get("/metrics")).await.bytes).unwrap();
    for outcome in ["created", "replaced", "conflict", "deleted"] {
        let line = format!("blob_writes_total{{outcome=\"{outcome}\"}}");
        assert!(text.contains(&line), "{line} missing from {text}");
    }
}

auth_skeleton::both_backends!(
    limits_are_public,
    writes_are_counted_in_metrics,
    save_routes_need_a_session,
    create_read_replace_and_delete,
    conditional_reads,
    unguarded_writes_are_precondition_required,
    stale_writes_are_refused_with_the_current_meta,
    malformed_headers_are_invalid_requests,
    other_methods_are_not_allowed,
    each_user_sees_only_their_own_save,
    versions_never_repeat_even_for_the_same_bytes,
);
