//! The session cache: what ends or changes through this service is seen at once; what another
//! process changes in the database is seen within `SESSION_CACHE_REFRESH`; requests that write
//! always see the database.

use std::time::{Duration, Instant};

use auth_skeleton::testing::TestServer;
use auth_skeleton::{execute_db, execute_tx};
use serde_json::json;

use crate::support::*;

/// Long enough that a missing local invalidation would show as a stale `200`.
const SLOW_REFRESH: &[(&str, &str)] = &[("SESSION_CACHE_REFRESH", "10s")];

/// Two `GET /me`: the first fills the cache, the second is answered from it.
async fn warm(server: &TestServer, token: &str) {
    for _ in 0..2 {
        assert_eq!(me_status(server, token).await, 200);
    }
}

async fn me(server: &TestServer, token: &str) -> Reply {
    server
        .send(server.get("/v1/auth/me").bearer_auth(token))
        .await
}

/// Ends a session behind the service's back, as another process would.
async fn delete_session_elsewhere(server: &TestServer, token: &str) {
    let id = token.split('.').next().unwrap().to_owned();
    let deleted = execute_db!(
        &server.db,
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1").bind(&id)
    )
    .unwrap();
    assert_eq!(deleted, 1);
}

/// Ends a session behind the service's back without announcing it (on PostgreSQL), as if the
/// service's listener had lost its connection unnoticed: only the counter tells.
async fn delete_session_unannounced(server: &TestServer, token: &str) {
    let auth_skeleton::db::Db::Postgres(pool) = &server.db else {
        return delete_session_elsewhere(server, token).await;
    };
    // The database is this test's own: nothing else deletes meanwhile.
    let toggle =
        |on: &str| format!("ALTER TABLE auth_sessions {on} TRIGGER auth_sessions_deleted_announce");
    sqlx::query(sqlx::AssertSqlSafe(toggle("DISABLE")))
        .execute(pool)
        .await
        .unwrap();
    delete_session_elsewhere(server, token).await;
    sqlx::query(sqlx::AssertSqlSafe(toggle("ENABLE")))
        .execute(pool)
        .await
        .unwrap();
}

async fn change_counter(server: &TestServer) -> i64 {
    auth_skeleton::store::change_counter(&server.db)
        .await
        .unwrap()
}

async fn a_read_is_served_from_memory_until_the_counter_shows_the_change(backend: Backend) {
    let (server, _) = start_with(backend, &[("SESSION_CACHE_REFRESH", "2s")]).await;
    wait_for_listeners(&server, 1).await;
    let token = bearer(&server, "ann@example.com").await;
    warm(&server, &token).await;
    delete_session_unannounced(&server, &token).await;
    let deleted_at = Instant::now();
    // The copy in memory still answers reads (this is what makes the cache worth having)...
    assert_eq!(me_status(&server, &token).await, 200, "served from memory");
    // ...but a request that writes always sees the database.
    let write = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/auth/sessions/revoke-others")
                .bearer_auth(&token),
        )
        .await;
    assert_problem(&write, 401, "unauthenticated");
    // And reads stop within the refresh interval.
    let mut status = 200;
    while status == 200 && deleted_at.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = me_status(&server, &token).await;
    }
    assert_eq!(status, 401);
    let seen_after = deleted_at.elapsed();
    assert!(
        seen_after < Duration::from_secs(4),
        "seen after {seen_after:?}, refresh is 2s"
    );
}

async fn a_logout_or_revocation_here_is_seen_at_once(backend: Backend) {
    let (server, _) = start_with(backend, SLOW_REFRESH).await;
    let first = bearer(&server, "ann@example.com").await;
    let second = login(&server, "ann@example.com", TEST_PASSWORD).await;
    let second_id = second.body["session"]["id"].as_str().unwrap().to_owned();
    let second = second.body["token"].as_str().unwrap().to_owned();
    let third = login(&server, "ann@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fourth = login(&server, "ann@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&first, &second, &third, &fourth] {
        warm(&server, token).await;
    }

    let revoked = server
        .send(
            server
                .request(
                    reqwest::Method::DELETE,
                    &format!("/v1/auth/sessions/{second_id}"),
                )
                .bearer_auth(&first),
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(me_status(&server, &second).await, 401, "revoked by id");

    let logout = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/auth/logout")
                .bearer_auth(&third),
        )
        .await;
    assert_eq!(logout.status, 204);
    assert_eq!(me_status(&server, &third).await, 401, "logged out");

    warm(&server, &fourth).await;
    let others = server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/auth/sessions/revoke-others")
                .bearer_auth(&first),
        )
        .await;
    assert_eq!(others.status, 204);
    assert_eq!(me_status(&server, &fourth).await, 401, "revoked as another");
    assert_eq!(me_status(&server, &first).await, 200);
}

