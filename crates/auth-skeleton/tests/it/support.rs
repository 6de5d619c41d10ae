//! A minimal app around the library: no routes of its own, and a deletion hook that can be made
//! to fail (to show that account deletion is all or nothing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix_web::web;
use auth_skeleton::config::ConfigError;
use auth_skeleton::db::Tx;
use auth_skeleton::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::schema::Migrations;
use auth_skeleton::server::{AppSpec, Engine, EngineContext};
use auth_skeleton::testing::{Backend, TestServer};

pub use auth_skeleton::testing::{Reply, TEST_PASSWORD};

/// Counts the deletion hook's calls and can make it fail.
#[derive(Debug, Default)]
pub struct HookProbe {
    pub calls: AtomicUsize,
    pub fail: AtomicBool,
}

pub struct TestEngine(Arc<HookProbe>);

impl AccountDataHook for TestEngine {
    fn delete_user_data<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _user_id: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            if self.0.fail.load(Ordering::SeqCst) {
                return Err(sqlx::Error::Protocol(
                    "the app's data could not be deleted".into(),
                ));
            }
            Ok(())
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
    let server = TestServer::start(backend, spec(), vars, move |_: EngineContext| {
        Ok::<_, ConfigError>(TestEngine(engine_probe))
    })
    .await;
    (server, probe)
}

pub async fn start(backend: Backend) -> TestServer {
    start_with(backend, &[]).await.0
}
