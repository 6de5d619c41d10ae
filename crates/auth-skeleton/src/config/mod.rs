//! Configuration: one typed struct per concern, read from the environment and validated at
//! start, with errors that name the variable.
//!
//! [`AuthConfig`] is what the auth layer needs; [`Settings`] adds what a whole service needs
//! (database, bind address, logs). Apps read their own variables with [`Vars`], which gives
//! them the same parsing and messages.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::db::DatabaseUrl;
use ipnet::IpNet;

use crate::accounts::AuthConfig;
use crate::mail::TransportConfig;
use crate::rate_limit::{Limit, RateLimitConfig};

pub use secret_key::KeySource;

pub(crate) mod checks;
pub(crate) mod file;
mod secret_key;

/// A configuration value that is missing or malformed; names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable.
    pub var: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error about `var`.
    pub fn new(var: &str, message: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

/// Where configuration values come from: layers looked up in order, the first that has a
/// (non-empty) value winning.
///
/// A service stacks command-line flags, the environment, `*_FILE` secrets and the `--config`
/// file (see `config::file`); tests use a single map.
///
/// ```
/// use auth_skeleton::config::Vars;
///
/// let file = Vars::from_pairs([("BIND", "0.0.0.0:80"), ("LOG_FORMAT", "json")]);
/// let vars = Vars::from_pairs([("BIND", "127.0.0.1:9000")]).with_fallback(file);
/// assert_eq!(vars.get("BIND").as_deref(), Some("127.0.0.1:9000"));
/// assert_eq!(vars.get("LOG_FORMAT").as_deref(), Some("json"));
/// ```
#[derive(Debug, Clone)]
pub struct Vars {
    layers: Vec<Layer>,
}

#[derive(Debug, Clone)]
enum Layer {
    Env,
    Map(HashMap<String, String>),
}

impl Default for Vars {
    fn default() -> Self {
        Self::from_env()
    }
}

impl Vars {
    /// The process environment.
    pub fn from_env() -> Self {
        Self {
            layers: vec![Layer::Env],
        }
    }

    /// A fixed set of values (for tests and embedding).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::from_map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// A fixed set of values.
    pub fn from_map(map: HashMap<String, String>) -> Self {
        Self {
            layers: vec![Layer::Map(map)],
        }
    }

    /// These values, then `fallback`'s for the names these do not set.
    pub fn with_fallback(mut self, fallback: Vars) -> Self {
        self.layers.extend(fallback.layers);
        self
    }

    /// The raw value of `name`, if set (an empty value counts as unset).
    pub fn get(&self, name: &str) -> Option<String> {
        self.layers.iter().find_map(|layer| {
            let value = match layer {
                Layer::Map(map) => map.get(name).cloned(),
                Layer::Env => std::env::var(name).ok(),
            };
            value.filter(|v| !v.trim().is_empty())
        })
    }

    /// Every name that some layer sets and that starts with `prefix`, sorted.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .layers
            .iter()
            .flat_map(|layer| -> Vec<String> {
                match layer {
                    Layer::Map(map) => map.keys().cloned().collect(),
                    Layer::Env => std::env::vars_os()
                        .filter_map(|(k, _)| k.into_string().ok())
                        .collect(),
                }
            })
            .filter(|name| name.starts_with(prefix))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `name` parsed with `parse`, or `default` when unset.
    pub fn parse_or<T>(
        &self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw.trim()).map_err(|m| ConfigError::new(name, m)),
        }
    }

    /// A duration such as `30d`, `12h`, `15m` or `90s`.
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse_or(name, default, parse_duration)
    }

    /// A non-negative integer.
    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        self.parse_or(name, default, |s| {
            s.parse()
                .map_err(|_| format!("expected a whole number, got {s:?}"))
        })
    }

    /// `true` or `false`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        self.parse_or(name, default, |s| match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("expected true or false, got {s:?}")),
        })
    }
}

/// Parses a duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d` (`30d`, `15m`,
/// `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let unit_at = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit; write e.g. 30d, 12h, 15m or 90s"))?;
    let (number, unit) = s.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number; write e.g. 30d or 15m"))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("{s:?} has an unknown unit; use ms, s, m, h or d")),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `SESSION_CACHE_REFRESH` (at most 10 s, `0s` turns the cache off): how late a service may