async fn a_password_change_or_account_deletion_is_seen_at_once(backend: Backend) {
    let (server, _) = start_with(backend, SLOW_REFRESH).await;
    let keep = bearer(&server, "ann@example.com").await;
    let other = login(&server, "ann@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    warm(&server, &keep).await;
    warm(&server, &other).await;
    let changed = server
        .send(
            server
                .post(
                    "/v1/auth/password/change",
                    &json!({"current_password": TEST_PASSWORD, "new_password": "a different passphrase"}),
                )
                .bearer_auth(&keep),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    assert_eq!(me_status(&server, &other).await, 401);

    warm(&server, &keep).await;
    let deleted = server
        .send(
            server
                .request(reqwest::Method::DELETE, "/v1/auth/account")
                .json(&json!({"password": "a different passphrase"}))
                .bearer_auth(&keep),
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(me_status(&server, &keep).await, 401);
}

async fn mailed_changes_are_seen_at_once(backend: Backend) {
    let (server, sink) = start_with_mail(backend, SLOW_REFRESH).await;
    let token = bearer(&server, "ann@example.com").await;
    warm(&server, &token).await;
    assert_eq!(
        me(&server, &token).await.body["user"]["email_verified"],
        false
    );

    let verify = sink
        .wait_for("ann@example.com", 0)
        .await
        .token(VERIFY_LINK)
        .unwrap();
    assert_eq!(
        redeem(&server, "/v1/auth/verify-email/confirm", &verify)
            .await
            .status,
        200
    );
    assert_eq!(
        me(&server, &token).await.body["user"]["email_verified"],
        true
    );

    let change = server
        .send(
            server
                .post(
                    "/v1/auth/email/change",
                    &json!({"new_email": "new@example.com", "password": TEST_PASSWORD}),
                )
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(change.status, 202);
    warm(&server, &token).await;
    let confirm = sink
        .wait_for("new@example.com", 0)
        .await
        .token(CONFIRM_LINK)
        .unwrap();
    assert_eq!(
        redeem(&server, "/v1/auth/email/confirm", &confirm)
            .await
            .status,
        200
    );
    assert_eq!(
        me(&server, &token).await.body["user"]["email"],
        "new@example.com"
    );

    warm(&server, &token).await;
    server
        .send(server.post(
            "/v1/auth/password/forgot",
            &json!({"email": "new@example.com"}),
        ))
        .await;
    let reset = sink
        .wait_for("new@example.com", 1)
        .await
        .token(RESET_LINK)
        .unwrap();
    let reset = server
        .send(server.post(
            "/v1/auth/password/reset",
            &json!({"token": reset, "new_password": "a different passphrase"}),
        ))
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(me_status(&server, &token).await, 401);
}

async fn the_counter_moves_with_every_ending_and_account_change_and_only_then(backend: Backend) {
    let (server, _) = start_with(backend, &[]).await;
    let start = change_counter(&server).await;
    let (token, user_id) = server.signup_bearer("ann@example.com").await;
    login(&server, "ann@example.com", TEST_PASSWORD).await;
    warm(&server, &token).await;
    // Touching `last_seen_at` an hour later is not a change anyone needs to hear of.
    server.clock.advance(Duration::from_secs(2 * 3_600));
    warm(&server, &token).await;
    assert_eq!(
        change_counter(&server).await,
        start,
        "sign-up, login, touch"
    );

    let mut tx = server.db.begin().await.unwrap();
    execute_tx!(
        &mut tx,
        sqlx::query("UPDATE auth_users SET email_verified = TRUE WHERE id = $1").bind(&user_id)
    )
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(change_counter(&server).await, start + 1, "verified");

    // A session changed in place by SQL (its lifetime, its secret) is as good as ended.
    let id = token.split('.').next().unwrap().to_owned();
    for sql in [
        "UPDATE auth_sessions SET expires_at = 0 WHERE id = $1",
        "UPDATE auth_sessions SET secret_hash = secret_hash WHERE id = $1",
        "UPDATE auth_sessions SET last_seen_at = last_seen_at - 1 WHERE id = $1",
    ] {
        let before = change_counter(&server).await;
        execute_db!(&server.db, sqlx::query(sql).bind(&id)).unwrap();
        assert_eq!(change_counter(&server).await, before + 1, "{sql}");
    }
    let moved = change_counter(&server).await;

    delete_session_elsewhere(&server, &token).await;
    assert_eq!(change_counter(&server).await, moved + 1, "a session ended");

    execute_db!(
        &server.db,
        sqlx::query("DELETE FROM auth_users WHERE id = $1").bind(&user_id)
    )
    .unwrap();
    assert!(
        change_counter(&server).await > moved + 1,
        "the account and its remaining session went"
    );
}

auth_skeleton::both_backends!(
    a_read_is_served_from_memory_until_the_counter_shows_the_change,
    a_logout_or_revocation_here_is_seen_at_once,
    a_password_change_or_account_deletion_is_seen_at_once,
    mailed_changes_are_seen_at_once,
    the_counter_moves_with_every_ending_and_account_change_and_only_then,
);
