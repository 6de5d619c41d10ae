//! `app-rows`: accounts from `auth-skeleton` plus row-level last-write-wins sync with tombstones.
//!
//! A client pushes changed rows (`POST /v1/rows/push`) and pulls the rows others changed
//! (`GET /v1/rows/pull`); see the HTTP contract in `docs/api.md`. The parts, each in its module:
//!
//! - [`lww`]: which version wins and what a push does to a row (pure, property-tested);
//! - [`change`]: rows on the wire and how a push is checked;
//! - [`cursor`]: the opaque pull cursor;
//! - [`store`]: the SQL, for SQLite and PostgreSQL;
//! - [`sync`]: push, pull and the tombstone purge as transactions;
//! - [`routes`]: the HTTP face;
//! - [`engine`](mod@engine): what the service runs (routes, purge job, account deletion);
//! - [`limits`]: the configuration.
//!
//! Why a per-user sequence is the cursor and how tombstones expire:
//! `docs/adr/0010-rows-sync-cursor-and-tombstones.md`.

pub mod change;
pub mod cursor;
pub mod engine;
pub mod limits;
pub mod lww;
pub mod metrics;
pub mod routes;
pub mod store;
pub mod sync;

use auth_skeleton::db::Migrations;
use auth_skeleton::service::{AppSpec, EngineBuilder};

pub use engine::Engine;

/// The app's identity, port and migrations.
pub fn spec() -> AppSpec {
    AppSpec {
        name: "app-rows",
        version: env!("CARGO_PKG_VERSION"),
        default_port: 8080,
        migrations: Migrations::app(
            sqlx::migrate!("../../migrations/app-rows/sqlite"),
            sqlx::migrate!("../../migrations/app-rows/postgres"),
        ),
    }
}

/// How the service builds this app's engine at start (`main`, the tests and the document check
/// all take it).
pub fn engine() -> EngineBuilder {
    EngineBuilder::new(Engine::new)
}
