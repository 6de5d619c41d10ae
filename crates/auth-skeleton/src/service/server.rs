//! Starting an app: opening its database, migrating, building its engine and serving.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::accounts::Auth;
use crate::accounts::hooks::{AccountDataHook, BoxFuture};
use crate::clock::Clock;
use crate::config::{ConfigError, LogFormat, Settings, Vars};
use crate::db::Db;
use crate::db::{Migrations, claim_ownership};
pub use crate::http::operations::{ApiDocument, AppInfo};
use crate::secret_key::Keyring;

/// How often expired sessions are swept from the database.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(3_600);
/// How often idle rate-limit state is dropped.
const RATE_LIMIT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How long shutdown spends delivering the mail that is still due.
const MAIL_FLUSH_GRACE: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the library needs to know about an app.
#[derive(Debug)]
pub struct AppSpec {
    /// The app's name: its binary, its database's owner, the name in mail and `/healthz`.
    pub name: &'static str,
    /// The app's version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// The port of the default `BIND` address (`127.0.0.1:PORT`).
    pub default_port: u16,
    /// The app's own migrations, applied after the library's.
    pub migrations: Migrations,
}

/// What an engine gets at start.
#[derive(Debug, Clone)]
pub struct EngineContext {
    /// The app's database.
    pub db: Db,
    /// The clock every expiry decision uses.
    pub clock: Clock,
    /// Where the app reads its own variables (`MAX_SAVE_BYTES`, ...).
    pub vars: Vars,
    /// The service's secret keys ([`crate::secret_key`]), for what the app must seal or bind
    /// (derive a purpose of the app's own name, e.g. `app-rows/cursor`).
    pub keys: Keyring,
}

/// Builds an app's engine from what the service hands it at start. Each app exposes one
/// (`app_rows::engine()`), and everything that runs an app takes it: [`crate::service::main`],
/// [`start`], the test server and the document check.
pub struct EngineBuilder(Box<BuildFn>);

type BuildFn = dyn FnOnce(EngineContext) -> Result<Arc<dyn Engine>, ConfigError>;

impl EngineBuilder {
    /// Wraps the function that builds the engine (it may refuse the app's variables).
    pub fn new<E: Engine>(
        build: impl FnOnce(EngineContext) -> Result<E, ConfigError> + 'static,
    ) -> Self {
        Self(Box::new(move |ctx| {
            build(ctx).map(|engine| Arc::new(engine) as Arc<dyn Engine>)
        }))
    }

    /// Builds the engine.
    pub fn build(self, ctx: EngineContext) -> Result<Arc<dyn Engine>, ConfigError> {
        (self.0)(ctx)
    }
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineBuilder")
    }
}

/// An app's own part of the service: its routes and the deletion of its data.
pub trait Engine: AccountDataHook {
    /// Mounts the engine's routes. [`crate::http::CurrentUser`] works on them.
    fn configure(&self, cfg: &mut web::ServiceConfig);

    /// Starts the engine's background jobs (tombstone purges and the like); the default has none.
    fn spawn_background_jobs(&self) {}

    /// The OpenAPI paths and schemas of the engine's routes, merged into `/openapi.json`
    /// (see [`crate::http::openapi`]); the default documents nothing.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApi::default()
    }

    /// The engine's part of `APP backup`, around the copy of the database.
    ///
    /// `database` writes the database's copy when it is run. The default runs it and does
    /// nothing else. An engine that keeps data outside the database (files beside it) holds
    /// off whatever would delete that data, runs the copy, and then copies what the copy
    /// refers to next to it, so that the two together are one consistent backup.
    fn backup<'a>(&'a self, database: DatabaseCopy<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(database.write())
    }
}

/// The copy of the database that `APP backup` writes, handed to [`Engine::backup`].
pub struct DatabaseCopy<'a> {
    target: &'a Path,
    write: BoxFuture<'a, Result<(), String>>,
}

impl<'a> DatabaseCopy<'a> {
    /// The copy that `write` makes at `target`.
    pub fn new(target: &'a Path, write: BoxFuture<'a, Result<(), String>>) -> Self {
        Self { target, write }
    }

    /// Where the copy goes (a new file).
    pub fn target(&self) -> &'a Path {
        self.target
    }

    /// Writes the copy: a snapshot of the database as it is at this moment.
    pub async fn write(self) -> Result<(), String> {
        self.write.await
    }
}

