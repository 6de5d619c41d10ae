//! The engine the service runs: the routes, the tombstone purge job and account deletion.

use std::time::Duration;

use actix_web::web;
use auth_skeleton::accounts::UserId;
use auth_skeleton::accounts::hooks::{AccountDataHook, BoxFuture};
use auth_skeleton::config::ConfigError;
use auth_skeleton::db::Tx;
use auth_skeleton::service::EngineContext;

use crate::limits::Limits;
use crate::store;
use crate::sync::{PurgeReport, RowSync};

/// How often the purge looks for tombstones past their retention (and once at start). Retention
/// is counted in days, so an hour late costs nothing.
const PURGE_INTERVAL: Duration = Duration::from_secs(3_600);

/// The row sync engine.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     auth_skeleton::service::main(app_rows::spec(), app_rows::engine())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    sync: RowSync,
}

impl Engine {
    /// Builds the engine from the app's configuration (`MAX_CLOCK_SKEW`,
    /// `TOMBSTONE_RETENTION`, `ROWS_QUOTA`, `ROWS_BYTES_QUOTA`).
    pub fn new(ctx: EngineContext) -> Result<Self, ConfigError> {
        let limits = Limits::from_vars(&ctx.vars)?;
        Ok(Self {
            sync: RowSync::new(ctx.db, ctx.clock, limits, ctx.keys),
        })
    }

    /// The sync service behind the routes.
    pub fn sync(&self) -> &RowSync {
        &self.sync
    }

    /// Purges the tombstones past their retention now; the background job calls this hourly.
    pub async fn purge_tombstones(&self) -> Result<PurgeReport, sqlx::Error> {
        let report = self.sync.purge_tombstones().await?;
        crate::metrics::record_purged_tombstones(report.tombstones);
        Ok(report)
    }
}

impl AccountDataHook for Engine {
    fn delete_user_data<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a UserId,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(store::delete_user(tx, user_id))
    }
}

impl auth_skeleton::service::Engine for Engine {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        crate::metrics::describe();
        crate::routes::configure(cfg, self.sync.clone());
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <crate::routes::ApiDoc as utoipa::OpenApi>::openapi()
    }

    fn spawn_background_jobs(&self) {
        let engine = self.clone();
        actix_web::rt::spawn(async move {
            // The first tick is immediate: the purge runs when the service starts, then hourly.
            let mut tick = actix_web::rt::time::interval(PURGE_INTERVAL);
            loop {
                tick.tick().await;
                match engine.purge_tombstones().await {
                    Ok(PurgeReport { tombstones: 0, .. }) => {}
                    Ok(report) => tracing::info!(
                        tombstones = report.tombstones,
                        users = report.users,
                        "tombstones purged"
                    ),
                    Err(e) => tracing::warn!(error = %e, "tombstone purge failed; retrying later"),
                }
            }
        });
    }
}
