//! Concurrent writers: of any number holding one ETag, exactly one wins.

use auth_skeleton::testing::Backend;
use futures_util::future::join_all;

use crate::support::*;

const WRITERS: usize = 32;

async fn exactly_one_of_many_concurrent_writers_wins(backend: Backend) {
    // More writers at once than the per-user write limit lets through.
    let server = start_with(backend, &[("RATE_LIMIT_SAVE_USER", "off")]).await;
    let ann = User::signup(&server, "ann@example.com").await;

    // Many devices create at once: one save comes out.
    let bodies: Vec<Vec<u8>> = (0..WRITERS)
        .map(|i| format!("create {i}").into_bytes())
        .collect();
    let replies = join_all(bodies.iter().map(|b| ann.put(b, &[("If-None-Match", "*")]))).await;
    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let base = etag(created[0]);
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_problem(reply, 412, "version_conflict");
        assert_eq!(reply.body["current"]["version"], base.as_str());
    }

    // Many devices replace the same version at once: one wins, the others see the winner.
    let bodies: Vec<Vec<u8>> = (0..WRITERS)
        .map(|i| format!("replace {i}").into_bytes())
        .collect();
    let guard = [("If-Match", base.as_str())];
    let replies = join_all(bodies.iter().map(|b| ann.put(b, &guard))).await;
    let winners: Vec<usize> = (0..WRITERS).filter(|&i| replies[i].status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let winner = &replies[winners[0]];
    let winning_etag = etag(winner);
    for (i, reply) in replies.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
        assert_problem(reply, 412, "version_conflict");
        assert_eq!(reply.body["current"], winner.body, "writer {i}");
    }
    let read = ann.get("/v1/save").await;
    assert_eq!(read.bytes, bodies[winners[0]]);
    assert_eq!(etag(&read), winning_etag);
    // Only the one replaced version went to the history: the losers left no trace.
    let history = ann.get("/v1/save/history").await;
    assert_eq!(history.body["versions"].as_array().unwrap().len(), 1);
    assert_eq!(history.body["versions"][0]["version"], base.as_str());
}

async fn concurrent_deletes_and_writes_of_one_version_let_one_through(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let base = ann.create(b"base").await;
    let guard = [("If-Match", base.as_str())];
    let (deletes, puts) = tokio::join!(
        join_all((0..8).map(|_| ann.delete(&guard))),
        join_all((0..8).map(|_| ann.put(b"new", &guard))),
    );
    let successes = deletes.iter().filter(|r| r.status == 204).count()
        + puts.iter().filter(|r| r.status == 200).count();
    assert_eq!(successes, 1);
    for reply in deletes.iter().chain(&puts).filter(|r| r.status >= 400) {
        assert!(
            matches!(reply.code(), "version_conflict" | "no_save"),
            "{:?}",
            reply.body
        );
    }
}

auth_skeleton::both_backends!(
    exactly_one_of_many_concurrent_writers_wins,
    concurrent_deletes_and_writes_of_one_version_let_one_through,
);
