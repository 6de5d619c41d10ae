//! `stale` and `rejected` results carry `current`, the server's row as it now stands, and the
//! reference client adopts it; a `410` in the middle of a resync starts the resync again.

use std::cell::Cell;
use std::time::Duration;

use app_rows::Engine;
use auth_skeleton::testing::{Backend, TestServer};
use serde_json::{Value, json};

use crate::client::{Device, Remote, Response};
use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);

async fn stale_and_rejected_results_carry_the_current_row(backend: Backend) {
    let vars = [("ROWS_QUOTA", "2")];
    let (server, token) = start_signed_in(backend, &vars).await;
    let now = server.clock.now_ms();
    let stored = row("c", "r", now, 1, "b", json!({"z": 1, "a": 2}));
    let gone = tombstone("c", "t", now, 0, "b");
    push(&server, &token, &[stored.clone(), gone.clone()]).await;

    let reply = push(
        &server,
        &token,
        &[
            // Older than the stored row: stale.
            row("c", "r", now, 0, "a", json!({"v": "mine"})),
            // Older than the tombstone: stale.
            row("c", "t", now - 1, 0, "a", json!({})),
            // A new row over the quota: rejected, and the server holds none.
            row("c", "new", now, 0, "a", json!({})),
            // Too far ahead: rejected, the stored row returned.
            row("c", "r", now + 3_600_000, 0, "a", json!({})),
            // Applied: no `current`.
            row("c", "r", now, 2, "a", json!({"v": "newest"})),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let newest = row("c", "r", now, 2, "a", json!({"v": "newest"}));
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "stale");
    assert_eq!(results[1]["status"], "stale");
    assert_eq!(results[1]["current"], gone);
    assert_eq!(results[2]["status"], "rejected");
    assert_eq!(results[2]["reason"], "quota_exceeded");
    assert_eq!(results[2]["current"], Value::Null);
    assert!(results[2].as_object().unwrap().contains_key("current"));
    assert_eq!(results[3]["status"], "rejected");
    assert_eq!(results[3]["reason"], "clock_skew");
    assert_eq!(results[4]["status"], "applied");
    assert!(!results[4].as_object().unwrap().contains_key("current"));
    // `current` is the row as it stands when the push is answered.
    assert_eq!(results[0]["current"], newest);
    assert_eq!(results[3]["current"], newest);
}

async fn the_client_adopts_current_when_its_write_is_refused(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let remote = Http::new(&server.base_url, &token);
    let now = server.clock.now_ms();
    let mut phone = Device::new("phone");
    phone.put(now, "notes", "x", json!({"t": "phone"}));
    phone.sync(&remote).await.unwrap();

    // The laptop's clock is an hour ahead: its write of x is refused, and so is a new row.
    let mut laptop = Device::new("laptop");
    laptop.put(now + 3_600_000, "notes", "x", json!({"t": "laptop"}));
    laptop.put(now + 3_600_000, "notes", "y", json!({"t": "laptop"}));
    laptop.sync(&remote).await.unwrap();
    assert_eq!(laptop.rejected.len(), 2);
    assert!(
        laptop
            .rejected
            .iter()
            .all(|(_, reason)| reason == "clock_skew")
    );
    assert_eq!(laptop.unpushed(), 0);
    assert_eq!(
        laptop.live(),
        phone.live(),
        "the laptop shows the server's rows"
    );
    assert_eq!(laptop.rows(), phone.rows());
}

/// Runs a purge, two days later by the server's clock, after the `after`-th pull.
struct PurgeDuringWalk<'a> {
    http: Http,
    server: &'a TestServer,
    engine: Engine,
    pulls: Cell<u32>,
    after: u32,
}

impl Remote for PurgeDuringWalk<'_> {
    async fn push(&self, body: Value) -> Option<Response> {
        self.http.push(body).await
    }

    async fn pull(&self, since: Option<&str>, limit: u32) -> Option<Response> {
        let reply = self.http.pull(since, limit).await;
        self.pulls.set(self.pulls.get() + 1);
        if self.pulls.get() == self.after {
            self.server.clock.advance(DAY * 2);
            let report = self.engine.purge_tombstones().await.unwrap();
            assert_eq!(report.tombstones, 1);
        }
        reply
    }
}

async fn a_410_in_the_middle_of_a_resync_starts_it_again(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d")];
    let (server, token) = start_signed_in(backend, &vars).await;
    let http = Http::new(&server.base_url, &token);
    let now = server.clock.now_ms();
    let mut phone = Device::new("phone");
    let mut laptop = Device::new("laptop");
    for id in ["a", "b", "c", "d"] {
        phone.put(now, "notes", id, json!({"t": id}));
    }
    phone.sync(&http).await.unwrap();
    laptop.sync(&http).await.unwrap();
    phone.delete(server.clock.now_ms(), "notes", "a");
    phone.sync(&http).await.unwrap();
    server.clock.advance(DAY + DAY / 2);
    phone.delete(server.clock.now_ms(), "notes", "b");
    phone.sync(&http).await.unwrap();
    // The first delete is past the retention, the second not yet.
    assert_eq!(
        engine(&server, &vars)
            .purge_tombstones()
            .await
            .unwrap()
            .tombstones,
        1
    );

    // The laptop gets 410, and while it walks from the start the second delete is purged.
    let remote = PurgeDuringWalk {
        http,
        server: &server,
        engine: engine(&server, &vars),
        pulls: Cell::new(0),
        after: 2,
    };
    laptop.page_size = 1;
    laptop.pull(&remote).await.unwrap();
    assert!(laptop.resyncs >= 1);
    let live = laptop.live();
    let ids: Vec<&str> = live.keys().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["c", "d"]);
    let resyncs = laptop.resyncs;
    laptop.sync(&remote.http).await.unwrap();
    assert_eq!(laptop.resyncs, resyncs);
}

auth_skeleton::both_backends!(
    stale_and_rejected_results_carry_the_current_row,
    the_client_adopts_current_when_its_write_is_refused,
    a_410_in_the_middle_of_a_resync_starts_it_again,
);
