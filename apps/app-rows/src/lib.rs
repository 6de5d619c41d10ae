//! `app-rows`: accounts from `auth-skeleton` plus row-level last-write-wins sync with tombstones.

use actix_web::web;
use auth_skeleton::config::ConfigError;
use auth_skeleton::db::Tx;
use auth_skeleton::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::schema::Migrations;
use auth_skeleton::server::{AppSpec, EngineContext};

/// The app's identity, port and migrations.
pub fn spec() -> AppSpec {
    AppSpec {
        name: "app-rows",
        version: env!("CARGO_PKG_VERSION"),
        default_port: 8080,
        migrations: Migrations::none(),
    }
}

/// The row sync engine.
pub struct Engine {}

impl Engine {
    /// Builds the engine from the app's configuration.
    pub fn new(_ctx: EngineContext) -> Result<Self, ConfigError> {
        Ok(Self {})
    }
}

impl AccountDataHook for Engine {
    fn delete_user_data<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _user_id: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async { Ok(()) })
    }
}

impl auth_skeleton::server::Engine for Engine {
    fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}
