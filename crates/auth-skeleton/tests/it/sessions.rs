//! Sessions: me, logout, listing, revocation and expiry.

use std::time::Duration;

use reqwest::Method;

use crate::support::*;

const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

async fn missing_malformed_and_unknown_credentials_are_unauthenticated(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "ann@example.com").await;
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "A".repeat(43));
    for request in [
        server.get("/v1/auth/me"),
        server.get("/v1/auth/me").bearer_auth("nonsense"),
        server.get("/v1/auth/me").bearer_auth(&forged),
        server
            .get("/v1/auth/me")
            .header("authorization", format!("Basic {token}")),
        server
            .get("/v1/auth/me")
            .header("cookie", format!("{COOKIE}=garbage")),
    ] {
        let reply = server.send(request).await;
        assert_problem(&reply, 401, "unauthenticated");
    }
    assert_eq!(me_status(&server, &token).await, 200);
}

async fn logout_revokes_the_session_for_good(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "bob@example.com").await;
    let other = login(&server, "bob@example.com", TEST_PASSWORD).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = server
        .send(
            server
                .request(Method::POST, "/v1/auth/logout")
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(me_status(&server, &token).await, 401);
    let again = server
        .send(
            server
                .request(Method::POST, "/v1/auth/logout")
                .bearer_auth(&token),
        )
        .await;
    assert_problem(&again, 401, "unauthenticated");
    assert_eq!(
        me_status(&server, &other).await,
        200,
        "other sessions are untouched"
    );
}

async fn cookie_logout_clears_the_cookie(backend: Backend) {
    let server = start(backend).await;
    let value = session_cookie(&signup(&server, "cat@example.com", "cookie").await);
    let reply = server
        .send(
            server
                .request(Method::POST, "/v1/auth/logout")
                .header("cookie", format!("{COOKIE}={value}"))
                .header("origin", ORIGIN),
        )
        .await;
    assert_eq!(reply.status, 204);
    let cleared = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-session="))
        .unwrap()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let me = server
        .send(
            server
                .get("/v1/auth/me")
                .header("cookie", format!("{COOKIE}={value}")),
        )
        .await;
    assert_eq!(me.status, 401);
}

async fn sessions_lists_only_the_callers_live_sessions(backend: Backend) {
    let server = start(backend).await;
    let dan = bearer(&server, "dan@example.com").await;
    let dan2 = login(&server, "dan@example.com", TEST_PASSWORD).await;
    let _eve = bearer(&server, "eve@example.com").await;
    let reply = server
        .send(server.get("/v1/auth/sessions").bearer_auth(&dan))
        .await;
    assert_eq!(reply.status, 200);
    let sessions = reply.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(
        current[0]["id"].as_str(),
        dan.split_once('.').map(|(id, _)| id)
    );
    assert!(
        sessions
            .iter()
            .any(|s| s["id"] == dan2.body["session"]["id"])
    );
    for s in sessions {
        for field in ["id", "created_at", "last_seen_at", "expires_at"] {
            assert!(s[field].is_string(), "{field} in {s}");
        }
        assert!(s.get("device_name").is_some());
    }
}

async fn a_session_can_be_revoked_only_by_its_owner(backend: Backend) {
    let server = start(backend).await;
    let fay = bearer(&server, "fay@example.com").await;
    let fay2 = login(&server, "fay@example.com", TEST_PASSWORD).await;
    let fay2_token = fay2.body["token"].as_str().unwrap();
    let fay2_id = fay2.body["session"]["id"].as_str().unwrap();
    let gus = bearer(&server, "gus@example.com").await;

    let path = format!("/v1/auth/sessions/{fay2_id}");
    let foreign = server
        .send(server.request(Method::DELETE, &path).bearer_auth(&gus))
        .await;
    assert_problem(&foreign, 404, "not_found");
    assert_eq!(
        me_status(&server, fay2_token).await,
        200,
        "another user cannot revoke it"
    );

    let unknown = server
        .send(
            server
                .request(Method::DELETE, "/v1/auth/sessions/nope")
                .bearer_auth(&fay),
        )
        .await;
    assert_problem(&unknown, 404, "not_found");
    // A NUL cannot be stored in PostgreSQL text: such an id is no session's, not a fault.
    for odd in ["%00", "a%00b", "%C3%A9", &"f".repeat(4_000)] {
        let reply = server
            .send(
                server
                    .request(Method::DELETE, &format!("/v1/auth/sessions/{odd}"))
                    .bearer_auth(&fay),
            )
            .await;
        assert_problem(&reply, 404, "not_found");
    }

    let own = server
        .send(server.request(Method::DELETE, &path).bearer_auth(&fay))
        .await;
    assert_eq!(own.status, 204);
    assert_eq!(me_status(&server, fay2_token).await, 401);
    assert_eq!(me_status(&server, &fay).await, 200);
}

