//! A crash (SIGKILL) of the real binary loses no acknowledged change.

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use serde_json::{Value, json};

use crate::support::*;

const EXE: &str = env!("CARGO_BIN_EXE_app-rows");

async fn every_acknowledged_change_survives_a_kill(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("COOKIE_SECURE", "false"),
    ];
    let mut service = ServiceProcess::start(EXE, &vars);
    let token = signup_at(&service.base_url).await;
    let client = reqwest::Client::new();
    let send = |changes: Vec<Value>| {
        client
            .post(format!("{}/v1/rows/push", service.base_url))
            .bearer_auth(&token)
            .json(&json!({ "changes": changes }))
            .send()
    };

    // The binary runs on the real clock: versions near it are neither too old nor too far ahead.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut acknowledged: Vec<Value> = Vec::new();
    for b in 0..20 {
        let changes: Vec<Value> = (0..25i64)
            .map(|i| {
                // Later batches overwrite or delete some earlier rows: the latest state counts.
                let id = format!("r{}", (b * 25 + i) % 300);
                if i % 7 == 0 {
                    tombstone("c", &id, base + b, i, "dev")
                } else {
                    row("c", &id, base + b, i, "dev", json!({"b": b, "i": i}))
                }
            })
            .collect();
        let response = send(changes.clone()).await.unwrap();
        assert_eq!(response.status(), 200);
        acknowledged.extend(changes);
    }
    // Pushes still in flight when the process dies may or may not have landed; kill while
    // some are.
    let in_flight: Vec<_> = (0..5)
        .map(|k| {
            send(vec![row(
                "c",
                &format!("late{k}"),
                base + 5_000,
                0,
                "dev",
                json!({}),
            )])
        })
        .collect();
    let in_flight = futures_util::future::join_all(in_flight);
    let killer = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        service.kill();
    };
    let (answers, ()) = tokio::join!(in_flight, killer);
    for (k, answer) in answers.into_iter().enumerate() {
        if answer.is_ok_and(|r| r.status() == 200) {
            acknowledged.push(row(
                "c",
                &format!("late{k}"),
                base + 5_000,
                0,
                "dev",
                json!({}),
            ));
        }
    }

    let service = ServiceProcess::start(EXE, &vars);
    let remote = Http::new(&service.base_url, &token);
    let mut device = crate::client::Device::new("checker");
    device.pull(&remote).await.unwrap();
    let rows = device.rows();
    for change in &acknowledged {
        let key = (
            change["collection"].as_str().unwrap().to_owned(),
            change["id"].as_str().unwrap().to_owned(),
        );
        let stored = serde_json::to_value(&rows[&key]).unwrap();
        let stored_version = (stored["ts"].as_i64(), stored["counter"].as_i64());
        let acked_version = (change["ts"].as_i64(), change["counter"].as_i64());
        assert!(
            stored_version >= acked_version,
            "an acknowledged change is lost: {change} vs {stored}"
        );
    }
    // The last acknowledged write of each row is exactly what is stored.
    let mut latest = std::collections::BTreeMap::new();
    for change in &acknowledged {
        latest.insert(change["id"].as_str().unwrap().to_owned(), change.clone());
    }
    for (id, change) in latest {
        let stored = serde_json::to_value(&rows[&("c".to_owned(), id)]).unwrap();
        assert_eq!(&stored, &change);
    }
}

auth_skeleton::both_backends!(every_acknowledged_change_survives_a_kill);
