//! Idempotency-Key: a retry after a lost response gets the original answer.

use std::time::Duration;

use auth_skeleton::testing::Backend;

use crate::support::*;

async fn a_retry_with_the_same_key_gets_the_original_response(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;

    let create = [("If-None-Match", "*"), ("Idempotency-Key", "k-create")];
    let first = ann.put(b"one", &create).await;
    assert_eq!(first.status, 201);
    // The response was lost; the client sends the same request again.
    let retry = ann.put(b"one", &create).await;
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(etag(&retry), etag(&first));

    let v1 = etag(&first);
    let replace = [("If-Match", v1.as_str()), ("Idempotency-Key", "k-replace")];
    let first = ann.put(b"two", &replace).await;
    assert_eq!(first.status, 200);
    let retry = ann.put(b"two", &replace).await;
    assert_eq!(retry.status, 200, "not a false 412: {:?}", retry.body);
    assert_eq!(retry.body, first.body);

    // One write happened per key: one version replaced, and the save is the first answer's.
    assert_eq!(ann.get("/v1/save/meta").await.body, first.body);
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 1);
}

async fn a_key_reused_for_another_request_is_refused(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = etag(
        &ann.put(b"one", &[("If-None-Match", "*"), ("Idempotency-Key", "k1")])
            .await,
    );

    // Same key, different bytes.
    let reply = ann
        .put(
            b"other",
            &[("If-None-Match", "*"), ("Idempotency-Key", "k1")],
        )
        .await;
    assert_problem(&reply, 422, "idempotency_key_reused");
    // Same key and bytes, different precondition.
    let reply = ann
        .put(b"one", &[("If-Match", &v1), ("Idempotency-Key", "k1")])
        .await;
    assert_problem(&reply, 422, "idempotency_key_reused");
    assert_eq!(ann.get("/v1/save").await.bytes, b"one");

    // Keys belong to their user: Bob's k1 is a new request.
    let bob = User::signup(&server, "bob@example.com").await;
    let reply = bob
        .put(
            b"other",
            &[("If-None-Match", "*"), ("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(reply.status, 201);
}

async fn keys_are_forgotten_after_24_hours(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let headers = [("If-None-Match", "*"), ("Idempotency-Key", "k1")];
    assert_eq!(ann.put(b"one", &headers).await.status, 201);

    server.clock.advance(Duration::from_secs(23 * 3_600));
    assert_eq!(ann.put(b"one", &headers).await.status, 201);
    assert_eq!(
        app_blob::store::purge_idempotency_records(&server.db, server.clock.now_ms())
            .await
            .unwrap(),
        0
    );

    server.clock.advance(Duration::from_secs(3_600));
    // The key expired: the request is judged afresh, and the save exists now.
    assert_problem(&ann.put(b"one", &headers).await, 412, "version_conflict");
    assert_eq!(rows_of(&server, "blob_idempotency", &ann.id).await, 1);
    let purged = app_blob::store::purge_idempotency_records(&server.db, server.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(rows_of(&server, "blob_idempotency", &ann.id).await, 0);
}

auth_skeleton::both_backends!(
    a_retry_with_the_same_key_gets_the_original_response,
    a_key_reused_for_another_request_is_refused,
    keys_are_forgotten_after_24_hours,
);
