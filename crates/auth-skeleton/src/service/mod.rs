//! Running an app as a service: the CLI, start-up checks, the HTTP server and shutdown.
//!
//! An app provides an [`AppSpec`] (its name, version, default port and migrations) and an
//! [`Engine`] (its own routes and its part in account deletion); [`main`] does the rest:
//!
//! 1. reads the configuration from flags, the environment, `*_FILE` secrets and an optional
//!    TOML file (`service::cli`; a bad value stops it, naming the variable);
//! 2. opens the database and checks that it belongs to this app (refusing another app's);
//! 3. applies the library's migrations, then the app's;
//! 4. serves the auth routes, the engine's routes, `/healthz`, `/readyz` and `/metrics`, prints
//!    `listening on http://HOST:PORT`, and on SIGTERM or SIGINT finishes the requests in flight
//!    and exits 0.
//!
//! This is the top of the library's layers: it may use everything below (HTTP, configuration,
//! the account domain, storage), and nothing below uses it.

pub mod admin;
mod announcements;
mod cli;
mod server;

pub use cli::main;
pub use server::{
    ApiDocument, AppInfo, AppSpec, DatabaseCopy, Engine, EngineBuilder, EngineContext, Running,
    StartError, configure_app, configure_service, open, start,
};
pub(crate) use server::{init_logging, serve};
