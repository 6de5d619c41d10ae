//! `app-blob`: accounts from `auth-skeleton` plus one opaque save blob per user.
//!
//! The server never merges or inspects a save. Every version gets a server-assigned strong
//! ETag that never repeats for a user; a write must name the version it replaces
//! (`If-Match`) or ask to create (`If-None-Match: *`), and the check and the write happen in
//! one transaction, so of any number of writers holding one ETag exactly one succeeds.
//! Replaced and deleted versions stay in a short history. See `docs/api.md`, "Save blob".
//!
//! Modules, from the HTTP face down:
//! - [`routes`]: the `/v1/save` routes;
//! - [`upload`], [`digest`], [`idempotency`], [`precondition`]: reading and judging a request
//!   (the last three are pure);
//! - [`saves`]: the reads and the write transactions;
//! - [`store`]: the SQL, for SQLite and PostgreSQL;
//! - [`version`], [`config`], [`error`]: the types they share.

pub mod config;
pub mod digest;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod precondition;
pub mod routes;
pub mod saves;
pub mod store;
pub mod upload;
pub mod version;

use std::time::Duration;

use actix_web::web;
use auth_skeleton::accounts::UserId;
use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::config::ConfigError;
use auth_skeleton::db::Migrations;
use auth_skeleton::db::Tx;
use auth_skeleton::service::{AppSpec, EngineBuilder, EngineContext};

use crate::config::SaveConfig;
use crate::saves::Saves;

/// How often expired `Idempotency-Key` records are swept away.
const KEY_PURGE_INTERVAL: Duration = Duration::from_secs(3_600);

/// The app's identity, port and migrations.
pub fn spec() -> AppSpec {
    AppSpec {
        name: "app-blob",
        version: env!("CARGO_PKG_VERSION"),
        default_port: 8081,
        migrations: Migrations::app(
            sqlx::migrate!("../../migrations/app-blob/sqlite"),
            sqlx::migrate!("../../migrations/app-blob/postgres"),
        ),
    }
}

/// How the service builds this app's engine at start (`main`, the tests and the document check
/// all take it).
pub fn engine() -> EngineBuilder {
    EngineBuilder::new(Engine::new)
}

/// The save-blob engine.
pub struct Engine {
    saves: web::Data<Saves>,
}

impl Engine {
    /// Builds the engine from the app's configuration (`MAX_SAVE_BYTES`, `SAVE_HISTORY`,
    /// `BLOB_BYTES_QUOTA`).
    pub fn new(ctx: EngineContext) -> Result<Self, ConfigError> {
        let config = SaveConfig::from_vars(&ctx.vars)?;
        Ok(Self {
            saves: web::Data::new(Saves::new(ctx.db, ctx.clock, config)),
        })
    }
}

impl AccountDataHook for Engine {
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(store::delete_user_data(tx, user_id))
    }
}

impl auth_skeleton::service::Engine for Engine {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        metrics::describe();
        routes::configure(cfg, self.saves.clone());
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::ApiDoc as utoipa::OpenApi>::openapi()
    }

    fn spawn_background_jobs(&self) {
        let saves = self.saves.clone();
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(KEY_PURGE_INTERVAL);
            loop {
                tick.tick().await;
                match saves.purge_expired_keys().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
                    Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
                }
            }
        });
    }
}
