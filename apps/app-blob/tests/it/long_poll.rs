//! `Prefer: wait=S` on `GET /v1/save/meta` with `If-None-Match`: a device holding the current
//! version waits until another device writes (through this instance or another on the
//! database) or `S` seconds pass.

use std::time::{Duration, Instant};

use auth_skeleton::testing::{Backend, Reply};
use reqwest::Method;

use crate::support::*;

async fn waiting_meta(user: &User<'_>, etag: &str, wait: &str) -> Reply {
    user.send(
        user.request(Method::GET, "/v1/save/meta")
            .header("if-none-match", etag)
            .header("prefer", wait),
    )
    .await
}

async fn a_waiting_meta_read_wakes_when_another_device_saves(backend: Backend) {
    let server = start(backend).await;
    let user = User::signup(&server, "ann@example.com").await;
    let first = user.create(b"level 1").await;
    let started = Instant::now();
    let (waited, (second, saved_at)) =
        tokio::join!(waiting_meta(&user, &first, "wait=20"), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let second = user.replace(&first, b"level 2").await;
            (second, Instant::now())
        });
    assert_eq!(waited.status, 200, "{:?}", waited.body);
    assert_eq!(waited.body["version"], second.as_str());
    assert_eq!(etag(&waited), second);
    assert_eq!(waited.headers["preference-applied"], "wait=20");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(saved_at.elapsed() < Duration::from_secs(1), "woke late");
    // A delete wakes it too: the meta is then gone.
    let (waited, deleted) = tokio::join!(waiting_meta(&user, &second, "wait=20"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        user.delete(&[("If-Match", second.as_str())]).await
    });
    assert_eq!(deleted.status, 204);
    assert_problem(&waited, 404, "no_save");
}

async fn with_no_change_the_wait_ends_in_304(backend: Backend) {
    let server = start(backend).await;
    let user = User::signup(&server, "ann@example.com").await;
    let current = user.create(b"level 1").await;
    let started = Instant::now();
    let waited = waiting_meta(&user, &current, "wait=1").await;
    let took = started.elapsed();
    assert_eq!(waited.status, 304);
    assert_eq!(etag(&waited), current);
    assert_eq!(waited.headers["preference-applied"], "wait=1");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A stale ETag answers at once with the current meta.
    let started = Instant::now();
    let stale = waiting_meta(&user, "\"stale\"", "wait=30").await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body["version"], current.as_str());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Without the preference a match answers 304 at once.
    let plain = user
        .send(
            user.request(Method::GET, "/v1/save/meta")
                .header("if-none-match", &current),
        )
        .await;
    assert_eq!(plain.status, 304);
    assert!(plain.headers.get("preference-applied").is_none());
}

async fn a_session_ended_during_the_wait_gets_401(backend: Backend) {
    let server = start(backend).await;
    let user = User::signup(&server, "ann@example.com").await;
    let current = user.create(b"level 1").await;
    let second_session = server
        .send(server.post(
            "/v1/auth/login",
            &serde_json::json!({"email": "ann@example.com", "password": auth_skeleton::testing::TEST_PASSWORD, "session": "bearer"}),
        ))
        .await;
    let device = User {
        server: &server,
        token: second_session.body["token"].as_str().unwrap().to_owned(),
        id: user.id.clone(),
    };
    let (waited, ()) = tokio::join!(waiting_meta(&user, &current, "wait=20"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logout = user
            .send(
                user.request(Method::POST, "/v1/auth/logout")
                    .json(&serde_json::json!({})),
            )
            .await;
        assert_eq!(logout.status, 204);
        device.replace(&current, b"secret level").await;
    });
    assert_problem(&waited, 401, "unauthenticated");
    // Nor at the end of a wait with no change: a 304 would confirm the version to it.
    let latest = etag(&device.get("/v1/save/meta").await);
    let (waited, ()) = tokio::join!(waiting_meta(&device, &latest, "wait=1"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logout = device
            .send(
                device
                    .request(Method::POST, "/v1/auth/logout")
                    .json(&serde_json::json!({})),
            )
            .await;
        assert_eq!(logout.status, 204);
    });
    assert_problem(&waited, 401, "unauthenticated");
}

/// A save committed without an announcement (its instance killed before it could send one) is
/// still seen at the end of the wait: 200 with the new version, not a 304 for the old one.
async fn a_save_committed_unannounced_is_seen_at_the_end_of_the_wait(backend: Backend) {
    let server = start(backend).await;
    let user = User::signup(&server, "ann@example.com").await;
    let current = user.create(b"level 1").await;
    let (waited, ()) = tokio::join!(waiting_meta(&user, &current, "wait=1"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        auth_skeleton::execute_db!(
            &server.db,
            sqlx::query("UPDATE blob_saves SET tag = 'elsewhere' WHERE user_id = $1")
                .bind(&user.id)
        )
        .unwrap();
    });
    assert_eq!(waited.status, 200, "{:?}", waited.body);
    assert_ne!(etag(&waited), current);
}

auth_skeleton::both_backends!(
    a_save_committed_unannounced_is_seen_at_the_end_of_the_wait,
    a_waiting_meta_read_wakes_when_another_device_saves,
    with_no_change_the_wait_ends_in_304,
    a_session_ended_during_the_wait_gets_401,
);

/// Two instances on one PostgreSQL database: a save through one wakes a read waiting on the
/// other.
#[actix_web::test]
async fn a_save_through_one_instance_wakes_a_read_waiting_on_another() {
    let first = start(Backend::Postgres).await;
    let second = first
        .start_another(
            app_blob::spec(),
            &[("MAX_SAVE_BYTES", TEST_MAX_BYTES)],
            app_blob::engine(),
        )
        .await;
    let ann = User::signup(&first, "ann@example.com").await;
    let ann_there = User {
        server: &second,
        token: ann.token.clone(),
        id: ann.id.clone(),
    };
    auth_skeleton::testing::wait_for_listeners(&first.database.url, 2).await;
    let mut current = ann.create(b"v0").await;
    for i in 1..=5 {
        let (waited, (next, saved_at)) =
            tokio::join!(waiting_meta(&ann_there, &current, "wait=20"), async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let next = ann.replace(&current, format!("v{i}").as_bytes()).await;
                (next, Instant::now())
            });
        assert_eq!(waited.status, 200);
        assert_eq!(waited.body["version"], next.as_str());
        assert!(
            saved_at.elapsed() < Duration::from_millis(500),
            "woke {:?} after the save",
            saved_at.elapsed()
        );
        current = next;
    }
}
