//! Tombstone retention: the purge, the horizon, `410 resync_required`, and the client's resync.

use std::time::Duration;

use app_rows::Engine;
use app_rows::sync::PurgeReport;
use auth_skeleton::config::Vars;
use auth_skeleton::service::EngineContext;
use auth_skeleton::testing::{Backend, TestServer};
use serde_json::json;

use crate::client::Device;
use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);

/// An engine over the test server's database and manual clock, to run the purge on demand.
fn engine(server: &TestServer, vars: &[(&str, &str)]) -> Engine {
    Engine::new(EngineContext {
        db: server.db.clone(),
        clock: server.clock.clone(),
        vars: Vars::from_pairs(vars.iter().copied()),
        keys: server.auth.config().keys.clone(),
    })
    .expect("valid configuration")
}

async fn purged_tombstones_send_older_cursors_to_a_resync(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d")];
    let (server, token) = start_signed_in(backend, &vars).await;
    let engine = engine(&server, &vars);
    let t0 = server.clock.now_ms();
    let hour = 3_600_000;
    push(
        &server,
        &token,
        &[
            row("c", "a", t0 - 21 * hour, 0, "n", json!({})),
            row("c", "b", t0, 0, "n", json!({})),
        ],
    )
    .await;
    let before_delete = pull(&server, &token, "").await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // The deleting device's clock is 20 hours behind the server's.
    push(
        &server,
        &token,
        &[tombstone("c", "a", t0 - 20 * hour, 0, "n")],
    )
    .await;
    let after_delete = pull(&server, &token, &format!("?since={before_delete}")).await;
    assert_eq!(after_delete.body["changes"][0]["deleted"], true);
    let after_delete = after_delete.body["cursor"].as_str().unwrap().to_owned();

    // A tombstone is purged once both its ts and the server's applying it are past the
    // retention: here its ts is, but it was applied only half a day ago.
    server.clock.advance(DAY / 2);
    assert_eq!(
        engine.purge_tombstones().await.unwrap(),
        PurgeReport::default()
    );
    let reply = pull(&server, &token, &format!("?since={before_delete}")).await;
    assert_eq!(reply.status, 200, "not purged yet: {:?}", reply.body);

    server.clock.advance(DAY);
    assert_eq!(
        engine.purge_tombstones().await.unwrap(),
        PurgeReport {
            tombstones: 1,
            users: 1
        }
    );
    let reply = pull(&server, &token, &format!("?since={before_delete}")).await;
    assert_problem(&reply, 410, "resync_required");
    let metrics = server.send(server.get("/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics.bytes);
    assert!(
        metrics.contains("app_rows_purged_tombstones_total"),
        "{metrics}"
    );
    // A cursor that saw the tombstone is still good.
    let reply = pull(&server, &token, &format!("?since={after_delete}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // From the start all is normal: live rows are never purged.
    let rows = pull_all(&server, &token).await;
    assert_eq!(rows, [row("c", "b", t0, 0, "n", json!({}))]);
    server.clock.advance(DAY * 20);
    engine.purge_tombstones().await.unwrap();
    assert_eq!(pull_all(&server, &token).await.len(), 1);
}

async fn a_purged_tombstone_frees_its_place_in_the_quota(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d"), ("ROWS_QUOTA", "2")];
    let (server, token) = start_signed_in(backend, &vars).await;
    let now = server.clock.now_ms();
    push(
        &server,
        &token,
        &[
            row("c", "a", now, 0, "n", json!({})),
            tombstone("c", "b", now, 0, "n"),
        ],
    )
    .await;
    let late = [row("c", "c", now, 0, "n", json!({}))];
    assert_eq!(statuses(&push(&server, &token, &late).await), ["rejected"]);
    server.clock.advance(DAY * 2);
    engine(&server, &vars).purge_tombstones().await.unwrap();
    let late = [row("c", "c", server.clock.now_ms(), 0, "n", json!({}))];
    assert_eq!(statuses(&push(&server, &token, &late).await), ["applied"]);
}

async fn the_purge_handles_every_user_and_only_old_tombstones(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d")];
    let server = start(backend, &vars).await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        let (token, _) = server.signup_bearer(&format!("u{i}@example.com")).await;
        let old: Vec<_> = (0..5)
            .map(|j| tombstone("c", &format!("old{j}"), server.clock.now_ms(), 0, "n"))
            .collect();
        push(&server, &token, &old).await;
        tokens.push(token);
    }
    server.clock.advance(DAY * 2);
    let now = server.clock.now_ms();
    for token in &tokens {
        push(&server, token, &[tombstone("c", "new", now, 0, "n")]).await;
    }
    let report = engine(&server, &vars).purge_tombstones().await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            tombstones: 15,
            users: 3
        }
    );
    for token in &tokens {
        let rows = pull_all(&server, token).await;
        assert_eq!(rows, [tombstone("c", "new", now, 0, "n")]);
    }
}

async fn on_410_the_client_resyncs_and_keeps_its_unpushed_writes(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d")];
    let (server, token) = start_signed_in(backend, &vars).await;
    let remote = Http::new(&server.base_url, &token);
    let now = || server.clock.now_ms();
    let mut phone = Device::new("phone");
    let mut laptop = Device::new("laptop");
    phone.put(now(), "notes", "x", json!({"t": "x"}));
    phone.put(now(), "notes", "y", json!({"t": "y"}));
    phone.sync(&remote).await.unwrap();
    laptop.sync(&remote).await.unwrap();
    assert_eq!(laptop.live(), phone.live());

    phone.delete(now(), "notes", "x");
    phone.sync(&remote).await.unwrap();
    server.clock.advance(DAY * 2);
    engine(&server, &vars).purge_tombstones().await.unwrap();

    // The laptop was away: it edits offline, then comes back after the purge.
    laptop.put(now(), "notes", "y", json!({"t": "y, edited offline"}));
    laptop.put(now(), "notes", "z", json!({"t": "z"}));
    laptop.pull(&remote).await.unwrap();
    assert_eq!(laptop.resyncs, 1, "the laptop's cursor predates the purge");
    assert_eq!(laptop.unpushed(), 2, "unpushed writes survive the resync");
    let live = laptop.live();
    assert!(
        !live.contains_key(&("notes".into(), "x".into())),
        "x was deleted"
    );
    assert_eq!(
        live[&("notes".into(), "y".into())],
        json!({"t": "y, edited offline"})
    );

    laptop.sync(&remote).await.unwrap();
    phone.sync(&remote).await.unwrap();
    assert_eq!(
        phone.resyncs, 0,
        "the phone saw the delete before the purge"
    );
    assert_eq!(phone.live(), laptop.live());
    assert_eq!(phone.live().len(), 2);
}

auth_skeleton::both_backends!(
    purged_tombstones_send_older_cursors_to_a_resync,
    a_purged_tombstone_frees_its_place_in_the_quota,
    the_purge_handles_every_user_and_only_old_tombstones,
    on_410_the_client_resyncs_and_keeps_its_unpushed_writes,
);
