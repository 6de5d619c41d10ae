//! The command line every app gets through [`main`]: serve, migrate, check the
//! configuration, back up, and administer accounts.
//!
//! Configuration is read in layers, the first that sets a variable winning:
//! 1. flags (`--database-url`, `--bind`, ..., and `--set NAME=VALUE` for any other variable);
//! 2. the environment (`DATABASE_URL`, `BIND`, ...);
//! 3. `NAME_FILE` variables: `NAME` read from that file (for secrets);
//! 4. the TOML file given with `--config` (or `CONFIG_FILE`);
//! 5. the defaults of the contract.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::accounts::Auth;
use crate::accounts::hooks::AccountDataHook;
use crate::clock::Clock;
use crate::config::KeySource;
use crate::config::{ConfigError, LogFormat, Settings, Vars, checks, file};
use crate::db::{DatabaseUrl, Db};
use crate::db::{Migrations, OwnershipError, owner};
use crate::service::admin::{Admin, AdminError, Verification};
use crate::service::{AppSpec, DatabaseCopy, Engine, EngineBuilder, EngineContext};

/// Exit status for a configuration mistake (the same as clap's for a usage mistake).
const EXIT_CONFIG: u8 = 2;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    about = "Accounts, sessions and the app's sync engine, as one HTTP service",
    long_about = "Accounts, sessions and the app's sync engine, as one HTTP service.\n\n\
        Every setting can be given as a flag, an environment variable, NAME_FILE (the value read \
        from a file, for secrets) or a key of the --config TOML file; flags win over the \
        environment, which wins over NAME_FILE, which wins over the file. Apps' own settings \
        (MAX_SAVE_BYTES, ROWS_QUOTA, ...) and rate limits (RATE_LIMIT_LOGIN_IP, ...) are set the \
        same ways, with --set NAME=VALUE as their flag.",
    after_help = "Run without a command to serve. `check-config` validates the configuration \
        without starting anything."
)]
pub struct Cli {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do; serving when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The configuration flags, one per variable of the contract.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Configuration")]
pub struct ConfigArgs {
    /// A TOML file of settings (keys are the variable names, any case).
    #[arg(long, value_name = "PATH", env = "CONFIG_FILE", global = true)]
    pub config: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://data/APP.db].
    #[arg(
        long,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,
    /// The address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", env = "BIND", global = true)]
    pub bind: Option<String>,
    /// The public origin, for mailed links and the Origin check [default: http://BIND].
    #[arg(long, value_name = "URL", env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Further origins allowed for cookie requests and CORS, comma-separated.
    #[arg(long, value_name = "ORIGINS", env = "ALLOWED_ORIGINS", global = true)]
    pub allowed_origins: Option<String>,
    /// true: a Secure __Host-session cookie; false: plain-HTTP local development only.
    #[arg(long, value_name = "BOOL", env = "COOKIE_SECURE", global = true)]
    pub cookie_secure: Option<String>,
    /// log, file:DIR, or an smtp:// or smtps:// URL.
    #[arg(
        long,
        value_name = "TRANSPORT",
        env = "MAIL_TRANSPORT",
        hide_env_values = true,
        global = true
    )]
    pub mail_transport: Option<String>,
    /// The sender address of mail.
    #[arg(long, value_name = "ADDRESS", env = "MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// IPs or CIDRs whose X-Forwarded-For is believed, comma-separated.
    #[arg(long, value_name = "LIST", env = "TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// The shortest password accepted [default: 8].
    #[arg(long, value_name = "N", env = "PASSWORD_MIN_LENGTH", global = true)]
    pub password_min_length: Option<String>,
    /// Sessions end after this long unused, e.g. 30d, 12h [default: 30d].
    #[arg(long, value_name = "DURATION", env = "SESSION_IDLE", global = true)]
    pub session_idle: Option<String>,
    /// Sessions end this long after sign-in [default: 90d].
    #[arg(long, value_name = "DURATION", env = "SESSION_MAX_AGE", global = true)]
    pub session_max_age: Option<String>,
    /// text or json (logs go to standard error; RUST_LOG filters them) [default: text].
    #[arg(long, value_name = "FORMAT", env = "LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Any other variable, e.g. --set RATE_LIMIT_LOGIN_IP=20/minute; repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment, global = true)]
    pub set: Vec<(String, String)>,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve HTTP (the default): apply pending migrations, then listen on BIND.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Validate the configuration and print it (secrets masked); exit non-zero if it is wrong.
    CheckConfig,
    /// Write a consistent copy of a SQLite database to PATH while the service runs.
    ///
    /// Uses SQLite's VACUUM INTO: the copy is a snapshot, compacted, and safe to take under load.
    /// PATH must not exist. For PostgreSQL use pg_dump instead.
    Backup {
        /// Where to write the copy (a new file).
        path: PathBuf,
    },
    /// Inspect and manage accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