/// learn of a session ended or an account changed by another process, for requests that change
/// nothing, when nothing else tells it. The default is `500ms` on SQLite, where the only other
/// process is the admin CLI, which waits that long before it returns. On PostgreSQL every such
/// change is also announced at commit (`LISTEN/NOTIFY`) and the cache serves only while it hears
/// the announcements, so a change is seen within their delay; the default `10s` there bounds
/// only a connection that died unnoticed. See `docs/adr/0009-session-cache.md` and
/// `docs/adr/0018-several-instances.md`.
pub fn session_cache_refresh(
    vars: &Vars,
    database_url: &DatabaseUrl,
) -> Result<Duration, ConfigError> {
    const MAX: Duration = Duration::from_secs(10);
    let default = if database_url.is_sqlite() {
        Duration::from_millis(500)
    } else {
        MAX
    };
    let refresh = vars.duration_or("SESSION_CACHE_REFRESH", default)?;
    if refresh > MAX {
        return Err(ConfigError::new(
            "SESSION_CACHE_REFRESH",
            "must be at most 10s: it bounds how long another process's revocation goes unseen",
        ));
    }
    Ok(refresh)
}

/// Reading [`AuthConfig`] from the environment (the struct belongs to the account domain).
impl AuthConfig {
    /// Reads the auth variables of the contract; `public_url` is the default for `PUBLIC_URL`.
    pub fn from_vars(
        app_name: &str,
        default_public_url: &str,
        vars: &Vars,
    ) -> Result<Self, ConfigError> {
        let public_url = vars.parse_or("PUBLIC_URL", None, |s| parse_origin(s).map(Some))?;
        let public_url = match public_url {
            Some(u) => u,
            None => {
                parse_origin(default_public_url).map_err(|m| ConfigError::new("PUBLIC_URL", m))?
            }
        };
        let mut config = Self::new(app_name, public_url);
        config.allowed_origins = vars.parse_or("ALLOWED_ORIGINS", Vec::new(), |s| {
            s.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| parse_origin(o).map(|u| crate::web_origin::origin_of(&u)))
                .collect()
        })?;
        config.cookie_secure = vars.bool_or("COOKIE_SECURE", true)?;
        config.require_verified_email = vars.bool_or("REQUIRE_VERIFIED_EMAIL", false)?;
        config.session_idle = vars.duration_or("SESSION_IDLE", config.session_idle)?;
        config.session_max_age = vars.duration_or("SESSION_MAX_AGE", config.session_max_age)?;
        let min = vars.u64_or("PASSWORD_MIN_LENGTH", 8)?;
        if !(1..=crate::accounts::password::MAX_PASSWORD_CHARS as u64).contains(&min) {
            return Err(ConfigError::new(
                "PASSWORD_MIN_LENGTH",
                "must be between 1 and 256 (8 or more is recommended)",
            ));
        }
        config.password_policy.min_chars = min as usize;
        if let Some(t) = vars.parse_or("MAIL_TRANSPORT", None, |s| {
            TransportConfig::parse(s).map(Some)
        })? {
            config.mail.transport = t;
        }
        if let Some(from) = vars.parse_or("MAIL_FROM", None, |s| {
            s.parse().map(Some).map_err(|e| {
                format!("{s:?} is not a mail address ({e}); write e.g. no-reply@example.com")
            })
        })? {
            config.mail.from = from;
        }
        let ttl = &mut config.token_lifetimes;
        ttl.verify_email = vars.duration_or("EMAIL_VERIFY_TTL", ttl.verify_email)?;
        ttl.reset_password = vars.duration_or("PASSWORD_RESET_TTL", ttl.reset_password)?;
        ttl.change_email = vars.duration_or("EMAIL_CHANGE_TTL", ttl.change_email)?;
        config.rate_limits = RateLimitConfig::from_vars(vars)?;
        config.trusted_proxies =
            vars.parse_or("TRUSTED_PROXIES", Vec::new(), parse_trusted_proxies)?;
        if config.session_idle.is_zero() || config.session_max_age.is_zero() {
            return Err(ConfigError::new(
                "SESSION_IDLE",
                "session lifetimes must be longer than zero",
            ));
        }
        Ok(config)
    }
}

/// Parses an `http(s)://host[:port]` URL, refusing paths, queries and fragments.
fn parse_origin(s: &str) -> Result<Url, String> {
    let url = Url::parse(s)
        .map_err(|e| format!("{s:?} is not a URL ({e}); write e.g. https://example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{s:?} must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
        return Err(format!(
            "{s:?} must be an origin only (scheme, host and port), without a path"
        ));
    }
    Ok(url)
}

/// Parses `TRUSTED_PROXIES`: comma-separated IPs and CIDRs.
pub fn parse_trusted_proxies(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{p:?} is neither an IP address nor a CIDR such as 10.0.0.0/8")
                })
        })
        .collect()
}

