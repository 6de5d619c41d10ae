//! Unauthenticated confirm routes must refuse a token of the wrong shape before they take any
//! database lock: a flood of `{"token":"x"}` must not queue for the write lock ahead of real
//! writes (it raised push latency from 3 to 100 ms).

use std::time::Duration;

use auth_skeleton::db::{Db, Tx};
use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use crate::http::{call, signup};

/// Takes the lock every redemption needs: SQLite's write lock, or on PostgreSQL an exclusive
/// lock on the tokens table. Held until the returned transaction is dropped.
async fn hold_the_token_lock(db: &Db) -> Tx {
    let mut tx = db.begin().await.expect("a transaction");
    if let Tx::Postgres(t) = &mut tx {
        sqlx::query("LOCK TABLE auth_mailed_tokens IN ACCESS EXCLUSIVE MODE")
            .execute(&mut **t)
            .await
            .expect("the lock");
    }
    tx
}

async fn malformed_tokens_are_refused_without_waiting_for_a_lock(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    let base = service.base_url.as_str();
    signup(base, "ann@example.com").await;

    let db = Db::connect(&database.url).await.expect("the database");
    let lock = hold_the_token_lock(&db).await;
    for (path, body) in [
        ("/v1/auth/verify-email/confirm", json!({"token": "x"})),
        ("/v1/auth/email/confirm", json!({"token": "x"})),
        (
            "/v1/auth/password/reset",
            json!({"token": "x", "new_password": "a-fine-new-password"}),
        ),
        (
            "/v1/auth/verify-email/confirm",
            json!({"token": "é".repeat(43)}),
        ),
    ] {
        // Far below the service's lock wait (10 s): an answer in time did not wait for the lock.
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            call(base, Method::POST, path, None, Some(body.clone())),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} {body} waited for the database lock"));
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_token"),
            "{path}: {:?}",
            reply.body
        );
    }
    drop(lock);
    db.close().await;
}

auth_skeleton::both_backends!(malformed_tokens_are_refused_without_waiting_for_a_lock);
