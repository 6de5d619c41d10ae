//! A minimal app around the library: no routes of its own, and a deletion hook that can be made
//! to fail (to show that account deletion is all or nothing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix_web::web;
use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::config::ConfigError;
use auth_skeleton::db::Migrations;
use auth_skeleton::db::Tx;
use auth_skeleton::service::{AppSpec, Engine, EngineBuilder, EngineContext};
use auth_skeleton::testing::TestServer;

pub use auth_skeleton::testing::Backend;
pub use auth_skeleton::testing::{Reply, TEST_PASSWORD};

/// Counts the deletion hook's calls and can make it fail.
#[derive(Debug, Default)]
pub struct HookProbe {
    pub calls: AtomicUsize,
    pub fail: AtomicBool,
    /// How many calls end with PostgreSQL's own `40P01 deadlock_detected`, as when the server
    /// breaks a deadlock by ending this transaction.
    pub deadlocks: AtomicUsize,
    /// How many times a committed deletion was reported to the hook.
    pub reported: AtomicUsize,
}

pub struct TestEngine(pub Arc<HookProbe>);

impl AccountDataHook for TestEngine {
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        _user_id: &'a auth_skeleton::accounts::UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            let deadlock = self
                .0
                .deadlocks
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if deadlock && let Tx::Postgres(tx) = tx {
                sqlx::query(
                    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected (test)'
                         USING ERRCODE = 'deadlock_detected'; END $$",
                )
                .execute(&mut **tx)
                .await?;
            }
            if self.0.fail.load(Ordering::SeqCst) {
                return Err(sqlx::Error::Protocol(
                    "the app's data could not be deleted".into(),
                ));
            }
            Ok(())
        })
    }

    fn user_data_deleted<'a>(
        &'a self,
        _user_id: &'a auth_skeleton::accounts::UserId,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0.reported.fetch_add(1, Ordering::SeqCst);
        })
    }
}

impl Engine for TestEngine {
    fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}

pub fn spec() -> AppSpec {
    AppSpec {
        name: "app-test",
        version: "9.9.9",
        default_port: 0,
        migrations: Migrations::none(),
    }
}

/// The test app on a fresh database, with extra configuration `vars`.
pub async fn start_with(backend: Backend, vars: &[(&str, &str)]) -> (TestServer, Arc<HookProbe>) {
    let probe = Arc::new(HookProbe::default());
    let engine_probe = probe.clone();
    let server = TestServer::start(
        backend,
        spec(),
        vars,
        EngineBuilder::new(move |_: EngineContext| Ok::<_, ConfigError>(TestEngine(engine_probe))),
    )
    .await;
    (server, probe)
}

pub async fn start(backend: Backend) -> TestServer {
    start_with(backend, &[]).await.0
}

/// The origin the test server accepts (`PUBLIC_URL`).
pub const ORIGIN: &str = "http://app.test";
/// The session cookie's name with the default `COOKIE_SECURE=true`.
pub const COOKIE: &str = "__Host-session";

/// Signs up `email` with the test password; `session` is `"cookie"` or `"bearer"`.
pub async fn signup(server: &TestServer, email: &str, session: &str) -> Reply {
    server
        .send(server.post(
            "/v1/auth/signup",
            &serde_json::json!({"email": email, "password": TEST_PASSWORD, "session": session}),
        ))
        .await
}

/// Logs in with a bearer session.
pub async fn login(server: &TestServer, email: &str, password: &str) -> Reply {
    server
        .send(server.post(
            "/v1/auth/login",
            &serde_json::json!({"email": email, "password": password, "session": "bearer"}),
        ))
        .await
}

/// Signs up and returns the bearer token.
pub async fn bearer(server: &TestServer, email: &str) -> String {
    server.signup_bearer(email).await.0
}

/// The session cookie's value from a reply's `Set-Cookie`.
pub fn session_cookie(reply: &Reply) -> String {
    reply
        .set_cookies()
        .into_iter()
        .find_map(|c| {
            c.strip_prefix(&format!("{COOKIE}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
        .expect("a session cookie")
}

/// `GET /v1/auth/me` with a bearer token; returns the status.
pub async fn me_status(server: &TestServer, token: &str) -> u16 {
    server
        .send(server.get("/v1/auth/me").bearer_auth(token))
        .await
        .status
}

/// Asserts a problem+json error with `status` and `code`.
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.code(), code, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.body["status"], status);
    assert_eq!(reply.body["type"], "about:blank");
    assert!(reply.body["title"].is_string() && reply.body["detail"].is_string());
}

/// The test app with its mail going to a real SMTP server on loopback.
pub async fn start_with_mail(
    backend: Backend,
    vars: &[(&str, &str)],
) -> (TestServer, auth_skeleton::testing::SmtpSink) {
    let sink = auth_skeleton::testing::SmtpSink::start().await;
    let url = sink.url();
    let mut all = vec![
        ("MAIL_TRANSPORT", url.as_str()),
        ("MAIL_FROM", "App Test <no-reply@app.test>"),
    ];
    all.extend_from_slice(vars);
    let (server, _) = start_with(backend, &all).await;
    (server, sink)
}

pub const VERIFY_LINK: &str = "http://app.test/verify-email?token=";
pub const RESET_LINK: &str = "http://app.test/reset-password?token=";
pub const CONFIRM_LINK: &str = "http://app.test/confirm-email?token=";

/// POSTs `{"token": token}` (plus `extra`) to `path`.
pub async fn redeem(server: &TestServer, path: &str, token: &str) -> Reply {
    server
        .send(server.post(path, &serde_json::json!({ "token": token })))
        .await
}

/// Another instance of the test app on `server`'s database, with its own `vars`.
pub async fn start_another(server: &TestServer, vars: &[(&str, &str)]) -> TestServer {
    let probe = Arc::new(HookProbe::default());
    server
        .start_another(
            spec(),
            vars,
            EngineBuilder::new(move |_: EngineContext| Ok::<_, ConfigError>(TestEngine(probe))),
        )
        .await
}

/// On PostgreSQL, waits until `n` instances listen for announcements (their session caches
/// serve nothing before); on SQLite, returns at once.
pub async fn wait_for_listeners(server: &TestServer, n: i64) {
    auth_skeleton::testing::wait_for_listeners(&server.database.url, n).await;
}
