//! Email+password accounts and server-side sessions for [actix-web] services on SQLite or
//! PostgreSQL, packaged so that each app runs as its own process on its own database while
//! sharing this code at a pinned version.
//!
//! What it gives an app:
//! - the `/v1/auth/*` routes of the HTTP contract (`docs/api.md`): sign-up, login, logout,
//!   sessions, password change, account deletion;
//! - argon2id password hashing (OWASP parameters, rehash on login, bounded concurrency);
//! - opaque server-side sessions, as an httpOnly cookie for the web or a bearer token for
//!   native clients, with idle and absolute expiry;
//! - [`http::CurrentUser`], the extractor that authenticates the app's own routes;
//! - storage on SQLite (embedded default) or PostgreSQL, chosen by URL at run time, with the
//!   library's migrations inside the crate and tracked apart from the app's;
//! - [`service::main`], which turns an app into a service: CLI, configuration from the
//!   environment, database ownership check, migrations, `/healthz`, `/readyz`, graceful shutdown.
//!
//! # Mounting it in an actix-web app
//!
//! The shortest way is [`service::main`] (see its example). To mount the routes in a server of
//! your own:
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use auth_skeleton::accounts::{Auth, AuthConfig};
//! use auth_skeleton::clock::Clock;
//! use auth_skeleton::db::{Db, Migrations, claim_ownership};
//! use auth_skeleton::http::CurrentUser;
//! use auth_skeleton::service::{AppInfo, configure_service};
//!
//! /// An app route: only signed-in users get here.
//! async fn hello(me: CurrentUser) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("hello {}", me.user.email))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let db = Db::connect("sqlite://data/app-hello.db").await?;
//!     let clock = Clock::system();
//!     claim_ownership(&db, "app-hello", clock.now_ms()).await?;
//!     Migrations::auth().run(&db).await?;
//!
//!     let config = AuthConfig::new("app-hello", "http://127.0.0.1:8083".parse()?);
//!     let auth = web::Data::new(Auth::new(db, config, clock, Vec::new())?);
//!     let info = AppInfo { name: "app-hello", version: "0.1.0" };
//!     HttpServer::new(move || {
//!         App::new()
//!             .configure(|cfg| configure_service(cfg, auth.clone(), info))
//!             .route("/v1/hello", web::get().to(hello))
//!     })
//!     .bind("127.0.0.1:8083")?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
//!
//! [actix-web]: https://docs.rs/actix-web

// The layers, bottom to top; a module imports only from its own layer or below
// (`tests/it/layers.rs` checks it, `docs/architecture.md` draws it).
// Foundation: no actix, no clap.
pub mod changes;
pub mod clock;
pub mod db;
pub mod metrics;
pub mod private_files;
pub mod rate_limit;
pub mod secret_key;
pub mod store;
pub mod token;
mod web_origin;
// Domain: accounts and mail.
pub mod accounts;
pub mod mail;
// Configuration from the environment.
pub mod config;
// HTTP.
pub mod http;
// The service runtime: engines, start-up, CLI, operator commands.
pub mod service;
// Test support.
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::Auth;

/// The version of this library (`/healthz` reports it as `auth_skeleton`).
pub const AUTH_SKELETON_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use http::problem::{ApiError, Problem};
