//! BLOB_BYTES_QUOTA: a user's saves, history included, stay within it; the oldest history goes
//! first, and a save over the quota on its own is refused without touching what is kept.

use auth_skeleton::read_db;
use auth_skeleton::testing::{Backend, Reply, TestServer};

use crate::support::*;

fn versions(reply: &Reply) -> Vec<String> {
    reply.body["versions"]
        .as_array()
        .expect("a versions array")
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_owned())
        .collect()
}

/// The bytes the user's versions hold: the current save's and the history's, from their
/// `blob_data` rows.
async fn stored_bytes(server: &TestServer, user_id: &str) -> i64 {
    read_db!(server.db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) FROM blob_data
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await
    })
    .expect("a sum")
}

const QUOTA: usize = 1000;

async fn the_oldest_history_goes_first_to_stay_within_the_quota(backend: Backend) {
    let server = start_with(backend, &[("BLOB_BYTES_QUOTA", "1000")]).await;
    let ann = User::signup(&server, "ann@example.com").await;

    let bodies: Vec<Vec<u8>> = (0..6).map(|_| random_bytes(300)).collect();
    let mut etags = vec![ann.create(&bodies[0]).await];
    for body in &bodies[1..] {
        server.clock.advance(std::time::Duration::from_secs(1));
        let next = ann.replace(etags.last().unwrap(), body).await;
        etags.push(next);
        assert!(stored_bytes(&server, &ann.id).await <= QUOTA as i64);
    }
    // 300 bytes current + two versions of history fit in 1000; a third would not.
    let history = ann.get("/v1/save/history").await;
    assert_eq!(history.status, 200);
    assert_eq!(versions(&history), vec![etags[4].clone(), etags[3].clone()]);
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 2);
    assert_eq!(stored_bytes(&server, &ann.id).await, 900);
    assert_eq!(orphaned_data_rows(&server.db).await, 0);

    // A bigger save pushes out more of the oldest history, never the newest first.
    let big = random_bytes(650);
    let v6 = ann.replace(&etags[5], &big).await;
    assert_eq!(
        versions(&ann.get("/v1/save/history").await),
        vec![etags[5].clone()]
    );
    assert_eq!(stored_bytes(&server, &ann.id).await, 950);

    // A save of exactly the quota fits, alone.
    let exact = random_bytes(QUOTA);
    let v7 = ann.replace(&v6, &exact).await;
    assert_eq!(
        versions(&ann.get("/v1/save/history").await),
        Vec::<String>::new()
    );
    assert_eq!(stored_bytes(&server, &ann.id).await, QUOTA as i64);
    assert_eq!(orphaned_data_rows(&server.db).await, 0);

    // Other users have quotas of their own.
    let bob = User::signup(&server, "bob@example.com").await;
    bob.create(&random_bytes(QUOTA)).await;
    assert_eq!(ann.get("/v1/save").await.bytes, exact);
    assert_eq!(ann.get("/v1/save/meta").await.body["version"], v7.as_str());
}

async fn a_save_over_the_quota_alone_is_refused_and_nothing_is_lost(backend: Backend) {
    let server = start_with(backend, &[("BLOB_BYTES_QUOTA", "1000")]).await;
    let ann = User::signup(&server, "ann@example.com").await;

    // Over the quota with no save yet: nothing is created.
    let too_big = random_bytes(QUOTA + 1);
    let reply = ann.put(&too_big, &[("If-None-Match", "*")]).await;
    assert_problem(&reply, 413, "quota_exceeded");
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    assert_eq!(rows_of(&server, "blob_data", &ann.id).await, 0);

    let v0 = random_bytes(300);
    let v1 = random_bytes(300);
    let e0 = ann.create(&v0).await;
    server.clock.advance(std::time::Duration::from_secs(1));
    let e1 = ann.replace(&e0, &v1).await;
    let meta = ann.get("/v1/save/meta").await.body;
    let history = ann.get("/v1/save/history").await.body;
    assert_eq!(
        versions(&ann.get("/v1/save/history").await),
        vec![e0.clone()]
    );

    // Over the quota on its own (though within MAX_SAVE_BYTES): 413, and the save and its
    // history are as they were.
    server.clock.advance(std::time::Duration::from_secs(1));
    let reply = ann.put(&too_big, &[("If-Match", &e1)]).await;
    assert_problem(&reply, 413, "quota_exceeded");
    assert!(reply.header("etag").is_none());
    let current = ann.get("/v1/save").await;
    assert_eq!(current.status, 200);
    assert_eq!(current.bytes, v1);
    assert_eq!(etag(&current), e1);
    assert_eq!(ann.get("/v1/save/meta").await.body, meta);
    assert_eq!(ann.get("/v1/save/history").await.body, history);
    let old = ann
        .get(&format!("/v1/save/history/{}", e0.trim_matches('"')))
        .await;
    assert_eq!(old.status, 200);
    assert_eq!(old.bytes, v0);
    assert_eq!(stored_bytes(&server, &ann.id).await, 600);
    assert_eq!(orphaned_data_rows(&server.db).await, 0);

    // The refusal did not take the precondition's version away: the next write still applies.
    ann.replace(&e1, b"small").await;
    assert_eq!(
        versions(&ann.get("/v1/save/history").await),
        vec![e1.clone(), e0.clone()]
    );
}

auth_skeleton::both_backends!(
    the_oldest_history_goes_first_to_stay_within_the_quota,
    a_save_over_the_quota_alone_is_refused_and_nothing_is_lost,
);