async fn revoke_others_keeps_only_the_calling_session(backend: Backend) {
    let server = start(backend).await;
    let keep = bearer(&server, "hal@example.com").await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(
            login(&server, "hal@example.com", TEST_PASSWORD).await.body["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ivy = bearer(&server, "ivy@example.com").await;
    let reply = server
        .send(
            server
                .request(Method::POST, "/v1/auth/sessions/revoke-others")
                .bearer_auth(&keep),
        )
        .await;
    assert_eq!(reply.status, 204);
    for t in &others {
        assert_eq!(me_status(&server, t).await, 401);
    }
    assert_eq!(me_status(&server, &keep).await, 200);
    assert_eq!(
        me_status(&server, &ivy).await,
        200,
        "other users are untouched"
    );
    let list = server
        .send(server.get("/v1/auth/sessions").bearer_auth(&keep))
        .await;
    assert_eq!(list.body["sessions"].as_array().unwrap().len(), 1);
}

async fn an_idle_session_expires(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "jan@example.com").await;
    server.clock.advance(30 * DAY - Duration::from_millis(1));
    assert_eq!(
        me_status(&server, &token).await,
        200,
        "used just before the idle timeout"
    );
    server.clock.advance(30 * DAY - Duration::from_millis(1));
    assert_eq!(me_status(&server, &token).await, 200, "use extended it");
    server.clock.advance(30 * DAY);
    assert_eq!(
        me_status(&server, &token).await,
        401,
        "30 days without use end it"
    );
    let listed = server.auth.purge_dead_sessions().await.unwrap();
    assert_eq!(listed, 1, "the dead session is purged");
}

async fn a_used_session_still_ends_at_its_absolute_lifetime(backend: Backend) {
    let (server, _) = start_with(
        backend,
        &[("SESSION_IDLE", "2d"), ("SESSION_MAX_AGE", "5d")],
    )
    .await;
    let token = bearer(&server, "kim@example.com").await;
    for _ in 0..4 {
        server.clock.advance(DAY);
        assert_eq!(me_status(&server, &token).await, 200);
    }
    server.clock.advance(DAY);
    assert_eq!(
        me_status(&server, &token).await,
        401,
        "five days after sign-in it ends, however used"
    );
}

async fn last_seen_is_written_at_most_hourly(backend: Backend) {
    let server = start(backend).await;
    let token = bearer(&server, "lee@example.com").await;
    let (id, _) = token.split_once('.').unwrap();
    let stored = |server: &auth_skeleton::testing::TestServer| {
        let db = server.db.clone();
        let id = id.to_owned();
        async move {
            auth_skeleton::store::session_with_user(&db, &id)
                .await
                .unwrap()
                .unwrap()
                .session
                .last_seen_at
        }
    };
    let signed_in_at = stored(&server).await;
    server.clock.advance(HOUR - Duration::from_millis(1));
    assert_eq!(me_status(&server, &token).await, 200);
    assert_eq!(
        stored(&server).await,
        signed_in_at,
        "not written within the hour"
    );
    server.clock.advance(Duration::from_millis(1));
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&token))
        .await;
    assert_eq!(
        stored(&server).await,
        signed_in_at + HOUR.as_millis() as i64
    );
    assert_eq!(me.body["session"]["last_seen_at"], "2025-11-28T06:20:00Z");
}

async fn use_extends_an_idle_timeout_shorter_than_an_hour(backend: Backend) {
    let (server, _) = start_with(backend, &[("SESSION_IDLE", "15m")]).await;
    let token = bearer(&server, "max@example.com").await;
    let minute = Duration::from_secs(60);
    for step in 1..=6 {
        server.clock.advance(10 * minute);
        assert_eq!(
            me_status(&server, &token).await,
            200,
            "used every 10 minutes, alive after {} minutes",
            step * 10
        );
    }
    server.clock.advance(15 * minute);
    assert_eq!(
        me_status(&server, &token).await,
        401,
        "15 minutes without use end it"
    );
}

auth_skeleton::both_backends!(
    use_extends_an_idle_timeout_shorter_than_an_hour,
    missing_malformed_and_unknown_credentials_are_unauthenticated,
    logout_revokes_the_session_for_good,
    cookie_logout_clears_the_cookie,
    sessions_lists_only_the_callers_live_sessions,
    a_session_can_be_revoked_only_by_its_owner,
    revoke_others_keeps_only_the_calling_session,
    an_idle_session_expires,
    a_used_session_still_ends_at_its_absolute_lifetime,
    last_seen_is_written_at_most_hourly,
);
