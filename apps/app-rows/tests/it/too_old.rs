//! No delete comes back: a tombstone is purged only once its version's `ts` is past the
//! retention, and a change whose `ts` is past it is `rejected` with `too_old`.

use std::time::Duration;

use auth_skeleton::testing::Backend;
use serde_json::json;

use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);
const MINUTE: Duration = Duration::from_secs(60);
const VARS: [(&str, &str); 1] = [("TOMBSTONE_RETENTION", "1d")];

async fn an_older_write_after_the_purge_is_too_old(backend: Backend) {
    let (server, token) = start_signed_in(backend, &VARS).await;
    let t0 = server.clock.now_ms();
    push(
        &server,
        &token,
        &[row("c", "r", t0, 0, "n", json!({"v": 1}))],
    )
    .await;
    let reply = push(&server, &token, &[tombstone("c", "r", t0 + 1, 0, "n")]).await;
    assert_eq!(statuses(&reply), ["applied"]);
    server.clock.advance(DAY * 2);
    let report = engine(&server, &VARS).purge_tombstones().await.unwrap();
    assert_eq!(report.tombstones, 1);

    // A device that was away pushes its older edit of the deleted row, and a fresh row.
    let now = server.clock.now_ms();
    let reply = push(
        &server,
        &token,
        &[
            row("c", "r", t0, 5, "old-device", json!({"v": 2})),
            row("c", "s", now, 0, "n", json!({})),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply), ["rejected", "applied"]);
    assert_eq!(reply.body["results"][0]["reason"], "too_old");
    let rows = pull_all(&server, &token).await;
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["s"], "the deleted row stays deleted");
}

async fn a_tombstone_is_purged_only_once_its_ts_is_past_the_retention(backend: Backend) {
    let (server, token) = start_signed_in(backend, &VARS).await;
    let t0 = server.clock.now_ms();
    let four_minutes = 4 * 60 * 1_000;
    push(&server, &token, &[row("c", "r", t0, 0, "n", json!({}))]).await;
    // The deleting device's clock runs a little ahead (within MAX_CLOCK_SKEW).
    let reply = push(
        &server,
        &token,
        &[tombstone("c", "r", t0 + four_minutes, 0, "n")],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied"]);

    // A day and two minutes after it was applied, its ts is not yet a day old.
    server.clock.advance(DAY + MINUTE * 2);
    let report = engine(&server, &VARS).purge_tombstones().await.unwrap();
    assert_eq!(
        report.tombstones, 0,
        "the tombstone's ts is within the retention"
    );
    // So a write between the original and the delete still loses to the delete.
    let reply = push(
        &server,
        &token,
        &[row("c", "r", t0 + 3 * 60 * 1_000, 0, "z", json!({}))],
    )
    .await;
    assert_eq!(statuses(&reply), ["stale"]);

    server.clock.advance(MINUTE * 3);
    let report = engine(&server, &VARS).purge_tombstones().await.unwrap();
    assert_eq!(report.tombstones, 1);
    assert!(pull_all(&server, &token).await.is_empty());
}

async fn too_old_is_counted_from_the_server_clock(backend: Backend) {
    let (server, token) = start_signed_in(backend, &VARS).await;
    let now = server.clock.now_ms();
    let day = 86_400_000;
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", now - day - 1, 0, "n", json!({})),
            row("c", "b", now - day, 0, "n", json!({})),
            tombstone("c", "c", now - day - 1, 0, "n"),
            tombstone("c", "d", now - day, 0, "n"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        statuses(&reply),
        ["rejected", "applied", "rejected", "applied"]
    );
    assert_eq!(reply.body["results"][0]["reason"], "too_old");
    assert_eq!(reply.body["results"][2]["reason"], "too_old");
    // The default retention is 30 days.
    let (server, token) = start_signed_in(backend, &[("TOMBSTONE_RETENTION", "30d")]).await;
    let now = server.clock.now_ms();
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", now - 30 * day - 1, 0, "n", json!({})),
            row("c", "b", now - 29 * day, 0, "n", json!({})),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["rejected", "applied"]);
}

auth_skeleton::both_backends!(
    an_older_write_after_the_purge_is_too_old,
    a_tombstone_is_purged_only_once_its_ts_is_past_the_retention,
    too_old_is_counted_from_the_server_clock,
);
