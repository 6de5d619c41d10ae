//! No device is stranded by a purge: a walk from the start after a purge completes without
//! `410`, and a cursor that reached the end covers every change, purged tombstones included.

use std::time::Duration;

use auth_skeleton::testing::{Backend, TestServer};
use serde_json::json;

use crate::client::Device;
use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);
const VARS: [(&str, &str); 1] = [("TOMBSTONE_RETENTION", "1d")];

/// Five rows, the newest two changes deletes of two of them; the deletes are then purged.
/// Three live rows stay, and every change after them was a purged tombstone.
async fn purged_newest_deletes(backend: Backend) -> (TestServer, String) {
    let (server, token) = start_signed_in(backend, &VARS).await;
    let now = server.clock.now_ms();
    let live: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|id| row("c", id, now, 0, "n", json!({"id": id})))
        .collect();
    assert_eq!(push(&server, &token, &live).await.status, 200);
    let deletes = [
        tombstone("c", "d", now, 1, "n"),
        tombstone("c", "e", now, 1, "n"),
    ];
    assert_eq!(
        statuses(&push(&server, &token, &deletes).await),
        ["applied", "applied"]
    );
    server.clock.advance(DAY * 2);
    let report = engine(&server, &VARS).purge_tombstones().await.unwrap();
    assert_eq!(report.tombstones, 2);
    (server, token)
}

fn ids(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

async fn an_idle_account_pulls_nothing_after_a_walk_that_follows_a_purge(backend: Backend) {
    let (server, token) = purged_newest_deletes(backend).await;
    let mut since = String::new();
    let mut rows = Vec::new();
    loop {
        let reply = pull(&server, &token, &format!("?since={since}")).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        rows.extend(reply.body["changes"].as_array().unwrap().iter().cloned());
        since = reply.body["cursor"].as_str().unwrap().to_owned();
        if reply.body["has_more"] == false {
            break;
        }
    }
    assert_eq!(ids(&rows), ["a", "b", "c"]);
    // The cursor of the last page covers every change so far: nothing, and no 410, follows.
    for _ in 0..2 {
        let reply = pull(&server, &token, &format!("?since={since}")).await;
        assert_eq!(reply.status, 200, "an idle account: {:?}", reply.body);
        assert_eq!(reply.body["changes"], json!([]));
        assert_eq!(reply.body["has_more"], false);
        server.clock.advance(DAY * 3);
        engine(&server, &VARS).purge_tombstones().await.unwrap();
    }
}

async fn a_new_device_walks_pages_of_one_after_a_purge(backend: Backend) {
    let (server, token) = purged_newest_deletes(backend).await;
    let mut since = String::new();
    let mut rows = Vec::new();
    for page in 0.. {
        assert!(page < 10, "the walk ends");
        let reply = pull(&server, &token, &format!("?since={since}&limit=1")).await;
        assert_eq!(reply.status, 200, "page {page}: {:?}", reply.body);
        rows.extend(reply.body["changes"].as_array().unwrap().iter().cloned());
        since = reply.body["cursor"].as_str().unwrap().to_owned();
        if reply.body["has_more"] == false {
            break;
        }
    }
    assert_eq!(ids(&rows), ["a", "b", "c"]);

    // The reference client, pages of one, from nothing.
    let remote = Http::new(&server.base_url, &token);
    let mut device = Device::new("tablet");
    device.page_size = 1;
    device.sync(&remote).await.unwrap();
    device.pull(&remote).await.unwrap();
    assert_eq!(device.resyncs, 0);
    assert_eq!(device.live().len(), 3);
}

async fn after_a_resync_the_next_pull_is_quiet(backend: Backend) {
    for page_size in [500, 1] {
        let (server, token) = start_signed_in(backend, &VARS).await;
        let remote = Http::new(&server.base_url, &token);
        let now = || server.clock.now_ms();
        let mut phone = Device::new("phone");
        let mut laptop = Device::new("laptop");
        laptop.page_size = page_size;
        for id in ["x", "y", "z"] {
            phone.put(now(), "notes", id, json!({"t": id}));
        }
        phone.sync(&remote).await.unwrap();
        laptop.sync(&remote).await.unwrap();
        // The newest change is a delete, purged while the laptop was away.
        phone.delete(now(), "notes", "z");
        phone.sync(&remote).await.unwrap();
        server.clock.advance(DAY * 2);
        engine(&server, &VARS).purge_tombstones().await.unwrap();

        laptop.pull(&remote).await.unwrap();
        assert_eq!(laptop.resyncs, 1, "pages of {page_size}");
        assert_eq!(laptop.live(), phone.live());
        for _ in 0..2 {
            laptop.sync(&remote).await.unwrap();
            assert_eq!(
                laptop.resyncs, 1,
                "one resync is enough (pages of {page_size})"
            );
        }
        phone.sync(&remote).await.unwrap();
        assert_eq!(phone.resyncs, 0);
    }
}

/// A cursor of the first format (tag 1 and the sequence number), as issued before the upgrade.
fn first_format(seq: i64) -> String {
    use base64::Engine as _;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&seq.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn cursors_issued_before_the_upgrade_keep_working_or_get_a_clean_410(backend: Backend) {
    let (server, token) = start_signed_in(backend, &VARS).await;
    let now = server.clock.now_ms();
    let live: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| row("c", id, now, 0, "n", json!({})))
        .collect();
    push(&server, &token, &live).await;
    // Before any purge every old cursor the user could hold works.
    let reply = pull(&server, &token, &format!("?since={}", first_format(1))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(ids(reply.body["changes"].as_array().unwrap()), ["b", "c"]);
    push(&server, &token, &[tombstone("c", "b", now, 1, "n")]).await;
    server.clock.advance(DAY * 2);
    engine(&server, &VARS).purge_tombstones().await.unwrap();
    // The purged tombstone (sequence 4) lies past a cursor at 3: 410; a cursor at 4 saw it.
    let reply = pull(&server, &token, &format!("?since={}", first_format(3))).await;
    assert_problem(&reply, 410, "resync_required");
    let reply = pull(&server, &token, &format!("?since={}", first_format(4))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["changes"], json!([]));
    // The answer carries a cursor of the current format, which goes on working.
    let cursor = reply.body["cursor"].as_str().unwrap();
    assert_ne!(cursor, first_format(4));
    let reply = pull(&server, &token, &format!("?since={cursor}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // Beyond the user's changes, an old cursor is still malformed.
    let reply = pull(&server, &token, &format!("?since={}", first_format(5))).await;
    assert_problem(&reply, 400, "invalid_request");
}

auth_skeleton::both_backends!(
    cursors_issued_before_the_upgrade_keep_working_or_get_a_clean_410,
    an_idle_account_pulls_nothing_after_a_walk_that_follows_a_purge,
    a_new_device_walks_pages_of_one_after_a_purge,
    after_a_resync_the_next_pull_is_quiet,
);
