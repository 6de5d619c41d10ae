//! `Prefer: wait=S` on `GET /v1/rows/pull`: a pull with nothing new waits for a push from
//! another device (through this instance or another on the database), or `S` seconds; waiters
//! are bounded; a stopping service answers them at once.

use std::time::{Duration, Instant};

use auth_skeleton::testing::{Backend, Reply, ServiceProcess, TestDatabase, TestServer};
use serde_json::json;

use crate::client::Device;
use crate::support::*;

/// The cursor after every change so far.
async fn cursor_now(server: &TestServer, token: &str) -> String {
    let reply = pull(server, token, "").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["cursor"].as_str().unwrap().to_owned()
}

async fn waiting_pull(server: &TestServer, token: &str, since: &str, wait: &str) -> Reply {
    server
        .send(
            server
                .get(&format!("/v1/rows/pull?since={since}"))
                .header("prefer", wait)
                .bearer_auth(token),
        )
        .await
}

async fn a_waiting_pull_wakes_when_another_device_pushes(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let since = cursor_now(&server, &token).await;
    let started = Instant::now();
    let (waited, pushed_at) =
        tokio::join!(waiting_pull(&server, &token, &since, "wait=20"), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let reply = push(&server, &token, &[row("c", "a", 1, 0, "other", json!({}))]).await;
            assert_eq!(statuses(&reply), ["applied"]);
            Instant::now()
        });
    let woke_after_push = started.elapsed().saturating_sub(pushed_at - started);
    assert_eq!(waited.status, 200, "{:?}", waited.body);
    assert_eq!(waited.body["changes"].as_array().unwrap().len(), 1);
    assert_eq!(waited.header("preference-applied"), Some("wait=20"));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the push"
    );
    assert!(
        woke_after_push < Duration::from_secs(1),
        "woke {woke_after_push:?} after the push"
    );
}

async fn with_nothing_new_a_pull_answers_empty_after_the_wait(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let since = cursor_now(&server, &token).await;
    let started = Instant::now();
    let reply = waiting_pull(&server, &token, &since, "respond-async, wait=1").await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["changes"], json!([]));
    assert_eq!(reply.body["has_more"], false);
    assert_eq!(reply.header("preference-applied"), Some("wait=1"));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // Another user's push does not wake it.
    let (other, _) = server.signup_bearer("bob@example.com").await;
    let started = Instant::now();
    let (reply, _) = tokio::join!(waiting_pull(&server, &token, &since, "wait=2"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        push(&server, &other, &[row("c", "b", 1, 0, "bob", json!({}))]).await
    });
    assert_eq!(reply.body["changes"], json!([]));
    assert!(started.elapsed() >= Duration::from_secs(2));
}

