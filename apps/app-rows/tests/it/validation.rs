//! The bounds of a change's fields, alike on every backend: `counter` and `ts` in the ranges
//! every JSON implementation holds exactly, an `id` without control characters, an ASCII `node`.

use auth_skeleton::testing::Backend;
use serde_json::{Value, json};

use crate::support::*;

fn with(field: &str, value: Value) -> Value {
    let mut r = row("notes", "n1", 1_000, 0, "a", json!({}));
    r[field] = value;
    r
}

async fn out_of_range_counters_and_ts_are_400_naming_the_field(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    for (change, field) in [
        (
            with("counter", json!(2_147_483_648_u64)),
            "changes[0].counter",
        ),
        (with("counter", json!(1_u64 << 40)), "changes[0].counter"),
        (with("counter", json!(i64::MAX)), "changes[0].counter"),
        (with("counter", json!(-1)), "changes[0].counter"),
        (
            with("ts", json!(9_007_199_254_740_992_u64)),
            "changes[0].ts",
        ),
        (with("ts", json!(i64::MAX)), "changes[0].ts"),
        (with("ts", json!(-1)), "changes[0].ts"),
    ] {
        let reply = push(&server, &token, std::slice::from_ref(&change)).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{change}: {detail}");
    }
    // The bounds themselves are well-formed (a ts that far ahead is only rejected).
    let reply = push(
        &server,
        &token,
        &[
            with("counter", json!(2_147_483_647)),
            with("ts", json!(9_007_199_254_740_991_u64)),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply), ["applied", "rejected"]);
    assert_eq!(reply.body["results"][1]["reason"], "clock_skew");
    assert_eq!(pull_all(&server, &token).await.len(), 1);
}

async fn control_characters_in_ids_and_bad_nodes_are_400_naming_the_field(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    for (change, field) in [
        (with("id", json!("a\u{0}b")), "changes[0].id"),
        (with("id", json!("\u{0}")), "changes[0].id"),
        (with("id", json!("line\nbreak")), "changes[0].id"),
        (with("id", json!("tab\t")), "changes[0].id"),
        (with("id", json!("del\u{7f}")), "changes[0].id"),
        (with("id", json!("c1\u{85}")), "changes[0].id"),
        (with("node", json!("a\u{0}")), "changes[0].node"),
        (with("node", json!("é")), "changes[0].node"),
        (with("node", json!("a b")), "changes[0].node"),
        (with("node", json!("a/b")), "changes[0].node"),
        (with("node", json!("n".repeat(65))), "changes[0].node"),
        (with("node", json!("")), "changes[0].node"),
    ] {
        let reply = push(&server, &token, std::slice::from_ref(&change)).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{change}: {detail}");
    }
    // What is allowed: any other character in an id, and [A-Za-z0-9._:-] in a node.
    let reply = push(
        &server,
        &token,
        &[
            row("c", "é ü 🦀 \u{200b}", 1_000, 0, "a", json!({})),
            row("c", "x", 1_000, 0, "Device-01.home:A_b", json!({})),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply), ["applied", "applied"]);
    let ids: Vec<Value> = pull_all(&server, &token)
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("é ü 🦀 \u{200b}"), json!("x")]);
}

/// A body or a change written as an array (serde would read a struct's fields from one, in
/// declaration order) is `400`, and nothing is stored.
async fn arrays_in_place_of_objects_are_400(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let change = row("notes", "arr", 1_000, 0, "a", json!({"k": 1}));
    let positional = json!(["notes", "tuple", 1_000, 0, "a", false, {"k": 1}]);
    for (body, field) in [
        (json!([[change.clone()]]), None),
        (json!({ "changes": [positional] }), Some("changes[0]")),
        (
            json!({ "changes": [change, positional] }),
            Some("changes[1]"),
        ),
    ] {
        let reply = server
            .send(server.post("/v1/rows/push", &body).bearer_auth(&token))
            .await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains("object"), "{body}: {detail}");
        if let Some(field) = field {
            assert!(detail.contains(field), "{body}: {detail}");
        }
    }
    assert!(pull_all(&server, &token).await.is_empty(), "nothing stored");
}

auth_skeleton::both_backends!(
    arrays_in_place_of_objects_are_400,
    out_of_range_counters_and_ts_are_400_naming_the_field,
    control_characters_in_ids_and_bad_nodes_are_400_naming_the_field,
);
