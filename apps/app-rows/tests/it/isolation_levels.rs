//! Concurrent pushes on the real binary give the same results and rows whatever isolation level
//! the PostgreSQL database defaults to (and on SQLite, which has one).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::*;

const EXE: &str = env!("CARGO_BIN_EXE_app-rows");
const WRITERS: usize = 6;
const PUSHES: usize = 8;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Writer `w`'s `p`-th push: three shared rows at interleaving versions, one row of its own.
fn batch(base: i64, w: usize, p: usize) -> Vec<Value> {
    let node = format!("w{w}");
    let mut changes: Vec<Value> = (0..3)
        .map(|k| {
            let ts = base + ((p * 7 + w * 13 + k * 5) % 40) as i64;
            if (p + k).is_multiple_of(3) {
                tombstone("c", &format!("shared{k}"), ts, w as i64, &node)
            } else {
                row(
                    "c",
                    &format!("shared{k}"),
                    ts,
                    w as i64,
                    &node,
                    json!({"w": w, "p": p}),
                )
            }
        })
        .collect();
    changes.push(row("c", &format!("own-{w}-{p}"), base, 0, &node, json!({})));
    changes
}

fn version(change: &Value) -> (i64, i64, String) {
    (
        change["ts"].as_i64().unwrap(),
        change["counter"].as_i64().unwrap(),
        change["node"].as_str().unwrap().to_owned(),
    )
}

async fn concurrent_pushes_under(backend: Backend, level: Option<&str>) {
    let database = TestDatabase::new(backend).await;
    if let Some(level) = level {
        let db = auth_skeleton::db::Db::connect(&database.url).await.unwrap();
        let name = database.url.rsplit('/').next().unwrap().to_owned();
        auth_skeleton::execute_db!(
            db,
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {name} SET default_transaction_isolation = '{level}'"
            )))
        )
        .unwrap();
        db.close().await;
    }
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("COOKIE_SECURE", "false"),
    ];
    let service = ServiceProcess::start(EXE, &vars);
    let client = reqwest::Client::new();
    let signup: Value = client
        .post(format!("{}/v1/auth/signup", service.base_url))
        .json(&json!({"email": "ann@example.com", "password": TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().expect("a token").to_owned();
    let base = now_ms();
    let writers = (0..WRITERS).map(|w| {
        let (client, token, url) = (&client, &token, &service.base_url);
        async move {
            for p in 0..PUSHES {
                let reply = client
                    .post(format!("{url}/v1/rows/push"))
                    .bearer_auth(token)
                    .json(&json!({ "changes": batch(base, w, p) }))
                    .send()
                    .await
                    .unwrap();
                let status = reply.status().as_u16();
                let body: Value = reply.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 200, "{level:?}: {body}");
            }
        }
    });
    let readers = (0..2).map(|_| {
        let (client, token, url) = (&client, &token, &service.base_url);
        async move {
            for _ in 0..10 {
                let reply = client
                    .get(format!("{url}/v1/rows/pull?limit=3"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status().as_u16(), 200, "{level:?}");
            }
        }
    });
    tokio::join!(join_all(writers), join_all(readers));

    let remote = Http::new(&service.base_url, &token);
    let mut device = crate::client::Device::new("checker");
    device.pull(&remote).await.unwrap();
    let mut greatest: BTreeMap<String, Value> = BTreeMap::new();
    for w in 0..WRITERS {
        for p in 0..PUSHES {
            for change in batch(base, w, p) {
                let id = change["id"].as_str().unwrap().to_owned();
                if greatest
                    .get(&id)
                    .is_none_or(|g| version(&change) > version(g))
                {
                    greatest.insert(id, change);
                }
            }
        }
    }
    let held: BTreeMap<String, Value> = device
        .rows()
        .iter()
        .map(|((_, id), r)| (id.clone(), serde_json::to_value(r).unwrap()))
        .collect();
    assert_eq!(held, greatest, "{level:?}");
}

async fn concurrent_pushes_succeed_under_every_isolation_level(backend: Backend) {
    match backend {
        Backend::Sqlite => concurrent_pushes_under(backend, None).await,
        Backend::Postgres => {
            for level in ["read committed", "repeatable read", "serializable"] {
                concurrent_pushes_under(backend, Some(level)).await;
            }
        }
    }
}

auth_skeleton::both_backends!(concurrent_pushes_succeed_under_every_isolation_level);