async fn a_pull_with_changes_or_without_the_preference_answers_at_once(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    push(&server, &token, &[row("c", "a", 1, 0, "n", json!({}))]).await;
    let started = Instant::now();
    let reply = waiting_pull(&server, &token, "", "wait=30").await;
    assert_eq!(reply.body["changes"].as_array().unwrap().len(), 1);
    let since = reply.body["cursor"].as_str().unwrap().to_owned();
    let plain = pull(&server, &token, &format!("?since={since}")).await;
    assert_eq!(plain.body["changes"], json!([]));
    assert_eq!(plain.header("preference-applied"), None);
    for ignored in ["wait=soon", "wait=0", "return=minimal"] {
        let reply = waiting_pull(&server, &token, &since, ignored).await;
        assert_eq!(reply.status, 200, "{ignored}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// `n` pulls of `token` waiting for up to 30 s, in this order (each waits before the next is
/// sent), once all are waiting.
async fn waiting_pulls(
    server: &TestServer,
    token: &str,
    since: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Instant>> {
    let mut held = Vec::new();
    for _ in 0..n {
        let before = server.auth.changes().waiters();
        let request = server
            .get(&format!("/v1/rows/pull?since={since}"))
            .header("prefer", "wait=30")
            .bearer_auth(token);
        held.push(tokio::spawn(async move {
            let status = request.send().await.unwrap().status();
            assert_eq!(status, 200);
            Instant::now()
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.auth.changes().waiters() <= before {
            assert!(Instant::now() < deadline, "the waiter did not arrive");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    held
}

async fn past_the_bound_the_longest_waiting_pull_answers(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let since = cursor_now(&server, &token).await;
    let bound = auth_skeleton::changes::MAX_WAITERS_PER_USER;
    let mut held = waiting_pulls(&server, &token, &since, bound).await;
    let oldest = held.remove(0);
    let request = server
        .get(&format!("/v1/rows/pull?since={since}"))
        .header("prefer", "wait=30")
        .bearer_auth(&token);
    let newest = tokio::spawn(async move {
        assert_eq!(request.send().await.unwrap().status(), 200);
        Instant::now()
    });
    // The newest waits in the oldest's place, which answers at once.
    let answered = tokio::time::timeout(Duration::from_secs(5), oldest)
        .await
        .expect("the oldest answers")
        .unwrap();
    assert!(answered.elapsed() < Duration::from_secs(5));
    assert_eq!(server.auth.changes().waiters(), bound);
    // One push answers them all.
    let pushed_at = Instant::now();
    push(&server, &token, &[row("c", "a", 1, 0, "n", json!({}))]).await;
    for waiter in held.into_iter().chain([newest]) {
        let woken = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the push")
            .unwrap();
        assert!(woken >= pushed_at, "they waited for the push");
    }
    assert_eq!(server.auth.changes().waiters(), 0);
}

/// Requests whose client hung up still hold their places (the server cannot tell); a client
/// that comes back is not locked out of waiting by them.
async fn abandoned_pulls_do_not_lock_a_returning_client_out(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let since = cursor_now(&server, &token).await;
    let bound = auth_skeleton::changes::MAX_WAITERS_PER_USER;
    for abandoned in waiting_pulls(&server, &token, &since, bound).await {
        abandoned.abort();
    }
    let started = Instant::now();
    let (waited, ()) = tokio::join!(waiting_pull(&server, &token, &since, "wait=20"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        push(&server, &token, &[row("c", "a", 1, 0, "n", json!({}))]).await;
    });
    assert_eq!(waited.header("preference-applied"), Some("wait=20"));
    assert_eq!(waited.body["changes"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");
}

async fn the_reference_client_waits_for_changes_instead_of_polling(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let remote = Http::new(&server.base_url, &token);
    let mut phone = Device::new("phone");
    let mut laptop = Device::new("laptop");
    laptop.pull(&remote).await.unwrap();
    let now = server.clock.now_ms();
    phone.put(now, "notes", "n1", json!({"text": "hello"}));
    let started = Instant::now();
    let (waited, pushed) = tokio::join!(laptop.wait_for_changes(&remote, 20), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        phone.sync(&remote).await
    });
    waited.unwrap();
    pushed.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(laptop.live(), phone.live());
    assert_eq!(laptop.live().len(), 1);
}

auth_skeleton::both_backends!(
    a_waiting_pull_wakes_when_another_device_pushes,
    with_nothing_new_a_pull_answers_empty_after_the_wait,
    a_pull_with_changes_or_without_the_preference_answers_at_once,
    past_the_bound_the_longest_waiting_pull_answers,
    abandoned_pulls_do_not_lock_a_returning_client_out,
    the_reference_client_waits_for_changes_instead_of_polling,
    a_session_ended_during_the_wait_is_not_answered_with_data,
    a_change_committed_unannounced_is_answered_at_the_end_of_the_wait,
);

/// Instances on one PostgreSQL database wake each other's waiters.
mod postgres_instances {
    use super::*;

    #[actix_web::test]
    async fn a_push_through_one_instance_wakes_a_pull_waiting_on_another() {
        woken_across_instances(&[]).await;
    }

    #[actix_web::test]
    async fn instances_wake_each_other_with_the_session_cache_off() {
        woken_across_instances(&[("SESSION_CACHE_REFRESH", "0s")]).await;
    }

    async fn woken_across_instances(vars: &[(&str, &str)]) {
        let (first, token) = start_signed_in(Backend::Postgres, vars).await;
        let mut all = vec![
            ("TOMBSTONE_RETENTION", "36500d"),
            ("RATE_LIMIT_PUSH_USER", "off"),
        ];
        all.extend_from_slice(vars);
        let second = first
            .start_another(app_rows::spec(), &all, app_rows::engine())
            .await;
        auth_skeleton::testing::wait_for_listeners(&first.database.url, 2).await;
        let mut latencies = Vec::new();
        for i in 0..5 {
            let since = cursor_now(&second, &token).await;
            let (waited, pushed_at) =
                tokio::join!(waiting_pull(&second, &token, &since, "wait=20"), async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let change = row("c", &format!("r{i}"), 1, 0, "n", json!({}));
                    assert_eq!(
                        statuses(&push(&first, &token, &[change]).await),
                        ["applied"]
                    );
                    Instant::now()
                });
            latencies.push(pushed_at.elapsed());
            assert_eq!(waited.body["changes"].as_array().unwrap().len(), 1);
        }
        let slowest = latencies.iter().max().unwrap();
        assert!(
            *slowest < Duration::from_millis(500),
            "woken {latencies:?} after the pushes"
        );
    }
}

/// SIGTERM answers a waiting pull at once and the process exits 0.
#[actix_web::test]
async fn sigterm_answers_waiting_pulls_at_once() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let mut service = ServiceProcess::start(env!("CARGO_BIN_EXE_app-rows"), &vars);
    let token = signup_at(&service.base_url).await;
    let client = reqwest::Client::new();
    let first = client
        .get(format!("{}/v1/rows/pull", service.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let cursor: serde_json::Value = first.json().await.unwrap();
    let cursor = cursor["cursor"].as_str().unwrap().to_owned();
    let request = client
        .get(format!("{}/v1/rows/pull?since={cursor}", service.base_url))
        .header("prefer", "wait=60")
        .bearer_auth(&token);
    let waiting = tokio::spawn(async move { request.send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let status = service.terminate();
    assert!(status.success(), "exit {status:?}: {}", service.logs());
    let answered = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered")
        .unwrap()
        .expect("a response, not a dropped connection");
    assert_eq!(answered, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        started.elapsed()
    );
}

/// A session ended while its pull waits gets `401` when the pull wakes, not the change.
async fn a_session_ended_during_the_wait_is_not_answered_with_data(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let other = server
        .send(server.post(
            "/v1/auth/login",
            &json!({"email": "ann@example.com", "password": auth_skeleton::testing::TEST_PASSWORD, "session": "bearer"}),
        ))
        .await;
    let other = other.body["token"].as_str().unwrap().to_owned();
    let since = cursor_now(&server, &token).await;
    let (waited, ()) = tokio::join!(waiting_pull(&server, &token, &since, "wait=20"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logout = server
            .send(
                server
                    .post("/v1/auth/logout", &json!({}))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(logout.status, 204);
        let pushed = push(
            &server,
            &other,
            &[row("c", "secret", 1, 0, "n", json!({"pin": 1234}))],
        )
        .await;
        assert_eq!(statuses(&pushed), ["applied"]);
    });
    assert_problem(&waited, 401, "unauthenticated");
    // Nor at the end of the wait when nothing changed: no fresh cursor for an ended session.
    let since = cursor_now(&server, &other).await;
    let (waited, ()) = tokio::join!(waiting_pull(&server, &other, &since, "wait=1"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logout = server
            .send(
                server
                    .post("/v1/auth/logout", &json!({}))
                    .bearer_auth(&other),
            )
            .await;
        assert_eq!(logout.status, 204);
    });
    assert_problem(&waited, 401, "unauthenticated");
}

/// A change committed without an announcement (its instance killed before it could send one)
/// is still in the answer at the end of the wait.
async fn a_change_committed_unannounced_is_answered_at_the_end_of_the_wait(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let me = server
        .send(server.get("/v1/auth/me").bearer_auth(&token))
        .await;
    let ann = me.body["user"]["id"].as_str().unwrap().to_owned();
    let since = cursor_now(&server, &token).await;
    let quiet = engine(&server, &[("TOMBSTONE_RETENTION", "36500d")]);
    let (waited, ()) = tokio::join!(waiting_pull(&server, &token, &since, "wait=1"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let request: app_rows::change::PushRequest =
            serde_json::from_value(json!({"changes": [row("c", "quiet", 1, 0, "n", json!({}))]}))
                .unwrap();
        let changes = app_rows::change::check_batch(request).unwrap();
        quiet.sync().push(&ann, &changes).await.unwrap();
    });
    assert_eq!(waited.status, 200);
    assert_eq!(
        waited.body["changes"].as_array().unwrap().len(),
        1,
        "{:?}",
        waited.body
    );
}
