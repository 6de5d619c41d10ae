//! Account deletion takes the user's save data along.

use auth_skeleton::accounts::hooks::AccountDataHook as _;
use auth_skeleton::config::Vars;
use auth_skeleton::service::EngineContext;
use auth_skeleton::testing::{Backend, TEST_PASSWORD};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// Every table of the engine, with the rows a user has after creating a save with an
/// `Idempotency-Key` and replacing it once: one version current, one in the history, and the
/// bytes of both.
const TABLES: [(&str, i64); 5] = [
    ("blob_counters", 1),
    ("blob_data", 2),
    ("blob_history", 1),
    ("blob_idempotency", 1),
    ("blob_saves", 1),
];

/// A table added later must join [`TABLES`], or these tests would not see what it keeps.
async fn assert_tables_cover_the_schema(server: &auth_skeleton::testing::TestServer) {
    let listed: Vec<&str> = TABLES.iter().map(|(table, _)| *table).collect();
    assert_eq!(blob_tables(&server.db).await, listed);
}

async fn account_deletion_removes_save_history_and_keys(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let bob = User::signup(&server, "bob@example.com").await;
    for user in [&ann, &bob] {
        let v1 = etag(
            &user
                .put(b"one", &[("If-None-Match", "*"), ("Idempotency-Key", "k")])
                .await,
        );
        user.replace(&v1, b"two").await;
        for (table, rows) in TABLES {
            assert_eq!(rows_of(&server, table, &user.id).await, rows, "{table}");
        }
    }
    assert_tables_cover_the_schema(&server).await;

    let reply = ann
        .send(
            ann.request(Method::DELETE, "/v1/auth/account")
                .json(&json!({"password": TEST_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    for (table, rows) in TABLES {
        assert_eq!(rows_of(&server, table, &ann.id).await, 0, "{table}");
        assert_eq!(
            rows_of(&server, table, &bob.id).await,
            rows,
            "{table} of another user"
        );
    }
    assert_problem(&ann.get("/v1/save").await, 401, "unauthenticated");
    assert_eq!(bob.get("/v1/save").await.bytes, b"two");
}

/// The hook on its own (the foreign keys would also cascade from the account row; the hook must
/// not rely on that, since it runs first and alone decides what the engine keeps).
async fn the_deletion_hook_removes_everything_of_one_user(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let bob = User::signup(&server, "bob@example.com").await;
    for user in [&ann, &bob] {
        let v1 = etag(
            &user
                .put(b"one", &[("If-None-Match", "*"), ("Idempotency-Key", "k")])
                .await,
        );
        user.replace(&v1, b"two").await;
    }
    assert_tables_cover_the_schema(&server).await;
    let engine = app_blob::Engine::new(EngineContext {
        db: server.db.clone(),
        clock: server.clock.clone(),
        vars: Vars::from_pairs([]),
        keys: server.auth.config().keys.clone(),
    })
    .unwrap();
    let mut tx = server.db.begin().await.unwrap();
    engine
        .delete_user_data(&mut tx, &ann.id.as_str().into())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for (table, rows) in TABLES {
        assert_eq!(rows_of(&server, table, &ann.id).await, 0, "{table}");
        assert_eq!(
            rows_of(&server, table, &bob.id).await,
            rows,
            "{table} of another user"
        );
    }
}

auth_skeleton::both_backends!(
    account_deletion_removes_save_history_and_keys,
    the_deletion_hook_removes_everything_of_one_user,
);
