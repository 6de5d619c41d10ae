//! Password change and account deletion.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn password_change_needs_the_current_password_and_revokes_other_sessions(backend: Backend) {
    let server = start(backend).await;
    let current = bearer(&server, "ann@example.com").await;
    let other = login(&server, "ann@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |body: serde_json::Value| {
        server.send(
            server
                .post("/v1/auth/password/change", &body)
                .bearer_auth(&current),
        )
    };

    let wrong =
        change(json!({"current_password": "not-it-at-all", "new_password": "plum-sparrow-77"}))
            .await;
    assert_problem(&wrong, 401, "invalid_credentials");
    let weak =
        change(json!({"current_password": TEST_PASSWORD, "new_password": "password1"})).await;
    assert_problem(&weak, 400, "weak_password");
    assert_eq!(
        me_status(&server, &other).await,
        200,
        "failed changes revoke nothing"
    );

    let ok =
        change(json!({"current_password": TEST_PASSWORD, "new_password": "plum-sparrow-77"})).await;
    assert_eq!(ok.status, 204);
    assert_eq!(
        me_status(&server, &current).await,
        200,
        "the calling session stays"
    );
    assert_eq!(
        me_status(&server, &other).await,
        401,
        "every other session is revoked"
    );
    assert_eq!(
        login(&server, "ann@example.com", TEST_PASSWORD)
            .await
            .status,
        401
    );
    assert_eq!(
        login(&server, "ann@example.com", "plum-sparrow-77")
            .await
            .status,
        200
    );
}

async fn password_change_needs_a_session(backend: Backend) {
    let server = start(backend).await;
    let reply = server
        .send(server.post(
            "/v1/auth/password/change",
            &json!({"current_password": "a", "new_password": "b"}),
        ))
        .await;
    assert_problem(&reply, 401, "unauthenticated");
}

async fn account_deletion_removes_the_user_its_sessions_and_app_data(backend: Backend) {
    let (server, probe) = start_with(backend, &[]).await;
    let (token, user_id) = server.signup_bearer("bob@example.com").await;
    let other = login(&server, "bob@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let keep = bearer(&server, "cat@example.com").await;
    let delete = |password: &str| {
        server.send(
            server
                .request(Method::DELETE, "/v1/auth/account")
                .bearer_auth(&token)
                .json(&json!({ "password": password })),
        )
    };

    assert_problem(
        &delete("not-the-password").await,
        401,
        "invalid_credentials",
    );
    assert_eq!(probe.calls.load(Ordering::SeqCst), 0);

    assert_eq!(delete(TEST_PASSWORD).await.status, 204);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1, "the app's hook ran");
    assert_eq!(
        probe.reported.load(Ordering::SeqCst),
        1,
        "the app heard of the committed deletion (for its files)"
    );
    assert_eq!(me_status(&server, &token).await, 401);
    assert_eq!(me_status(&server, &other).await, 401);
    assert_eq!(
        login(&server, "bob@example.com", TEST_PASSWORD)
            .await
            .status,
        401
    );
    assert!(
        auth_skeleton::store::user_by_id(&server.db, &user_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(me_status(&server, &keep).await, 200);
    // The address is free again.
    assert_eq!(
        signup(&server, "bob@example.com", "bearer").await.status,
        201
    );
}

async fn account_deletion_is_all_or_nothing(backend: Backend) {
    let (server, probe) = start_with(backend, &[]).await;
    let (token, user_id) = server.signup_bearer("dan@example.com").await;
    probe.fail.store(true, Ordering::SeqCst);
    let reply = server
        .send(
            server
                .request(Method::DELETE, "/v1/auth/account")
                .bearer_auth(&token)
                .json(&json!({ "password": TEST_PASSWORD })),
        )
        .await;
    assert_problem(&reply, 500, "internal");
    assert_eq!(
        probe.reported.load(Ordering::SeqCst),
        0,
        "a deletion that did not commit is not reported"
    );
    assert!(
        !reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("could not be deleted"),
        "no internals in the body"
    );
    assert!(
        auth_skeleton::store::user_by_id(&server.db, &user_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        me_status(&server, &token).await,
        200,
        "a failed deletion deletes nothing"
    );
}

auth_skeleton::both_backends!(
    password_change_needs_the_current_password_and_revokes_other_sessions,
    password_change_needs_a_session,
    account_deletion_removes_the_user_its_sessions_and_app_data,
    account_deletion_is_all_or_nothing,
);

/// PostgreSQL ends one transaction of a deadlock (`40P01`); an account deletion it ended runs
/// again and succeeds, up to three attempts in all; past them it is a `500` that deleted nothing.
async fn a_deletion_ended_by_a_deadlock_runs_again(backend: Backend) {
    let (server, probe) = start_with(backend, &[]).await;
    let delete = |token: String| {
        server.send(
            server
                .request(Method::DELETE, "/v1/auth/account")
                .bearer_auth(token)
                .json(&json!({ "password": TEST_PASSWORD })),
        )
    };
    let (token, user_id) = server.signup_bearer("eve@example.com").await;
    probe.deadlocks.store(3, Ordering::SeqCst);
    assert_problem(&delete(token.clone()).await, 500, "internal");
    assert_eq!(probe.calls.load(Ordering::SeqCst), 3);
    assert!(
        auth_skeleton::store::user_by_id(&server.db, &user_id)
            .await
            .unwrap()
            .is_some()
    );

    probe.deadlocks.store(2, Ordering::SeqCst);
    let reply = delete(token.clone()).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 6);
    assert!(
        auth_skeleton::store::user_by_id(&server.db, &user_id)
            .await
            .unwrap()
            .is_none()
    );
}

/// Deadlocks are PostgreSQL's: SQLite has one writer.
mod postgres_only {
    #[actix_web::test]
    async fn a_deletion_ended_by_a_deadlock_runs_again() {
        super::a_deletion_ended_by_a_deadlock_runs_again(super::Backend::Postgres).await
    }
}
