//! Account deletion takes the user's rows with it, in the same transaction.

use auth_skeleton::read_db;
use auth_skeleton::testing::{Backend, TEST_PASSWORD, TestServer};
use serde_json::json;

use crate::support::*;

async fn count(server: &TestServer, table: &str, user_id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1");
    read_db!(server.db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(user_id)
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

async fn deleting_the_account_deletes_its_rows_and_only_those(backend: Backend) {
    let server = start(backend, &[]).await;
    let (ann, ann_id) = server.signup_bearer("ann@example.com").await;
    let (bob, bob_id) = server.signup_bearer("bob@example.com").await;
    for token in [&ann, &bob] {
        push(
            &server,
            token,
            &[
                row("c", "a", 1, 0, "n", json!({})),
                tombstone("c", "b", 1, 0, "n"),
            ],
        )
        .await;
    }
    assert_eq!(count(&server, "rows_items", &ann_id).await, 2);
    assert_eq!(count(&server, "rows_users", &ann_id).await, 1);

    let reply = server
        .send(
            server
                .request(reqwest::Method::DELETE, "/v1/auth/account")
                .bearer_auth(&ann)
                .json(&json!({"password": TEST_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    assert_eq!(count(&server, "rows_items", &ann_id).await, 0);
    assert_eq!(count(&server, "rows_users", &ann_id).await, 0);
    assert_eq!(count(&server, "rows_items", &bob_id).await, 2);
    assert_eq!(pull_all(&server, &bob).await.len(), 2);
    assert_problem(&pull(&server, &ann, "").await, 401, "unauthenticated");
}

auth_skeleton::both_backends!(deleting_the_account_deletes_its_rows_and_only_those);
