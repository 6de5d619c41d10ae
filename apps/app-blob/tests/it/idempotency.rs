//! Idempotency-Key: a retry after a lost response gets the original answer.

use std::time::Duration;

use auth_skeleton::testing::Backend;
use reqwest::Method;

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

/// A retry may spell its preconditions otherwise (list syntax, repeats, another order, weak
/// tags where the comparison ignores weakness, several field lines): what they mean is the
/// same, so it is the same request.
async fn a_retry_that_spells_its_preconditions_otherwise_is_the_same_request(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"one").await;

    let first = ann
        .put(
            b"two",
            &[("If-Match", &v1), ("Idempotency-Key", "k-replace")],
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let spellings = [
        format!("{v1},"),
        format!(", {v1}"),
        format!("{v1}, {v1}"),
        format!("{v1} ,,{v1}"),
        // A weak tag never matches If-Match: adding one changes nothing.
        format!("{v1}, W/\"g0-00000000\""),
    ];
    for spelling in &spellings {
        let retry = ann
            .put(
                b"two",
                &[("If-Match", spelling), ("Idempotency-Key", "k-replace")],
            )
            .await;
        assert_eq!(retry.status, 200, "{spelling}: {:?}", retry.body);
        assert_eq!(retry.body, first.body, "{spelling}");
    }
    // The same tag on two field lines.
    let retry = ann
        .send(
            ann.request(Method::PUT, "/v1/save")
                .header("If-Match", &v1)
                .header("If-Match", &v1)
                .header("Idempotency-Key", "k-replace")
                .body("two"),
        )
        .await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.body, first.body);

    // A list in another order, and If-None-Match compared weakly: `"x"` and `W/"x"` agree.
    let v2 = etag(&first);
    let listed = format!("\"g0-00000000\", {v2}");
    let reordered = format!("{v2}, \"g0-00000000\"");
    let first = ann
        .put(
            b"three",
            &[
                ("If-Match", &listed),
                ("If-None-Match", "\"g0-11111111\""),
                ("Idempotency-Key", "k-list"),
            ],
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let retry = ann
        .put(
            b"three",
            &[
                ("If-Match", &reordered),
                ("If-None-Match", "W/\"g0-11111111\""),
                ("Idempotency-Key", "k-list"),
            ],
        )
        .await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.body, first.body);

    // One write per key: two versions replaced in all.
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 2);
    assert_eq!(ann.get("/v1/save").await.bytes, b"three");

    // A precondition that means something else is another request.
    let v3 = etag(&first);
    for (name, value) in [
        ("If-Match", "*".to_owned()),
        ("If-Match", format!("{v2}, {v3}")),
        ("If-Match", v3.clone()),
    ] {
        let reply = ann
            .put(b"three", &[(name, &value), ("Idempotency-Key", "k-list")])
            .await;
        assert_problem(&reply, 422, "idempotency_key_reused");
    }
}

/// `DELETE` with `Idempotency-Key`: a retry after a lost response gets the original `204`.
async fn a_retried_delete_gets_the_original_answer(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"one").await;

    let delete = [("If-Match", v1.as_str()), ("Idempotency-Key", "k-delete")];
    let first = ann.delete(&delete).await;
    assert_eq!(first.status, 204, "{:?}", first.body);
    // The response was lost; the client sends the same request again, in any spelling.
    let retry = ann.delete(&delete).await;
    assert_eq!(retry.status, 204, "not a false 404: {:?}", retry.body);
    assert!(retry.bytes.is_empty());
    let listed = format!("{v1}, {v1}");
    let retry = ann
        .delete(&[("If-Match", &listed), ("Idempotency-Key", "k-delete")])
        .await;
    assert_eq!(retry.status, 204, "{:?}", retry.body);
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 1);

    // Another device creates the save meanwhile: the retry answers 204 and deletes nothing.
    let v2 = ann.create(b"two").await;
    assert_eq!(ann.delete(&delete).await.status, 204);
    assert_eq!(ann.get("/v1/save").await.bytes, b"two");

    // The same key for another precondition, or for a PUT, is another request.
    assert_problem(
        &ann.delete(&[("If-Match", &v2), ("Idempotency-Key", "k-delete")])
            .await,
        422,
        "idempotency_key_reused",
    );
    assert_problem(
        &ann.put(
            b"one",
            &[("If-Match", &v1), ("Idempotency-Key", "k-delete")],
        )
        .await,
        422,
        "idempotency_key_reused",
    );
    // And a PUT's key is not a DELETE's, even with the same precondition.
    let v3 = etag(
        &ann.put(b"three", &[("If-Match", &v2), ("Idempotency-Key", "k-put")])
            .await,
    );
    assert_problem(
        &ann.delete(&[("If-Match", &v2), ("Idempotency-Key", "k-put")])
            .await,
        422,
        "idempotency_key_reused",
    );
    assert_eq!(ann.get("/v1/save").await.bytes, b"three");

    // A refused delete is not remembered: the key still serves the corrected request.
    let stale = [("If-Match", v2.as_str()), ("Idempotency-Key", "k-second")];
    assert_problem(&ann.delete(&stale).await, 412, "version_conflict");
    let fixed = [("If-Match", v3.as_str()), ("Idempotency-Key", "k-second")];
    assert_eq!(ann.delete(&fixed).await.status, 204);
    assert_eq!(ann.delete(&fixed).await.status, 204);
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");

    // Without a key a repeated delete is judged afresh, as before.
    let v4 = ann.create(b"four").await;
    assert_eq!(ann.delete(&[("If-Match", &v4)]).await.status, 204);
    assert_problem(&ann.delete(&[("If-Match", &v4)]).await, 404, "no_save");

    // A malformed key is refused before anything happens.
    let v5 = ann.create(b"five").await;
    let long = "k".repeat(256);
    let reply = ann
        .delete(&[("If-Match", &v5), ("Idempotency-Key", &long)])
        .await;
    assert_problem(&reply, 400, "invalid_request");
    assert_eq!(ann.get("/v1/save").await.bytes, b"five");

    // Delete keys expire after 24 hours like the others.
    assert_eq!(
        ann.delete(&[("If-Match", &v5), ("Idempotency-Key", "k-late")])
            .await
            .status,
        204
    );
    server.clock.advance(Duration::from_secs(24 * 3_600));
    assert_problem(
        &ann.delete(&[("If-Match", &v5), ("Idempotency-Key", "k-late")])
            .await,
        404,
        "no_save",
    );
}

auth_skeleton::both_backends!(
    a_retry_with_the_same_key_gets_the_original_response,
    a_key_reused_for_another_request_is_refused,
    keys_are_forgotten_after_24_hours,
    a_retry_that_spells_its_preconditions_otherwise_is_the_same_request,
    a_retried_delete_gets_the_original_answer,
);
