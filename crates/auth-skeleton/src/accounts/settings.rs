//! What the account domain needs to know about its service: where session tokens travel, how
//! long sessions and mailed links live, the password rules, limits and keys. `config` reads it
//! from the environment ([`AuthConfig::from_vars`]).

use std::time::Duration;

use url::Url;

use crate::accounts::password::{HashCost, PasswordPolicy};
use crate::mail::MailConfig;
use crate::rate_limit::RateLimitConfig;
use crate::secret_key::Keyring;
use crate::web_origin::origin_of;

/// Where session tokens travel and how long sessions live, plus the password rules.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The app's name (for mail and `/healthz`), e.g. `app-rows`.
    pub app_name: String,
    /// The service's public origin: email links are built from it and it is allowed for CSRF.
    pub public_url: Url,
    /// Further origins allowed to send cookie-authenticated unsafe requests.
    pub allowed_origins: Vec<String>,
    /// Whether the session cookie is `Secure` (and named `__Host-session`).
    pub cookie_secure: bool,
    /// Sessions end after this long without use.
    pub session_idle: Duration,
    /// Sessions end this long after sign-in, used or not.
    pub session_max_age: Duration,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// argon2id cost for new hashes (and the bar below which old ones are rehashed).
    pub hash_cost: HashCost,
    /// How many password hashes may run at once.
    pub hash_concurrency: usize,
    /// Where mail goes and who sends it.
    pub mail: MailConfig,
    /// How long mailed links work.
    pub token_lifetimes: TokenLifetimes,
    /// The rate limits (`RATE_LIMIT_<NAME>`).
    pub rate_limits: RateLimitConfig,
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether an account stores no app data until its address is verified
    /// (`REQUIRE_VERIFIED_EMAIL`): [`crate::http::CurrentUser`] then refuses unverified users
    /// on the app's routes with `403 email_not_verified`.
    pub require_verified_email: bool,
    /// The keys that seal the mail outbox (and that apps use to bind what they hand out). A
    /// random key for this process by default; a service gets them from
    /// `Settings::secret_key` (in `config`) when it starts.
    pub keys: Keyring,
}

/// How long each kind of mailed link works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// Email verification (`EMAIL_VERIFY_TTL`, default 24 hours).
    pub verify_email: Duration,
    /// Password reset (`PASSWORD_RESET_TTL`, default 1 hour).
    pub reset_password: Duration,
    /// Email change (`EMAIL_CHANGE_TTL`, default 1 hour).
    pub change_email: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            verify_email: Duration::from_secs(24 * 3_600),
            reset_password: Duration::from_secs(3_600),
            change_email: Duration::from_secs(3_600),
        }
    }
}

impl AuthConfig {
    /// Defaults for a service reachable at `public_url`.
    pub fn new(app_name: impl Into<String>, public_url: Url) -> Self {
        Self {
            app_name: app_name.into(),
            public_url,
            allowed_origins: Vec::new(),
            cookie_secure: true,
            session_idle: Duration::from_secs(30 * 86_400),
            session_max_age: Duration::from_secs(90 * 86_400),
            password_policy: PasswordPolicy::default(),
            hash_cost: HashCost::MINIMUM,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            mail: MailConfig::default(),
            token_lifetimes: TokenLifetimes::default(),
            rate_limits: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
            require_verified_email: false,
            keys: Keyring::ephemeral(),
        }
    }

    /// The origins allowed for CSRF: `PUBLIC_URL`'s plus `ALLOWED_ORIGINS`.
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        origin == origin_of(&self.public_url) || self.allowed_origins.iter().any(|o| o == origin)
    }

    /// The session cookie's name: `__Host-session`, or `session` when not `Secure`.
    pub fn cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Host-session"
        } else {
            "session"
        }
    }
}