/// `users ...`
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List every account, oldest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account and its live sessions.
    Show {
        /// The account's email address.
        email: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark an account's email address as verified.
    Verify {
        /// The account's email address.
        email: String,
    },
    /// Delete an account, its sessions and all its app data, in one transaction.
    Delete {
        /// The account's email address.
        email: String,
        /// Confirm: deletion cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

/// `sessions ...`
#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// Revoke every session of an account: it is signed out everywhere at once.
    Revoke {
        /// The account's email address.
        email: String,
    },
}

fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "{name:?} is not a variable name (upper case, digits and _)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

impl Cli {
    /// Parses the process's arguments, with `spec`'s name and version in `--help` and `--version`.
    pub fn parse_for(spec: &AppSpec) -> Self {
        let matches = Self::command()
            .name(spec.name)
            .bin_name(spec.name)
            .version(spec.version)
            .get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

impl ConfigArgs {
    /// The variables these flags (and the environment, `*_FILE` files and the config file)
    /// give, in precedence order.
    pub fn vars(&self) -> Result<Vars, ConfigError> {
        let mut flags: HashMap<String, String> = self.set.iter().cloned().collect();
        for (name, value) in [
            ("DATABASE_URL", &self.database_url),
            ("BIND", &self.bind),
            ("PUBLIC_URL", &self.public_url),
            ("ALLOWED_ORIGINS", &self.allowed_origins),
            ("COOKIE_SECURE", &self.cookie_secure),
            ("MAIL_TRANSPORT", &self.mail_transport),
            ("MAIL_FROM", &self.mail_from),
            ("TRUSTED_PROXIES", &self.trusted_proxies),
            ("PASSWORD_MIN_LENGTH", &self.password_min_length),
            ("SESSION_IDLE", &self.session_idle),
            ("SESSION_MAX_AGE", &self.session_max_age),
            ("LOG_FORMAT", &self.log_format),
        ] {
            if let Some(value) = value {
                flags.insert(name.to_owned(), value.clone());
            }
        }
        let mut vars = Vars::from_map(flags)
            .with_fallback(Vars::from_env())
            .with_fallback(file::secrets_from_env_files()?);
        if let Some(path) = &self.config {
            vars = vars.with_fallback(file::read_toml(path)?);
        }
        Ok(vars)
    }
}

/// Runs the app's command line: `serve` (the default), `migrate`, `check-config`, `backup` and
/// the account commands. Call it from `main`.
///
/// ```no_run
/// use auth_skeleton::db::Migrations;
/// use auth_skeleton::service::{self, AppSpec, EngineBuilder, EngineContext};
/// # struct Notes;
/// # impl auth_skeleton::accounts::hooks::AccountDataHook for Notes {
/// #     fn delete_user_data<'a>(&'a self, _: &'a mut auth_skeleton::db::Tx, _: &'a auth_skeleton::accounts::UserId)
/// #         -> auth_skeleton::accounts::hooks::BoxFuture<'a, Result<(), sqlx::Error>> { Box::pin(async { Ok(()) }) }
/// # }
/// # impl service::Engine for Notes {
/// #     fn configure(&self, _: &mut actix_web::web::ServiceConfig) {}
/// # }
/// # impl Notes { fn new(_: EngineContext) -> Result<Self, auth_skeleton::config::ConfigError> { Ok(Notes) } }
///
/// fn main() -> std::process::ExitCode {
///     let spec = AppSpec {
///         name: "app-notes",
///         version: env!("CARGO_PKG_VERSION"),
///         default_port: 8082,
///         migrations: Migrations::none(),
///     };
///     service::main(spec, EngineBuilder::new(Notes::new))
/// }
/// ```
pub fn main(spec: AppSpec, engine: EngineBuilder) -> ExitCode {
    let cli = Cli::parse_for(&spec);
    // Serving seals mail and binds cursors; administration does neither and runs without a key.
    let needs_key = matches!(
        cli.command,
        None | Some(Command::Serve | Command::CheckConfig)
    );
    let loaded = cli.config.vars().and_then(|vars| {
        let settings = Settings::from_vars(spec.name, spec.default_port, &vars)?;
        checks::check_service(&settings, &vars)?;
        if needs_key && let KeySource::Missing(why) = &settings.secret_key {
            return Err(ConfigError::new("SECRET_KEY", why.clone()));
        }
        Ok((vars, settings))
    });
    let (vars, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}: configuration error: {e}", spec.name);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::service::init_logging(settings.log_format);
    let name = spec.name;
    let command = cli.command.unwrap_or(Command::Serve);
    // A service's failure belongs in its log; an operator command's only on the terminal.
    let serving = matches!(command, Command::Serve);
    let result = actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Serve => crate::service::serve(spec, settings, vars, Clock::system(), engine)
                .await
                .map_err(|e| e.to_string()),
            Command::Migrate => {
                let db = crate::service::open(&spec, &settings, &Clock::system())
                    .await
                    .map_err(|e| e.to_string())?;
                db.close().await;
                println!("migrations applied");
                Ok(())
            }
            Command::CheckConfig => check_config(&settings, vars, engine).await,
            Command::Backup { path } => {
                if !settings.database_url.is_sqlite() {
                    return Err(AdminError::BackupNeedsPgDump.to_string());
                }
                let (admin, engine) = admin_and_engine(&spec, &settings, vars, engine).await?;
                let write =
                    Box::pin(async { admin.backup(&path).await.map_err(|e| e.to_string()) });
                engine.backup(DatabaseCopy::new(&path, write)).await?;
                println!("backup written to {}", path.display());
                Ok(())
            }
            Command::Users(command) => {
                let settle = settings.settle_after_change();
                let admin = admin(&spec, &settings, vars, engine).await?;
                let changed = users(&admin, command).await?;
                if changed {
                    tokio::time::sleep(settle).await;
                }
                Ok(())
            }
            Command::Sessions(SessionsCommand::Revoke { email }) => {
                let settle = settings.settle_after_change();
                let admin = admin(&spec, &settings, vars, engine).await?;
                let n = admin
                    .revoke_sessions(&email)
                    .await
                    .map_err(|e| e.to_string())?;
                if n > 0 {
                    tokio::time::sleep(settle).await;
                }
                println!("revoked {n} session(s) of {}", email.trim());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if serving {
                tracing::error!("{message}");
            }
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Validates what `Settings` cannot see alone (the app's own variables, by building its engine
/// on a scratch database) and prints the settings with secrets masked.
async fn check_config(
    settings: &Settings,
    vars: Vars,
    engine: EngineBuilder,
) -> Result<(), String> {
    let cache_refresh = settings.session_cache_refresh;
    let scratch = Db::connect("sqlite::memory:")
        .await
        .map_err(|e| e.to_string())?;
    engine
        .build(EngineContext {
            db: scratch.clone(),
            clock: Clock::system(),
            vars,
            keys: crate::secret_key::Keyring::ephemeral(),
        })
        .map_err(|e| format!("configuration error: {e}"))?;
    scratch.close().await;
    let auth = &settings.auth;
    println!("DATABASE_URL={}", settings.database_url);
    println!("BIND={}", settings.bind);
    println!(
        "PUBLIC_URL={}",
        crate::web_origin::origin_of(&auth.public_url)
    );
    println!("ALLOWED_ORIGINS={}", auth.allowed_origins.join(","));
    println!("COOKIE_SECURE={}", auth.cookie_secure);
    let transport = match &auth.mail.transport {
        crate::mail::TransportConfig::Log => "log".to_owned(),
        crate::mail::TransportConfig::File(dir) => format!("file:{}", dir.display()),
        crate::mail::TransportConfig::Smtp(url) => crate::db::mask_url_password(url),
    };
    println!("MAIL_TRANSPORT={transport}");
    let secret_key = match &settings.secret_key {
        KeySource::Given { file: None, .. } => "***".to_owned(),
        KeySource::Given {
            file: Some(path), ..
        } => format!("*** (read from {})", path.display()),
        // `symlink_metadata`: a link to nowhere is there, and `serve` would fail on it.
        KeySource::BesideDatabase { path, .. } if path.symlink_metadata().is_ok() => {
            // What `serve` would read: a damaged file fails here too.
            settings
                .secret_key
                .load()
                .map_err(|e| format!("configuration error: {e}"))?;
            format!("(read from {})", path.display())
        }
        KeySource::BesideDatabase { path, .. } => {
            format!("(generated into {} at the first start)", path.display())
        }
        KeySource::Ephemeral => "(a new key at every start: the database is in memory)".to_owned(),
        KeySource::Missing(_) => "(missing)".to_owned(),
    };
    println!("SECRET_KEY={secret_key}");
    println!("PASSWORD_MIN_LENGTH={}", auth.password_policy.min_chars);
    println!("SESSION_IDLE={}s", auth.session_idle.as_secs());
    println!("SESSION_MAX_AGE={}s", auth.session_max_age.as_secs());
    println!("SESSION_CACHE_REFRESH={}ms", cache_refresh.as_millis());
    let backend = match settings.database_url.is_sqlite() {
        true => crate::db::Backend::Sqlite,
        false => crate::db::Backend::Postgres,
    };
    let store = match auth.rate_limits.store(backend) {
        crate::rate_limit::RateLimitStore::Memory => "memory",
        crate::rate_limit::RateLimitStore::Database => "database",
    };
    println!("RATE_LIMIT_STORE={store}");
    let log_format = match settings.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    println!("LOG_FORMAT={log_format}");
    for exposed in checks::exposed_files(settings) {
        eprintln!("warning: {}", checks::exposure_warning(&exposed));
    }
    println!("configuration is valid");
    Ok(())
}

/// Runs a `users` command; `true` when it changed an account.
async fn users(admin: &Admin, command: UsersCommand) -> Result<bool, String> {
    match command {
        UsersCommand::List { json } => {
            let accounts = admin.list().await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", to_json(&accounts));
            } else {
                println!(
                    "{:<40} {:<8} {:<24} {:>8}  ID",
                    "EMAIL", "VERIFIED", "CREATED", "SESSIONS"
                );
                for a in &accounts {
                    println!(
                        "{:<40} {:<8} {:<24} {:>8}  {}",
                        a.user.email,
                        if a.user.email_verified { "yes" } else { "no" },
                        a.user.created_at,
                        a.sessions.len(),
                        a.user.id
                    );
                }
            }
        }
        UsersCommand::Show { email, json } => {
            let account = admin.show(&email).await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", to_json(&account));
            } else {
                let u = &account.user;
                println!("id:         {}", u.id);
                println!("email:      {}", u.email);
                println!(
                    "verified:   {}",
                    if u.email_verified { "yes" } else { "no" }
                );
                println!("created_at: {}", u.created_at);
                println!("sessions:   {}", account.sessions.len());
                for s in &account.sessions {
                    println!(
                        "  {}  created {}  last seen {}  expires {}  {}",
                        s.id,
                        s.created_at,
                        s.last_seen_at,
                        s.expires_at,
                        s.device_name.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        UsersCommand::Verify { email } => match admin
            .verify_email(&email)
            .await
            .map_err(|e| e.to_string())?
        {
            Verification::Verified => {
                println!("{} is now verified", email.trim());
                return Ok(true);
            }
            Verification::AlreadyVerified => println!("{} was verified already", email.trim()),
        },
        UsersCommand::Delete { email, yes } => {
            if !yes {
                let account = admin.show(&email).await.map_err(|e| e.to_string())?;
                return Err(format!(
                    "not deleting {} ({}): deletion cannot be undone; add --yes to confirm",
                    account.user.email, account.user.id
                ));
            }
            let id = admin.delete(&email).await.map_err(|e| e.to_string())?;
            println!("deleted {} ({id}) and all its data", email.trim());
            return Ok(true);
        }
    }
    Ok(false)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Opens the app's existing database for an operator command, without creating or migrating
/// anything, and builds the engine so that account deletion takes the app's data along.
async fn admin(
    spec: &AppSpec,
    settings: &Settings,
    vars: Vars,
    engine: EngineBuilder,
) -> Result<Admin, String> {
    Ok(admin_and_engine(spec, settings, vars, engine).await?.0)
}

/// [`admin`], and the engine it was built with (for its part of a backup).
async fn admin_and_engine(
    spec: &AppSpec,
    settings: &Settings,
    vars: Vars,
    engine: EngineBuilder,
) -> Result<(Admin, Arc<dyn Engine>), String> {
    let db = open_existing(spec, &settings.database_url).await?;
    let clock = Clock::system();
    // Administration seals and binds nothing: no key is read (or generated).
    let engine = engine
        .build(EngineContext {
            db: db.clone(),
            clock: clock.clone(),
            vars,
            keys: crate::secret_key::Keyring::ephemeral(),
        })
        .map_err(|e| format!("configuration error: {e}"))?;
    let hooks: Vec<Arc<dyn AccountDataHook>> = vec![engine.clone()];
    // No operator action sends mail (and the ephemeral key could not seal it for the service):
    // no transport is set up, so no mail directory is created and no SMTP client built. Nor
    // does one hash a password, so one hashing thread will do.
    let mut config = settings.auth.clone();
    config.mail.transport = crate::mail::TransportConfig::Log;
    config.hash_concurrency = 1;
    let auth = Auth::new(db, config, clock, hooks).map_err(|e| e.to_string())?;
    Ok((Admin::new(auth), engine))
}

/// Connects to a database that `APP migrate` (or `serve`) has set up for this app and whose
/// schema is current; refuses anything else rather than create or alter it.
pub async fn open_existing(spec: &AppSpec, database_url: &DatabaseUrl) -> Result<Db, String> {
    if let Some(path) = database_url.sqlite_file()
        && !path.exists()
    {
        return Err(format!(
            "DATABASE_URL: there is no database at {}; check DATABASE_URL, or create it with `{} migrate`",
            path.display(),
            spec.name
        ));
    }
    let db = Db::connect(database_url.expose())
        .await
        .map_err(|e| format!("DATABASE_URL: {e}"))?;
    match owner(&db).await.map_err(|e| e.to_string())? {
        None => {
            return Err(format!(
                "the database has no {} tables yet; create them with `{} migrate`",
                spec.name, spec.name
            ));
        }
        Some(owner) if owner != spec.name => {
            return Err(OwnershipError::OwnedByAnotherApp {
                owner,
                me: spec.name.to_owned(),
            }
            .to_string());
        }
        Some(_) => {}
    }
    for (set, label) in [
        (&Migrations::auth(), "auth-skeleton"),
        (&spec.migrations, spec.name),
    ] {
        let applied = set.applied_version(&db).await.map_err(|e| e.to_string())?;
        if latest_version(set, &db) > applied.unwrap_or(0) {
            return Err(format!(
                "the database's {label} schema is older than this binary; apply the pending \
                 migrations with `{} migrate` first",
                spec.name
            ));
        }
    }
    Ok(db)
}

fn latest_version(set: &Migrations, db: &Db) -> i64 {
    let migrator = match db {
        Db::Sqlite(_) => &set.sqlite,
        Db::Postgres(_) => &set.postgres,
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_environment_and_the_file() {
        let args = ConfigArgs {
            bind: Some("127.0.0.1:9999".into()),
            set: vec![("ROWS_QUOTA".into(), "5".into())],
            ..ConfigArgs::default()
        };
        let vars = args.vars().unwrap();
        assert_eq!(vars.get("BIND").as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(vars.get("ROWS_QUOTA").as_deref(), Some("5"));
    }

    #[test]
    fn assignments_need_a_name_and_an_equals_sign() {
        assert_eq!(
            parse_assignment("RATE_LIMIT_LOGIN_IP=5/minute"),
            Ok(("RATE_LIMIT_LOGIN_IP".into(), "5/minute".into()))
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("lower=1").is_err());
        assert!(parse_assignment("=1").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