impl std::fmt::Debug for DatabaseCopy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseCopy")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Sends logs to standard error, as text or JSON lines, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files would keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Why a service could not start. Its `Display` is the message an operator reads (it names the
/// setting to change where there is one, and never a secret).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong (read at start: the secret key, the app's own variables).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("DATABASE_URL: {0}")]
    Database(#[from] crate::db::ConnectError),
    /// The database belongs to another app, or could not be claimed.
    #[error(transparent)]
    Ownership(#[from] crate::db::OwnershipError),
    /// A set of migrations failed (`auth-skeleton`'s or the app's).
    #[error("{set} migrations failed: {source}")]
    Migration {
        /// Whose migrations.
        set: String,
        /// What failed.
        source: sqlx::migrate::MigrateError,
    },
    /// The account services could not be built.
    #[error(transparent)]
    Auth(#[from] crate::accounts::InitError),
    /// The listening address could not be bound.
    #[error("BIND: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// Opens the database, claims it for the app, and applies both sets of migrations.
///
/// Logs a warning for each of the database's files (and its directory) that other users can
/// read (`config::checks::exposed_files`).
pub async fn open(spec: &AppSpec, settings: &Settings, clock: &Clock) -> Result<Db, StartError> {
    let db = Db::connect(settings.database_url.expose()).await?;
    // After connecting: the -wal and -shm files exist now, with the database file's mode.
    for exposed in crate::config::checks::exposed_files(settings) {
        tracing::warn!("{}", crate::config::checks::exposure_warning(&exposed));
    }
    claim_ownership(&db, spec.name, clock.now_ms()).await?;
    Migrations::auth()
        .run(&db)
        .await
        .map_err(|source| StartError::Migration {
            set: "auth-skeleton".to_owned(),
            source,
        })?;
    spec.migrations
        .run(&db)
        .await
        .map_err(|source| StartError::Migration {
            set: spec.name.to_owned(),
            source,
        })?;
    Ok(db)
}

/// Serves until SIGTERM or SIGINT.
pub(crate) async fn serve(
    spec: AppSpec,
    settings: Settings,
    vars: Vars,
    clock: Clock,
    engine: EngineBuilder,
) -> Result<(), StartError> {
    let db = open(&spec, &settings, &clock).await?;
    let running = start(&spec, &settings, db.clone(), clock, vars, engine).await?;
    // The one line operators and tests wait for, printed whatever the log settings.
    println!("listening on http://{}", running.addr);
    tracing::info!(app = spec.name, version = spec.version, addr = %running.addr, "serving");
    running.server.await.map_err(StartError::Serve)?;
    // Requests are done; deliver what they enqueued before the process goes.
    running.auth.outbox().flush(MAIL_FLUSH_GRACE).await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// A bound server that has not been awaited yet.
pub struct Running {
    /// The address it listens on (the real port when `BIND` asked for port 0).
    pub addr: std::net::SocketAddr,
    /// The account services it serves.
    pub auth: Auth,
    /// The server; await it (or spawn it) to serve. Stops on SIGTERM/SIGINT or through its handle.
    pub server: actix_web::dev::Server,
}

/// Builds the engine and the auth services over an opened `db` and binds the HTTP server.
///
/// [`crate::service::main`] uses it after [`open`]; tests and embedders use it to run a service in-process.
pub async fn start(
    spec: &AppSpec,
    settings: &Settings,
    db: Db,
    clock: Clock,
    vars: Vars,
    engine: EngineBuilder,
) -> Result<Running, StartError> {
    let cache_refresh = settings.session_cache_refresh;
    let bind_error = |source| StartError::Bind {
        addr: settings.bind,
        source,
    };
    // Bound before anything is built on the public origin: with port 0, the default
    // `PUBLIC_URL` (`http://` + `BIND`) must name the port the system chose, or pages served from
    // it fail the CSRF check and mailed links lead nowhere.
    let listener = std::net::TcpListener::bind(settings.bind).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let mut config = settings.auth.clone();
    if settings.bind.port() == 0 && config.public_url.port() == Some(0) {
        let _ = config.public_url.set_port(Some(addr.port()));
    }
    config.keys = settings.secret_key.load()?;
    let engine = engine.build(EngineContext {
        db: db.clone(),
        clock: clock.clone(),
        vars,
        keys: config.keys.clone(),
    })?;
    let auth = Auth::new(
        db,
        config,
        clock,
        vec![engine.clone() as Arc<dyn AccountDataHook>],
    )?
    .with_session_cache(cache_refresh);
    engine.spawn_background_jobs();
    // On PostgreSQL other instances may end sessions and change data: hear them, for the
    // session cache and for long-polls alike.
    if let Db::Postgres(pool) = auth.db() {
        super::announcements::spawn(auth.clone(), pool.clone());
    }
    spawn_session_purge(auth.clone());
    spawn_rate_limit_pruning(auth.clone());
    auth.outbox().spawn_worker();

    let info = AppInfo {
        name: spec.name,
        version: spec.version,
    };
    let data = web::Data::new(auth.clone());
    crate::metrics::handle();
    spawn_metrics_upkeep();
    let server = HttpServer::new(move || {
        let engine = engine.clone();
        // The last `wrap` is the outermost: the request log sees every response, CORS included.
        App::new()
            .configure(|cfg| configure_app(cfg, data.clone(), info, engine.as_ref()))
            .default_service(web::to(crate::http::allowed_methods::fallback))
            .wrap(from_fn(crate::http::allowed_methods::problem_for_bare_405))
            .wrap(from_fn(crate::http::allowed_methods::head_as_get))
            .wrap(from_fn(crate::http::headers::security_headers))
            .wrap(crate::http::cors::cors(data.config()))
            .wrap(from_fn(crate::http::request_log::request_log))
    })
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    // Signals are handled below, so that waiting long-polls are answered first.
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?;
    let server = server.run();
    spawn_stop_on_signal(auth.clone(), server.handle());
    Ok(Running { addr, auth, server })
}

/// Mounts everything a service serves: the library's routes, the engine's, and `/openapi.json`
/// documenting both. [`start`] calls it; tests use it to build the same app in-process.
pub fn configure_app(
    cfg: &mut web::ServiceConfig,
    auth: web::Data<Auth>,
    info: AppInfo,
    engine: &dyn Engine,
) {
    let doc = crate::http::openapi::document(info.name, info.version, engine.openapi());
    cfg.app_data(web::Data::new(ApiDocument::new(&doc)));
    cfg.app_data(web::Data::new(
        crate::http::allowed_methods::AllowedMethods::from_document(&doc),
    ));
    configure_service(cfg, auth, info);
    engine.configure(cfg);
}

/// Mounts everything the library serves: app data, `/healthz`, `/readyz`, `/metrics`,
/// `/openapi.json` and `/v1/auth/*`.
///
/// [`crate::service::main`] calls it; use it directly to embed the library in a server of your own (or to test
/// one with `actix_web::test`).
pub fn configure_service(cfg: &mut web::ServiceConfig, auth: web::Data<Auth>, info: AppInfo) {
    cfg.app_data(auth)
        .app_data(web::Data::new(info))
        .configure(crate::http::operations::configure)
        .configure(crate::http::configure);
}

/// Folds histogram samples in periodically, so that memory stays bounded between scrapes.
fn spawn_metrics_upkeep() {
    actix_web::rt::spawn(async {
        let mut tick = actix_web::rt::time::interval(crate::metrics::UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            crate::metrics::handle().run_upkeep();
        }
    });
}

/// On SIGTERM or SIGINT: answers the waiting long-polls at once, then stops accepting and lets
/// the requests in flight finish.
fn spawn_stop_on_signal(auth: Auth, server: actix_web::dev::ServerHandle) {
    actix_web::rt::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stopping");
        auth.changes().shut_down();
        server.stop(true).await;
    });
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot handle SIGTERM and SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    if actix_web::rt::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Keeps rate-limit memory bounded under a flood of distinct IPs or emails.
fn spawn_rate_limit_pruning(auth: Auth) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(RATE_LIMIT_PRUNE_INTERVAL);
        loop {
            tick.tick().await;
            auth.prune_rate_limits_everywhere().await;
        }
    });
}

fn spawn_session_purge(auth: Auth) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(SESSION_PURGE_INTERVAL);
        loop {
            tick.tick().await;
            match auth.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired sessions and mailed tokens purged"),
                Err(e) => tracing::warn!(error = %e, "purge of expired sessions and tokens failed"),
            }
        }
    });
}
