//! Many pushes of one user at once: no lost update, never a smaller version over a greater one,
//! and a pull running meanwhile misses nothing.

use std::collections::BTreeMap;

use auth_skeleton::testing::Backend;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::*;

const WRITERS: usize = 8;
const PUSHES: usize = 15;
const SHARED_KEYS: usize = 4;

type Version = (i64, i64, String);

fn version(row: &Value) -> Version {
    (
        row["ts"].as_i64().unwrap(),
        row["counter"].as_i64().unwrap(),
        row["node"].as_str().unwrap().to_owned(),
    )
}

/// Writer `w`'s `p`-th push: every shared row at a version that interleaves with the other
/// writers', plus a row of its own.
fn batch(w: usize, p: usize) -> Vec<Value> {
    let node = format!("w{w}");
    let mut changes: Vec<Value> = (0..SHARED_KEYS)
        .map(|k| {
            let ts = 1_000 + ((p * 7 + w * 13 + k * 5) % 40) as i64;
            let counter = ((w + k) % 3) as i64;
            if (p + k).is_multiple_of(4) {
                tombstone("c", &format!("shared{k}"), ts, counter, &node)
            } else {
                row(
                    "c",
                    &format!("shared{k}"),
                    ts,
                    counter,
                    &node,
                    json!({"w": w, "p": p}),
                )
            }
        })
        .collect();
    changes.push(row("c", &format!("own-{w}-{p}"), 1, 0, &node, json!({})));
    changes
}

async fn concurrent_pushes_of_one_user_lose_nothing(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let writers = (0..WRITERS).map(|w| {
        let (server, token) = (&server, &token);
        async move {
            for p in 0..PUSHES {
                let reply = push(server, token, &batch(w, p)).await;
                assert_eq!(reply.status, 200, "{:?}", reply.body);
                assert!(
                    statuses(&reply)
                        .iter()
                        .all(|s| *s == "applied" || *s == "stale"),
                    "{:?}",
                    reply.body
                );
            }
        }
    });
    // A reader pulls small pages while the writers run: what it sees of each row must only
    // ever move to greater versions, and it must end with exactly the server's state.
    let mut watched: BTreeMap<String, Value> = BTreeMap::new();
    let mut since = String::new();
    let reader = async {
        let mut rounds = 0;
        loop {
            let reply = pull(&server, &token, &format!("?since={since}&limit=7")).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            for row in reply.body["changes"].as_array().unwrap() {
                let id = row["id"].as_str().unwrap().to_owned();
                if let Some(seen) = watched.get(&id) {
                    assert!(
                        version(row) > version(seen),
                        "a smaller version replaced a greater one: {seen} then {row}"
                    );
                }
                watched.insert(id, row.clone());
            }
            since = reply.body["cursor"].as_str().unwrap().to_owned();
            rounds += 1;
            if rounds > 40 {
                return;
            }
        }
    };
    let (_, ()) = tokio::join!(join_all(writers), reader);

    let server_rows = pull_all(&server, &token).await;
    // The reader catches up from its cursor and then holds exactly the server's state.
    loop {
        let reply = pull(&server, &token, &format!("?since={since}")).await;
        for row in reply.body["changes"].as_array().unwrap() {
            watched.insert(row["id"].as_str().unwrap().to_owned(), row.clone());
        }
        since = reply.body["cursor"].as_str().unwrap().to_owned();
        if reply.body["has_more"] == false {
            break;
        }
    }
    let by_id: BTreeMap<String, Value> = server_rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(by_id.len(), server_rows.len(), "each row appears once");
    assert_eq!(watched, by_id);

    // Every shared row holds the greatest version any writer pushed; every own row is there.
    let mut greatest: BTreeMap<String, Value> = BTreeMap::new();
    for w in 0..WRITERS {
        for p in 0..PUSHES {
            for change in batch(w, p) {
                let id = change["id"].as_str().unwrap().to_owned();
                let bigger = greatest
                    .get(&id)
                    .is_none_or(|g| version(&change) > version(g));
                if bigger {
                    greatest.insert(id, change);
                }
            }
        }
    }
    assert_eq!(by_id, greatest);
}

auth_skeleton::both_backends!(concurrent_pushes_of_one_user_lose_nothing);
