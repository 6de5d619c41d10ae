//! `POST /v1/rows/push`: versions, results, validation and limits.

use auth_skeleton::testing::Backend;
use serde_json::{Value, json};

use crate::support::*;

async fn push_applies_changes_and_answers_one_result_per_change_in_order(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let changes = [
        row("notes", "n1", 100, 0, "a", json!({"title": "one"})),
        row("tasks", "t1", 100, 0, "a", json!({"done": false})),
        tombstone("notes", "n0", 100, 1, "a"),
    ];
    let reply = push(&server, &token, &changes).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["server_time"], server.clock.now_ms());
    assert_eq!(
        reply.body["results"],
        json!([
            {"collection": "notes", "id": "n1", "status": "applied"},
            {"collection": "tasks", "id": "t1", "status": "applied"},
            {"collection": "notes", "id": "n0", "status": "applied"},
        ])
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    // A pull returns the rows exactly as pushed, tombstone included, in push order.
    assert_eq!(pull_all(&server, &token).await, changes.to_vec());
    // Sync work shows on /metrics (the counters are process-wide: other tests add to them).
    let metrics = server.send(server.get("/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics.bytes);
    for (series, at_least) in [
        (r#"sync_rows_total{direction="pushed"}"#, 3.0),
        (r#"sync_rows_total{direction="pulled"}"#, 3.0),
        (r#"sync_requests_total{operation="push"}"#, 1.0),
        (r#"sync_requests_total{operation="pull"}"#, 1.0),
    ] {
        let value: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("{series} missing from {metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(value >= at_least, "{series} {value}");
    }
}

async fn a_retried_push_is_stale_and_changes_nothing(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let changes = [
        row("notes", "n1", 100, 0, "a", json!({"v": 1})),
        tombstone("notes", "n2", 100, 1, "a"),
    ];
    assert_eq!(
        statuses(&push(&server, &token, &changes).await),
        ["applied", "applied"]
    );
    let before = pull(&server, &token, "").await;
    let cursor = before.body["cursor"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(
            statuses(&push(&server, &token, &changes).await),
            ["stale", "stale"]
        );
    }
    let after = pull(&server, &token, "").await;
    assert_eq!(after.body["changes"], before.body["changes"]);
    assert_eq!(after.body["cursor"], before.body["cursor"]);
    let since = pull(&server, &token, &format!("?since={cursor}")).await;
    assert_eq!(
        since.body["changes"],
        json!([]),
        "a stale change makes no new change"
    );
}

async fn the_greater_version_wins_and_replaces_the_whole_row(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let steps: [(Value, &str); 8] = [
        (
            row("c", "r", 10, 0, "b", json!({"v": "b", "extra": 1})),
            "applied",
        ),
        // A greater counter wins over the node; a greater node breaks a full tie.
        (row("c", "r", 10, 0, "a", json!({"v": "a"})), "stale"),
        (row("c", "r", 10, 0, "c", json!({"v": "c"})), "applied"),
        (row("c", "r", 9, 99, "z", json!({"v": "old"})), "stale"),
        (row("c", "r", 10, 1, "a", json!({"v": "a1"})), "applied"),
        (tombstone("c", "r", 20, 0, "a"), "applied"),
        // An older write never resurrects a tombstone...
        (row("c", "r", 19, 7, "z", json!({"v": "late"})), "stale"),
        // ...a newer one does.
        (row("c", "r", 20, 1, "a", json!({"v": "back"})), "applied"),
    ];
    let mut expected = Value::Null;
    for (change, status) in steps {
        let reply = push(&server, &token, std::slice::from_ref(&change)).await;
        assert_eq!(statuses(&reply), [status], "{change}");
        if status == "applied" {
            expected = change;
        }
        assert_eq!(pull_all(&server, &token).await, [expected.clone()]);
    }
    // Node order is by bytes: "B" (0x42) < "_" (0x5F) < "a" (0x61) < "b", whatever the locale.
    let reply = push(
        &server,
        &token,
        &[
            row("c", "n", 1, 0, "a", json!({})),
            row("c", "n", 1, 0, "B", json!({})),
            row("c", "n", 1, 0, "_", json!({})),
            row("c", "n", 1, 0, "b", json!({})),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied", "stale", "stale", "applied"]);
}

async fn a_batch_applies_changes_in_order(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let reply = push(
        &server,
        &token,
        &[
            row("c", "r", 5, 0, "a", json!({"v": 1})),
            row("c", "r", 4, 0, "a", json!({"v": 0})),
            row("c", "r", 6, 0, "a", json!({"v": 2})),
            tombstone("c", "r", 6, 0, "a"),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied", "stale", "applied", "stale"]);
    assert_eq!(pull_all(&server, &token).await[0]["data"], json!({"v": 2}));
}

async fn a_large_batch_compares_each_change_with_its_own_row(backend: Backend) {
    // More rows than one stored-version query reads, so the batch is looked up in parts.
    let (server, token) = start_signed_in(backend, &[]).await;
    let first: Vec<Value> = (0..600)
        .map(|i| row("c", &format!("r{i}"), 10, 0, "a", json!({"v": i})))
        .collect();
    let reply = push(&server, &token, &first).await;
    assert!(statuses(&reply).iter().all(|s| *s == "applied"));
    // Newer versions of the even rows, older ones of the odd rows, and 100 rows never seen.
    let wins = |i: usize| i >= 600 || i.is_multiple_of(2);
    let second: Vec<Value> = (0..700)
        .map(|i| {
            let ts = if wins(i) { 11 } else { 9 };
            row("c", &format!("r{i}"), ts, 0, "a", json!({"v": i + 1000}))
        })
        .collect();
    let reply = push(&server, &token, &second).await;
    let expected: Vec<&str> = (0..700)
        .map(|i| if wins(i) { "applied" } else { "stale" })
        .collect();
    assert_eq!(statuses(&reply), expected);
    let rows = pull_all(&server, &token).await;
    assert_eq!(rows.len(), 700);
    for stored in rows {
        let i: usize = stored["id"].as_str().unwrap()[1..].parse().unwrap();
        let v = if wins(i) { i + 1000 } else { i };
        assert_eq!(stored["data"], json!({"v": v}), "row r{i}");
    }
}

async fn a_malformed_change_fails_the_whole_push_naming_it(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let good = row("notes", "n1", 1, 0, "a", json!({}));
    let with = |field: &str, value: Value| {
        let mut r = row("notes", "n2", 1, 0, "a", json!({}));
        if value == json!("<absent>") {
            r.as_object_mut().unwrap().remove(field);
        } else {
            r[field] = value;
        }
        r
    };
    let cases = [
        (with("collection", json!("Notes")), "changes[1].collection"),
        (with("collection", json!("")), "changes[1].collection"),
        (
            with("collection", json!("x".repeat(65))),
            "changes[1].collection",
        ),
        (with("collection", json!(7)), "changes[1].collection"),
        (with("id", json!("")), "changes[1].id"),
        (with("id", json!("i".repeat(129))), "changes[1].id"),
        (with("id", json!("<absent>")), "missing field `id`"),
        (with("node", json!("")), "changes[1].node"),
        (with("node", json!("n".repeat(65))), "changes[1].node"),
        (with("ts", json!(-1)), "changes[1].ts"),
        (with("ts", json!(1.5)), "changes[1].ts"),
        (with("ts", json!("1")), "changes[1].ts"),
        (with("counter", json!(-3)), "changes[1].counter"),
        (with("counter", json!(u64::MAX)), "changes[1].counter"),
        (with("deleted", json!("no")), "changes[1].deleted"),
        (
            with("deleted", json!("<absent>")),
            "missing field `deleted`",
        ),
        (with("data", json!([1, 2])), "changes[1].data"),
        (with("data", json!("text")), "changes[1].data"),
        (with("data", Value::Null), "changes[1].data"),
        (with("data", json!("<absent>")), "changes[1].data"),
        (with("deleted", json!(true)), "changes[1].data"),
    ];
    for (bad, names) in cases {
        let reply = push(&server, &token, &[good.clone(), bad.clone()]).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{bad}: {detail}");
    }
    for body in [json!({}), json!({"changes": {}}), json!([good.clone()])] {
        let reply = server
            .send(server.post("/v1/rows/push", &body).bearer_auth(&token))
            .await;
        assert_problem(&reply, 400, "invalid_request");
    }
    let reply = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/rows/push")
                .bearer_auth(&token)
                .body("{not json"),
        )
        .await;
    assert_problem(&reply, 400, "invalid_request");
    assert!(
        pull_all(&server, &token).await.is_empty(),
        "a refused push applies nothing"
    );
}

async fn too_many_changes_or_too_large_a_body_is_413(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let changes: Vec<Value> = (0..1001)
        .map(|i| row("c", &format!("r{i}"), 1, 0, "a", json!({})))
        .collect();
    let reply = push(&server, &token, &changes).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert!(reply.body["detail"].as_str().unwrap().contains("1000"));
    let reply = push(&server, &token, &changes[..1000]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply).len(), 1000);

    // 40 rows of 50 KB: 2 MB of body, under the 2 MiB limit.
    let big: Vec<Value> = (0..40)
        .map(|i| {
            row(
                "big",
                &format!("b{i}"),
                1,
                0,
                "a",
                json!({"s": "x".repeat(50_000)}),
            )
        })
        .collect();
    let reply = push(&server, &token, &big).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let over: Vec<Value> = (0..43)
        .map(|i| {
            row(
                "big",
                &format!("o{i}"),
                1,
                0,
                "a",
                json!({"s": "x".repeat(50_000)}),
            )
        })
        .collect();
    assert_problem(
        &push(&server, &token, &over).await,
        413,
        "payload_too_large",
    );
}

async fn a_change_over_a_limit_is_rejected_alone(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let now = server.clock.now_ms();
    let skew = 5 * 60 * 1000;
    let reply = push(
        &server,
        &token,
        &[
            row("c", "ahead", now + skew + 1, 0, "a", json!({})),
            row("c", "edge", now + skew, 0, "a", json!({})),
            row(
                "c",
                "huge",
                now,
                0,
                "a",
                json!({"s": "x".repeat(64 * 1024)}),
            ),
            row(
                "c",
                "fits",
                now,
                0,
                "a",
                json!({"s": "x".repeat(64 * 1024 - 8)}),
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["results"],
        json!([
            {"collection": "c", "id": "ahead", "status": "rejected", "reason": "clock_skew", "current": null},
            {"collection": "c", "id": "edge", "status": "applied"},
            {"collection": "c", "id": "huge", "status": "rejected", "reason": "row_too_large", "current": null},
            {"collection": "c", "id": "fits", "status": "applied"},
        ])
    );
    let ids: Vec<Value> = pull_all(&server, &token)
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("edge"), json!("fits")]);

    // MAX_CLOCK_SKEW is configurable.
    let (server, token) = start_signed_in(backend, &[("MAX_CLOCK_SKEW", "10s")]).await;
    let now = server.clock.now_ms();
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", now + 10_001, 0, "n", json!({})),
            row("c", "b", now + 10_000, 0, "n", json!({})),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["rejected", "applied"]);
}

async fn the_quota_counts_rows_and_tombstones(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[("ROWS_QUOTA", "3")]).await;
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", 1, 0, "n", json!({})),
            row("c", "b", 1, 0, "n", json!({})),
            tombstone("c", "c", 1, 0, "n"),
            row("c", "d", 1, 0, "n", json!({})),
        ],
    )
    .await;
    assert_eq!(
        reply.body["results"][3],
        json!({"collection": "c", "id": "d", "status": "rejected", "reason": "quota_exceeded", "current": null})
    );
    assert_eq!(
        statuses(&reply),
        ["applied", "applied", "applied", "rejected"]
    );
    // Existing rows still change, and deleting one does not free its place.
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", 2, 0, "n", json!({"v": 2})),
            tombstone("c", "b", 2, 0, "n"),
            row("c", "d", 2, 0, "n", json!({})),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied", "applied", "rejected"]);
    // Another user has a quota of its own.
    let (other, _) = server.signup_bearer("bob@example.com").await;
    assert_eq!(
        statuses(&push(&server, &other, &[row("c", "d", 1, 0, "n", json!({}))]).await),
        ["applied"]
    );
}

async fn each_user_sees_only_its_own_rows(backend: Backend) {
    let (server, ann) = start_signed_in(backend, &[]).await;
    let (bob, _) = server.signup_bearer("bob@example.com").await;
    push(
        &server,
        &ann,
        &[row("c", "same", 5, 0, "a", json!({"who": "ann"}))],
    )
    .await;
    // Bob's row with the same key and an older version is his own, not stale against Ann's.
    let reply = push(
        &server,
        &bob,
        &[row("c", "same", 1, 0, "b", json!({"who": "bob"}))],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied"]);
    let ann_rows = pull_all(&server, &ann).await;
    let bob_rows = pull_all(&server, &bob).await;
    assert_eq!(ann_rows.len(), 1);
    assert_eq!(ann_rows[0]["data"], json!({"who": "ann"}));
    assert_eq!(bob_rows.len(), 1);
    assert_eq!(bob_rows[0]["data"], json!({"who": "bob"}));
}

async fn sync_routes_need_a_session_and_their_method(backend: Backend) {
    let server = start(backend, &[]).await;
    let reply = server
        .send(server.post("/v1/rows/push", &json!({"changes": []})))
        .await;
    assert_problem(&reply, 401, "unauthenticated");
    let reply = server
        .send(
            server
                .post("/v1/rows/push", &json!({"changes": []}))
                .bearer_auth("nope"),
        )
        .await;
    assert_problem(&reply, 401, "unauthenticated");
    // Even an oversize body from a stranger is answered 401: the caller is checked first.
    let reply = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/rows/push")
                .body(vec![b' '; 3 * 1024 * 1024]),
        )
        .await;
    assert_problem(&reply, 401, "unauthenticated");
    assert_problem(
        &server.send(server.get("/v1/rows/pull")).await,
        401,
        "unauthenticated",
    );

    let (token, _) = server.signup_bearer("ann@example.com").await;
    let reply = server
        .send(server.get("/v1/rows/push").bearer_auth(&token))
        .await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = server
        .send(server.post("/v1/rows/pull", &json!({})).bearer_auth(&token))
        .await;
    assert_problem(&reply, 405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = server
        .send(server.get("/v1/rows/elsewhere").bearer_auth(&token))
        .await;
    assert_problem(&reply, 404, "not_found");
    // An empty push is fine.
    let reply = push(&server, &token, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["results"], json!([]));
}

auth_skeleton::both_backends!(
    push_applies_changes_and_answers_one_result_per_change_in_order,
    a_retried_push_is_stale_and_changes_nothing,
    the_greater_version_wins_and_replaces_the_whole_row,
    a_batch_applies_changes_in_order,
    a_large_batch_compares_each_change_with_its_own_row,
    a_malformed_change_fails_the_whole_push_naming_it,
    too_many_changes_or_too_large_a_body_is_413,
    a_change_over_a_limit_is_rejected_alone,
    the_quota_counts_rows_and_tombstones,
    each_user_sees_only_its_own_rows,
    sync_routes_need_a_session_and_their_method,
);
