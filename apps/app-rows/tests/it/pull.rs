//! `GET /v1/rows/pull`: pages, cursors and their errors.

use app_rows::cursor::Cursor;
use auth_skeleton::testing::Backend;
use serde_json::{Value, json};

use crate::support::*;

fn ids(reply: &auth_skeleton::testing::Reply) -> Vec<String> {
    reply.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn pages_follow_the_cursor_in_push_order(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let changes: Vec<Value> = (0..7)
        .map(|i| row("c", &format!("r{i}"), 1, 0, "a", json!({"i": i})))
        .collect();
    push(&server, &token, &changes).await;

    let mut since = String::new();
    let mut seen = Vec::new();
    for (expected_len, more) in [(3, true), (3, true), (1, false)] {
        let reply = pull(&server, &token, &format!("?since={since}&limit=3")).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["server_time"], server.clock.now_ms());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(ids(&reply).len(), expected_len);
        assert_eq!(reply.body["has_more"], more);
        seen.extend(ids(&reply));
        since = reply.body["cursor"].as_str().unwrap().to_owned();
    }
    let expected: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
    assert_eq!(seen, expected);
    // At the end, the cursor stays where it is until something changes.
    let reply = pull(&server, &token, &format!("?since={since}")).await;
    assert_eq!(reply.body["changes"], json!([]));
    assert_eq!(reply.body["has_more"], false);
    assert_eq!(reply.body["cursor"], since.as_str());
    // An empty `since` is the start.
    let reply = pull(&server, &token, "?since=").await;
    assert_eq!(ids(&reply), expected);
}

async fn a_new_user_pulls_an_empty_page(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let reply = pull(&server, &token, "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["changes"], json!([]));
    assert_eq!(reply.body["has_more"], false);
    let cursor = reply.body["cursor"].as_str().unwrap();
    let again = pull(&server, &token, &format!("?since={cursor}")).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}

async fn the_limit_defaults_to_500_and_is_lowered_to_1000(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let changes: Vec<Value> = (0..1001)
        .map(|i| row("c", &format!("r{i}"), 1, 0, "a", json!({})))
        .collect();
    push(&server, &token, &changes[..1000]).await;
    push(&server, &token, &changes[1000..]).await;
    let reply = pull(&server, &token, "").await;
    assert_eq!(ids(&reply).len(), 500);
    assert_eq!(reply.body["has_more"], true);
    let reply = pull(&server, &token, "?limit=5000").await;
    assert_eq!(ids(&reply).len(), 1000);
    assert_eq!(reply.body["has_more"], true);
    let cursor = reply.body["cursor"].as_str().unwrap();
    let reply = pull(&server, &token, &format!("?since={cursor}&limit=1000")).await;
    assert_eq!(ids(&reply), ["r1000"]);
    assert_eq!(reply.body["has_more"], false);
}

async fn a_row_changed_twice_between_pulls_appears_once_in_its_latest_state(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    push(
        &server,
        &token,
        &[
            row("c", "a", 1, 0, "n", json!({"v": 1})),
            row("c", "b", 1, 0, "n", json!({"v": 1})),
        ],
    )
    .await;
    let first = pull(&server, &token, "").await;
    let cursor = first.body["cursor"].as_str().unwrap();
    push(
        &server,
        &token,
        &[row("c", "a", 2, 0, "n", json!({"v": 2}))],
    )
    .await;
    push(
        &server,
        &token,
        &[row("c", "b", 2, 0, "n", json!({"v": 2}))],
    )
    .await;
    push(&server, &token, &[tombstone("c", "a", 3, 0, "n")]).await;
    let reply = pull(&server, &token, &format!("?since={cursor}")).await;
    assert_eq!(
        reply.body["changes"],
        json!([
            row("c", "b", 2, 0, "n", json!({"v": 2})),
            tombstone("c", "a", 3, 0, "n"),
        ])
    );
}

async fn malformed_cursors_and_limits_are_400(backend: Backend) {
    let server = start(backend, &[]).await;
    let (token, user_id) = server.signup_bearer("ann@example.com").await;
    let keys = server.auth.config().keys.clone();
    let cursor = |seq, epoch| Cursor { seq, epoch }.encode(&user_id, &keys);
    push(&server, &token, &[row("c", "a", 1, 0, "n", json!({}))]).await;
    let reply = pull(&server, &token, "").await;
    let good = reply.body["cursor"].as_str().unwrap().to_owned();
    for query in [
        "?since=garbage!".to_owned(),
        "?since=AAAA".to_owned(),
        format!("?since={good}x"),
        format!("?since={}", &good[1..]),
        // Well-formed but never handed out: beyond the user's last change.
        format!("?since={}", cursor(2, 0)),
        format!("?since={}", cursor(i64::MAX, 0)),
        // Or under a purge epoch the user never reached.
        format!("?since={}", cursor(1, 1)),
        "?limit=0".to_owned(),
        "?limit=-1".to_owned(),
        "?limit=ten".to_owned(),
        "?limit=1.5".to_owned(),
        "?since=%ZZ".to_owned(),
    ] {
        let reply = pull(&server, &token, &query).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        if query.contains("since=") && !query.contains('%') {
            assert!(detail.starts_with("since:"), "{query}: {detail}");
        }
        if query.contains("limit") {
            assert!(detail.starts_with("limit:"), "{query}: {detail}");
        }
    }
    // Another user's cursor beyond this user's changes is refused too.
    let (other, _) = server.signup_bearer("bob@example.com").await;
    let reply = pull(&server, &other, &format!("?since={good}")).await;
    assert_problem(&reply, 400, "invalid_request");
}

auth_skeleton::both_backends!(
    pages_follow_the_cursor_in_push_order,
    a_new_user_pulls_an_empty_page,
    the_limit_defaults_to_500_and_is_lowered_to_1000,
    a_row_changed_twice_between_pulls_appears_once_in_its_latest_state,
    malformed_cursors_and_limits_are_400,
);