/// Reading [`RateLimitConfig`] from the environment.
impl RateLimitConfig {
    /// Reads `RATE_LIMIT_<NAME>` for every limit; a `RATE_LIMIT_` variable with an unknown name
    /// is an error that lists the known ones.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        for var in vars.names_with_prefix("RATE_LIMIT_") {
            let name = &var["RATE_LIMIT_".len()..];
            if var == "RATE_LIMIT_STORE" {
                continue;
            }
            if !Limit::ALL.iter().any(|l| l.name() == name) {
                let known: Vec<String> = Limit::ALL
                    .iter()
                    .map(|l| format!("RATE_LIMIT_{l}"))
                    .collect();
                return Err(ConfigError::new(
                    &var,
                    format!(
                        "there is no rate limit named {name:?}; the limits are {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut config = Self::default();
        for limit in Limit::ALL {
            let var = format!("RATE_LIMIT_{}", limit.name());
            if let Some(raw) = vars.get(&var) {
                let rate = crate::rate_limit::Rate::parse(raw.trim())
                    .map_err(|m| ConfigError::new(&var, m))?;
                config.set(limit, rate);
            }
        }
        if let Some(raw) = vars.get("RATE_LIMIT_STORE") {
            let store = crate::rate_limit::RateLimitStore::parse(raw.trim())
                .map_err(|m| ConfigError::new("RATE_LIMIT_STORE", m))?;
            config.set_store(store);
        }
        Ok(config)
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything a service reads at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database_url: DatabaseUrl,
    /// `BIND`.
    pub bind: SocketAddr,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Where the secret key comes from (`SECRET_KEY`, `SECRET_KEY_FILE`, `SECRET_KEY_PREVIOUS`,
    /// or a file beside an SQLite database); loaded by the commands that need it.
    pub secret_key: KeySource,
    /// `SESSION_CACHE_REFRESH` ([`session_cache_refresh`]). Operator commands that end sessions
    /// or change an account wait this long before they return: running services learn of
    /// changes made by another process within it, so once the command is back, the change is in
    /// force everywhere.
    pub session_cache_refresh: Duration,
    /// The files secrets were read from (`DATABASE_URL_FILE`, `MAIL_TRANSPORT_FILE`,
    /// `SECRET_KEY_FILE`, `SECRET_KEY_PREVIOUS_FILE`), so that the ones others can read are
    /// warned about.
    pub secret_files: Vec<std::path::PathBuf>,
    /// The auth layer's part.
    pub auth: AuthConfig,
}

/// How long an operator command waits on PostgreSQL after ending a session or changing an
/// account, for the announcement to reach every instance.
const ANNOUNCEMENT_DELAY: Duration = Duration::from_millis(100);

impl Settings {
    /// How long a command that ended sessions or changed an account waits before it returns,
    /// so that once it is back no running service honours what it ended: the cache's refresh on
    /// SQLite, the announcements' delay on PostgreSQL.
    pub fn settle_after_change(&self) -> Duration {
        match self.database_url.is_sqlite() {
            true => self.session_cache_refresh,
            false => self.session_cache_refresh.min(ANNOUNCEMENT_DELAY),
        }
    }

    /// Reads and validates the contract's variables for the app `app_name`.
    pub fn from_vars(app_name: &str, default_port: u16, vars: &Vars) -> Result<Self, ConfigError> {
        let database_url = vars.parse_or(
            "DATABASE_URL",
            DatabaseUrl::Sqlite(format!("sqlite://data/{app_name}.db")),
            DatabaseUrl::parse,
        )?;
        let default_bind = SocketAddr::from(([127, 0, 0, 1], default_port));
        let bind = vars.parse_or("BIND", default_bind, |s| {
            s.parse().map_err(|_| {
                format!("{s:?} is not an address; write e.g. 127.0.0.1:8080 or 0.0.0.0:0")
            })
        })?;
        let log_format = vars.parse_or("LOG_FORMAT", LogFormat::Text, |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {s:?}")),
        })?;
        let auth = AuthConfig::from_vars(app_name, &format!("http://{bind}"), vars)?;
        let secret_key = KeySource::from_vars(vars, &database_url, &auth.public_url)?;
        let session_cache_refresh = session_cache_refresh(vars, &database_url)?;
        let secret_files = file::SECRET_VARS
            .iter()
            .filter_map(|name| vars.get(&format!("{name}{}", file::FILE_SUFFIX)))
            .map(std::path::PathBuf::from)
            .collect();
        Ok(Self {
            database_url,
            bind,
            log_format,
            secret_key,
            session_cache_refresh,
            secret_files,
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_trusted_proxies() {
        assert_eq!(parse_trusted_proxies("").unwrap(), vec![]);
        assert_eq!(parse_trusted_proxies("::1, 10.0.0.0/8").unwrap().len(), 2);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.local").is_err());
    }

    use super::*;
    use crate::web_origin::origin_of;

    #[test]
    fn the_session_cache_is_on_for_both_backends_unless_turned_off() {
        let none = Vars::from_pairs([]);
        let sqlite = &DatabaseUrl::parse("sqlite://data/app.db").unwrap();
        let postgres = &DatabaseUrl::parse("postgres://app@db/app").unwrap();
        assert_eq!(
            session_cache_refresh(&none, sqlite).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            session_cache_refresh(&none, postgres).unwrap(),
            Duration::from_secs(10),
            "announcements keep it current; the refresh bounds a silent connection"
        );
        let set = Vars::from_pairs([("SESSION_CACHE_REFRESH", "250ms")]);
        assert_eq!(
            session_cache_refresh(&set, postgres).unwrap(),
            Duration::from_millis(250)
        );
        let off = Vars::from_pairs([("SESSION_CACHE_REFRESH", "0s")]);
        assert_eq!(session_cache_refresh(&off, sqlite).unwrap(), Duration::ZERO);
        let long = Vars::from_pairs([("SESSION_CACHE_REFRESH", "11s")]);
        assert!(session_cache_refresh(&long, sqlite).is_err());
    }

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "30", "d", "3w", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = Settings::from_vars("app-rows", 8080, &Vars::from_pairs([])).unwrap();
        assert_eq!(s.database_url.expose(), "sqlite://data/app-rows.db");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(origin_of(&s.auth.public_url), "http://127.0.0.1:8080");
        assert!(s.auth.cookie_secure);
        assert_eq!(s.auth.session_idle, Duration::from_secs(30 * 86_400));
        assert_eq!(s.auth.session_max_age, Duration::from_secs(90 * 86_400));
        assert_eq!(s.auth.password_policy.min_chars, 8);
    }

    #[test]
    fn printed_settings_never_show_the_database_password() {
        let vars = Vars::from_pairs([("DATABASE_URL", "postgres://app:s3cret@db.internal/rows")]);
        let s = Settings::from_vars("app-rows", 8080, &vars).unwrap();
        assert!(!s.database_url.is_sqlite());
        assert_eq!(
            s.database_url.expose(),
            "postgres://app:s3cret@db.internal/rows"
        );
        assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");
        assert!(s.database_url.to_string().contains("app:***@"));
    }

    #[test]
    fn a_malformed_value_names_its_variable() {
        for (var, value) in [
            ("SESSION_IDLE", "soon"),
            ("BIND", "localhost"),
            ("PUBLIC_URL", "example.com"),
            ("PUBLIC_URL", "https://example.com/app"),
            ("COOKIE_SECURE", "maybe"),
            ("ALLOWED_ORIGINS", "https://a.example, nope"),
            ("PASSWORD_MIN_LENGTH", "0"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
        ] {
            let err = Settings::from_vars("app-rows", 8080, &Vars::from_pairs([(var, value)]))
                .unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn allowed_origins_are_public_url_plus_the_list() {
        let vars = Vars::from_pairs([
            ("PUBLIC_URL", "https://play.example.com"),
            (
                "ALLOWED_ORIGINS",
                "https://web.example.com, http://localhost:3000",
            ),
        ]);
        let c = AuthConfig::from_vars("app-rows", "http://127.0.0.1:8080", &vars).unwrap();
        assert!(c.is_allowed_origin("https://play.example.com"));
        assert!(c.is_allowed_origin("https://web.example.com"));
        assert!(c.is_allowed_origin("http://localhost:3000"));
        assert!(!c.is_allowed_origin("https://evil.example.com"));
        assert!(!c.is_allowed_origin("null"));
    }
}
