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
//! - [`store`]: the SQL, for SQLite and PostgreSQL, and [`files`]: large saves in files beside
//!   a SQLite database;
//! - [`version`], [`config`], [`error`]: the types they share;
//! - [`backup`]: the save files' part of `app-blob backup`.

pub mod backup;
pub mod config;
pub mod digest;
pub mod error;
pub mod failpoint;
pub mod files;
pub mod idempotency;
pub mod metrics;
pub mod precondition;
pub mod range;
pub mod routes;
pub mod saves;
pub mod store;
pub mod upload;
pub mod version;

use std::time::Duration;

use actix_web::web;
use auth_skeleton::accounts::UserId;
use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::config::{ConfigError, Vars};
use auth_skeleton::db::Tx;
use auth_skeleton::db::{Db, Migrations};
use auth_skeleton::service::{AppSpec, DatabaseCopy, EngineBuilder, EngineContext};

use crate::config::{DEFAULT_FILE_THRESHOLD, FileThreshold, SaveConfig};
use crate::files::FileStore;
use crate::saves::Saves;
use crate::upload::Spill;

/// How often expired `Idempotency-Key` records are swept away.
const KEY_PURGE_INTERVAL: Duration = Duration::from_secs(3_600);
/// How often the files beside the database that no row names are deleted (those a crash left,
/// those whose clean-up skipped its turn while a backup ran).
const FILE_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

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
    /// `BLOB_BYTES_QUOTA`, `SAVE_FILE_THRESHOLD`).
    pub fn new(ctx: EngineContext) -> Result<Self, ConfigError> {
        let config = SaveConfig::from_vars(&ctx.vars)?;
        let files = open_files(&ctx.db, &ctx.vars, config.file_threshold)?;
        Ok(Self {
            saves: web::Data::new(Saves::new(ctx.db, ctx.clock, config, files)),
        })
    }
}

/// The files beside a SQLite database file, `DATABASE.blobs`. They are opened even with
/// `SAVE_FILE_THRESHOLD=off`, which only stops new saves from going there: the saves kept in
/// files before stay readable.
fn open_files(
    db: &Db,
    vars: &Vars,
    threshold: FileThreshold,
) -> Result<Option<Spill>, ConfigError> {
    // `check-config` builds the engine over a scratch database: the URL tells the backend.
    let postgres = matches!(db, Db::Postgres(_))
        || vars
            .get("DATABASE_URL")
            .is_some_and(|url| url.starts_with("postgres"));
    if postgres && matches!(threshold, FileThreshold::Bytes(_)) {
        return Err(ConfigError::new(
            "SAVE_FILE_THRESHOLD",
            "files are kept beside a SQLite database file only; with PostgreSQL (where \
             several instances share the database) every save stays in the database: leave \
             it unset or `off`",
        ));
    }
    let Some(root) = FileStore::beside_database(db) else {
        return Ok(None);
    };
    let threshold = match threshold {
        FileThreshold::Off => u64::MAX,
        FileThreshold::Default => DEFAULT_FILE_THRESHOLD,
        FileThreshold::Bytes(n) => n,
    };
    let files = FileStore::open(root.clone()).map_err(|e| {
        ConfigError::new(
            "SAVE_FILE_THRESHOLD",
            format!("cannot create {} for the save files: {e}", root.display()),
        )
    })?;
    Ok(Some(Spill { files, threshold }))
}

impl AccountDataHook for Engine {
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(store::delete_user_data(tx, user_id))
    }

    /// The account's rows are gone: so go its files (a sweep: the rows that named them are
    /// gone too). Skipped while a backup or another process's write holds the clean-up lock;
    /// the next sweep takes them then.
    fn user_data_deleted<'a>(&'a self, _user_id: &'a UserId) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.saves.sweep_files().await {
                tracing::warn!(error = %e, "the files of a deleted account are left to the next sweep");
            }
        })
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

    fn backup<'a>(&'a self, database: DatabaseCopy<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(backup::run(self.saves.file_store().cloned(), database))
    }

    fn spawn_background_jobs(&self) {
        let saves = self.saves.clone();
        spawn_every(KEY_PURGE_INTERVAL, move || {
            let saves = saves.clone();
            async move {
                match saves.purge_expired_keys().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
                    Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
                }
            }
        });
        if self.saves.file_store().is_none() {
            return;
        }
        // The first sweep runs at start: the files a crash left, before any request places one.
        let saves = self.saves.clone();
        spawn_every(FILE_SWEEP_INTERVAL, move || {
            let saves = saves.clone();
            async move {
                match saves.sweep_files().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "save files no row names deleted"),
                    Err(e) => tracing::warn!(error = %e, "save file sweep failed"),
                }
            }
        });
    }
}

/// Runs `job` at once and then every `interval`, for as long as the service runs.
fn spawn_every<F, Job>(interval: Duration, job: F)
where
    F: Fn() -> Job + 'static,
    Job: std::future::Future<Output = ()> + 'static,
{
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(interval);
        loop {
            tick.tick().await;
            job().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check-config` builds the engine over `sqlite::memory:`: no directory may appear for it
    /// (it would land in the working directory).
    #[tokio::test]
    async fn an_in_memory_database_keeps_no_files() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let vars = Vars::from_pairs([]);
        for threshold in [FileThreshold::Default, FileThreshold::Bytes(0)] {
            assert!(open_files(&db, &vars, threshold).unwrap().is_none());
        }
        db.close().await;
    }
}
