//! The account domain: [`Auth`], the account and session services, as plain async functions
//! over the store, the hasher, the mail outbox and the clock. Nothing here knows HTTP or the
//! command line (the dependency rule in `docs/architecture.md`): errors are [`AuthError`], which
//! `http` maps to problem details, and settings are [`AuthConfig`], which `config` reads from
//! the environment.
//!
//! Sign-up, login and sessions are here; the flows that go through a mailed link have a module
//! each; every `auth_*` statement is in [`crate::store`].

pub mod email;
pub mod hooks;
pub mod mailed_token;
pub mod model;
pub mod password;

mod error;
mod settings;
pub use crate::store::UserId;
pub use error::AuthError;
pub use settings::{AuthConfig, TokenLifetimes};

mod device_tokens;
pub use device_tokens::{
    LIFETIME as DEVICE_TOKEN_LIFETIME, MAX_FAILURES as DEVICE_TOKEN_MAX_FAILURES,
    MAX_PER_ACCOUNT as DEVICE_TOKENS_PER_ACCOUNT,
};
mod email_change;
mod operator;
mod recovery;
mod session_cache;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::accounts::email::Email;
use crate::accounts::hooks::AccountDataHook;
use crate::accounts::model::{Session, User};
use crate::accounts::password::{Hasher, Password, PasswordPolicy, Verified};
use crate::changes::ChangeFeed;
use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::mail::Transport;
use crate::mail::outbox::{self, NOTICE_LIFETIME, Outbox};
use crate::mail::templates::Template;
use crate::rate_limit::{
    DatabaseRateLimiter, InMemoryRateLimiter, Limit, RateLimitStore, RateLimiter,
};
use crate::store::{self, InsertUserError, SessionRow, UserRow};
use crate::token::{NewSessionToken, PresentedToken, new_id};
use crate::web_origin::origin_of;
use mailed_token::Purpose;
use session_cache::SessionCache;

fn rate_limited(limit: Limit, retry: crate::rate_limit::RetryAfter) -> AuthError {
    tracing::info!(limit = %limit, "rate limited");
    crate::metrics::record_rate_limited(limit.name());
    AuthError::RateLimited {
        retry_after_secs: retry.secs(),
    }
}

/// `last_seen_at` is written at most this often per session (less when `SESSION_IDLE` is
/// short: see [`Auth::touch_interval_ms`]).
const TOUCH_INTERVAL: Duration = Duration::from_secs(3_600);
/// The longest `device_name` kept.
pub const MAX_DEVICE_NAME_CHARS: usize = 128;
/// At most this many mail-triggering lookups (forgot-password) run in the background at once;
/// past that, requests are answered the same but send nothing (rate limits keep it rare).
const MAX_BACKGROUND_MAIL_TASKS: usize = 64;

/// The services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The dummy password hash could not be made.
    #[error(transparent)]
    Hash(#[from] crate::accounts::password::HashError),
    /// The mail transport could not be set up.
    #[error("{0}")]
    Mail(String),
}

/// The result of a sign-in: who, which session, and the token to hand to the client.
#[derive(Debug)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// The new session (with `current: true`).
    pub session: Session,
    /// The session token, `ID.SECRET`; shown to the client once.
    pub token: String,
    /// The device token to present at this device's next login (see
    /// `docs/adr/0014-device-tokens.md`); `None` when the account already keeps as many as it
    /// may.
    pub device_token: Option<String>,
}

/// A request's verified identity.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The signed-in user.
    pub user: User,
    /// The session the request came with.
    pub session: Session,
}

/// The account and session services of one service.
///
/// Build one at start with [`Auth::new`] and share it (it is cheap to clone).
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: AuthConfig,
    hasher: Hasher,
    clock: Clock,
    data_hooks: Vec<Arc<dyn AccountDataHook>>,
    outbox: Outbox,
    background_mail: Arc<Semaphore>,
    limiter: Arc<dyn RateLimiter>,
    session_cache: Option<SessionCache>,
    changes: ChangeFeed,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("app", &self.inner.config.app_name)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Services over `db` with `config`, reading time from `clock`; `data_hooks` delete an app's
    /// data along with an account.
    pub fn new(
        db: Db,
        config: AuthConfig,
        clock: Clock,
        data_hooks: Vec<Arc<dyn AccountDataHook>>,
    ) -> Result<Self, InitError> {
        let hasher = Hasher::new(config.hash_cost, config.hash_concurrency)?;
        let config_limits = config.rate_limits.clone();
        let transport = Transport::new(&config.mail.transport).map_err(InitError::Mail)?;
        let outbox = Outbox::new(
            db.clone(),
            clock.clone(),
            transport,
            config.mail.from.clone(),
            config.keys.clone(),
        );
        // Counted where the configuration says: by default in the database on PostgreSQL, which
        // several instances may share, and in memory on SQLite.
        let limiter: Arc<dyn RateLimiter> = match config_limits.store(db.backend()) {
            RateLimitStore::Memory => Arc::new(InMemoryRateLimiter::new(config_limits)),
            RateLimitStore::Database => {
                Arc::new(DatabaseRateLimiter::new(db.clone(), config_limits))
            }
        };
        let changes = ChangeFeed::new(db.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                hasher,
                clock,
                data_hooks,
                outbox,
                background_mail: Arc::new(Semaphore::new(MAX_BACKGROUND_MAIL_TASKS)),
                limiter,
                session_cache: None,
                changes,
            }),
        })
    }

    /// Replaces the built-in per-process rate limiter (e.g. with one over a shared store).
    ///
    /// # Panics
    /// When called after the services were cloned (call it right after [`Auth::new`]).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_rate_limiter is called before the services are shared")
            .limiter = limiter;
        self
    }

    /// Lets [`Auth::authenticate_for_reading`] answer from memory, seeing sessions ended and
    /// accounts changed by other processes at most `refresh` late (`Duration::ZERO`: never from
    /// memory). Changes made through these services are seen at once. See
    /// `docs/adr/0009-session-cache.md`.
    ///
    /// # Panics
    /// When called after the services were cloned (call it right after [`Auth::new`]).
    pub fn with_session_cache(mut self, refresh: Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_session_cache is called before the services are shared")
            .session_cache = match (refresh.is_zero(), self.inner.db.backend()) {
            (true, _) => None,
            (false, crate::db::Backend::Sqlite) => Some(SessionCache::new(refresh)),
            // Other instances end sessions too; they announce it (`service::announcements`).
            (false, crate::db::Backend::Postgres) => Some(SessionCache::notified(refresh)),
        };
        self
    }

    /// Records whether announcements of ended sessions are heard now (see
    /// [`Auth::with_session_cache`]); either way the cache starts over.
    pub(crate) fn hearing_announcements(&self, listening: bool) {
        if let Some(cache) = &self.inner.session_cache {
            cache.set_listening(listening);
        }
        // Changes announced while nobody listened went unheard: every long-poll reads again.
        self.inner.changes.wake_all();
    }

    /// Applies an announcement on `auth_skeleton_sessions`: `s:<session id>` ended, the account
    /// `u:<user id>` changed, or `*`, anything may have.
    pub(crate) fn heard_session_announcement(&self, payload: &str) {
        let Some(cache) = &self.inner.session_cache else {
            return;
        };
        match payload.split_once(':') {
            Some(("s", id)) => cache.forget_session(id),
            Some(("u", user_id)) => cache.forget_user(user_id),
            _ => cache.invalidate(),
        }
    }

    /// Counts an attempt of `limit` for `key` in the configured store (shared by every instance
    /// with `RATE_LIMIT_STORE=database`): `429 rate_limited` with `Retry-After` when over.
    pub async fn limit(&self, limit: Limit, key: &str) -> Result<(), AuthError> {
        let verdict = self.inner.limiter.check_async(limit, key).await;
        verdict.map_err(|retry| rate_limited(limit, retry))
    }

    /// Counts an attempt of `limit` for `key` without waiting: with a store in the database,
    /// this counts in this process only.
    #[deprecated(
        since = "0.2.2",
        note = "use `Auth::limit(..).await`, which counts in the configured store"
    )]
    pub fn check_limit(&self, limit: Limit, key: &str) -> Result<(), AuthError> {
        let verdict = self.inner.limiter.check(limit, key);
        verdict.map_err(|retry| rate_limited(limit, retry))
    }

    /// Drops rate-limit state that no longer limits anything; run periodically.
    pub fn prune_rate_limits(&self) {
        self.inner.limiter.prune();
    }

    /// [`Auth::prune_rate_limits`], in the configured store too.
    pub async fn prune_rate_limits_everywhere(&self) {
        self.inner.limiter.prune_async().await;
    }

    /// Wakes long-polls when a user's data changes, through this instance or another
    /// (see [`ChangeFeed`]).
    pub fn changes(&self) -> &ChangeFeed {
        &self.inner.changes
    }

    /// The mail outbox (start its worker with [`Outbox::spawn_worker`]).
    pub fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    /// `{PUBLIC_URL}/{page}?token=T`: links come from configuration, never from a request.
    fn link(&self, page: &str, token: &str) -> String {
        format!(
            "{}/{page}?token={token}",
            origin_of(&self.inner.config.public_url)
        )
    }

    /// Writes `template` for `to` into the outbox inside `tx`; dropped unsent after `discard_after`.
    async fn enqueue_mail(
        &self,
        tx: &mut Tx,
        to: &str,
        template: Template<'_>,
        discard_after: i64,
    ) -> Result<(), AuthError> {
        let rendered = template.render(&self.inner.config.app_name);
        let keys = &self.inner.config.keys;
        outbox::enqueue(tx, keys, to, &rendered, self.now(), discard_after).await?;
        Ok(())
    }

    /// Writes a notice (a message without a link) for `to` inside `tx`.
    async fn enqueue_notice(
        &self,
        tx: &mut Tx,
        to: &str,
        template: Template<'_>,
    ) -> Result<(), AuthError> {
        let discard_after = self.now() + NOTICE_LIFETIME.as_millis() as i64;
        self.enqueue_mail(tx, to, template, discard_after).await
    }

    /// Mints a mailed token for `user_id` at `email`, stores its hash and enqueues the message
    /// `template(link, valid_for)` to `email`, all inside `tx`. `stamp` is the account's security
    /// stamp read before the request was authorised, for purposes bound to it.
    async fn mail_token(
        &self,
        tx: &mut Tx,
        purpose: Purpose,
        (user_id, stamp): (&UserId, Option<i64>),
        email: &str,
        template: for<'a> fn(&'a str, &'a str) -> Template<'a>,
    ) -> Result<(), AuthError> {
        let ttl = match purpose {
            Purpose::VerifyEmail => self.inner.config.token_lifetimes.verify_email,
            Purpose::ResetPassword => self.inner.config.token_lifetimes.reset_password,
            Purpose::ChangeEmail => self.inner.config.token_lifetimes.change_email,
        };
        let page = match purpose {
            Purpose::VerifyEmail => "verify-email",
            Purpose::ResetPassword => "reset-password",
            Purpose::ChangeEmail => "confirm-email",
        };
        let now = self.now();
        let expires_at = now + ttl.as_millis() as i64;
        let token = mailed_token::NewMailedToken::generate();
        mailed_token::insert(tx, &token, purpose, user_id, email, stamp, now, expires_at).await?;
        let link = self.link(page, &token.token);
        let valid_for = describe_duration(ttl);
        self.enqueue_mail(tx, email, template(&link, &valid_for), expires_at)
            .await
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The password hasher.
    pub fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// How often a session's `last_seen_at` may be written: hourly, or every quarter of
    /// `SESSION_IDLE` when that is shorter, so that use always extends a short idle timeout
    /// (with a fixed hour, a 15-minute `SESSION_IDLE` was an absolute lifetime).
    fn touch_interval_ms(&self) -> i64 {
        (TOUCH_INTERVAL.as_millis() as i64).min(self.idle_ms() / 4)
    }

    fn idle_ms(&self) -> i64 {
        self.inner.config.session_idle.as_millis() as i64
    }

    fn policy(&self) -> &PasswordPolicy {
        &self.inner.config.password_policy
    }

    /// Creates an account and signs it in.
    pub async fn signup(
        &self,
        email: &str,
        password: &Password,
        device_name: Option<&str>,
    ) -> Result<SignedIn, AuthError> {
        let email = Email::parse(email).map_err(|e| AuthError::InvalidEmail(e.to_string()))?;
        let device_name = check_device_name(device_name)?;
        self.policy()
            .check(password, &email)
            .map_err(AuthError::WeakPassword)?;
        // A taken address is answered before the expensive hash (sign-up reveals it anyway).
        if store::user_by_email(self.db(), email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self.inner.hasher.hash(password).await?;
        let now = self.now();
        let user = UserRow {
            id: UserId::from(new_id()),
            email: email.as_str().to_owned(),
            email_verified: false,
            password_hash,
            created_at: now,
            security_stamp: 0,
        };
        let mut tx = self.db().begin().await?;
        store::insert_user(&mut tx, &user)
            .await
            .map_err(|e| match e {
                InsertUserError::EmailTaken => AuthError::EmailTaken,
                InsertUserError::Db(e) => e.into(),
            })?;
        let device_token = self.issue_device_token(&mut tx, &user, None, now).await?;
        let signed_in = self
            .start_session(&mut tx, &user, device_name, device_token, now)
            .await?;
        self.mail_verification(&mut tx, &user.id, &user.email)
            .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "signup");
        Ok(signed_in)
    }

    /// Checks credentials and opens a new session.
    ///
    /// A login that presents a live device token of the account (`device_token`) is held to
    /// that token's failure count; any other is counted against the address's
    /// `RATE_LIMIT_LOGIN_EMAIL`. An unknown email and a wrong password give the same error after
    /// the same hashing work.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        device_name: Option<&str>,
        device_token: Option<&str>,
    ) -> Result<SignedIn, AuthError> {
        if PasswordPolicy::is_overlong(password) {
            return Err(AuthError::InvalidCredentials);
        }
        let device_name = check_device_name(device_name)?;
        let user = match Email::parse(email) {
            Ok(email) => store::user_by_email(self.db(), email.as_str()).await?,
            Err(_) => None,
        };
        let device = self.reserve_device(device_token, user.as_ref()).await?;
        if device.is_none() {
            self.limit(Limit::LoginEmail, &email_limit_key(email))
                .await?;
        }
        let verified = match self
            .inner
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await
        {
            Ok(verified) => verified,
            Err(e) => {
                if let Some(device) = &device {
                    self.release_device(device).await;
                }
                return Err(e.into());
            }
        };
        let (user, needs_rehash) = match (user, verified) {
            (Some(user), Verified::Yes { needs_rehash }) => (user, needs_rehash),
            _ => {
                tracing::info!("login failed");
                crate::metrics::record_login(crate::metrics::LoginOutcome::Failure);
                return Err(AuthError::InvalidCredentials);
            }
        };
        let now = self.now();
        if needs_rehash {
            self.rehash(&user, password, now).await;
        }
        let mut tx = self.db().begin().await?;
        let device_token = self.issue_device_token(&mut tx, &user, device, now).await?;
        let signed_in = self
            .start_session(&mut tx, &user, device_name, device_token, now)
            .await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "login");
        crate::metrics::record_login(crate::metrics::LoginOutcome::Success);
        Ok(signed_in)
    }

    /// Upgrades a hash made with weaker parameters; a failure only postpones it to the next login.
    async fn rehash(&self, user: &UserRow, password: &Password, now: i64) {
        match self.inner.hasher.hash(password).await {
            Ok(new_hash) => {
                if let Err(e) = store::replace_password_hash(
                    self.db(),
                    &user.id,
                    &user.password_hash,
                    &new_hash,
                    now,
                )
                .await
                {
                    tracing::warn!(user_id = %user.id, error = %e, "password rehash not saved");
                }
            }
            Err(e) => tracing::warn!(user_id = %user.id, error = %e, "password rehash failed"),
        }
    }

    async fn start_session(
        &self,
        tx: &mut crate::db::Tx,
        user: &UserRow,
        device_name: Option<String>,
        device_token: Option<String>,
        now: i64,
    ) -> Result<SignedIn, AuthError> {
        let token = NewSessionToken::generate();
        let row = SessionRow {
            id: token.id,
            user_id: user.id.clone(),
            secret_hash: token.secret_hash,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.inner.config.session_max_age.as_millis() as i64),
            device_name,
        };
        store::insert_session(tx, &row).await?;
        Ok(SignedIn {
            user: User::from(user),
            session: Session::from_row(&row, self.idle_ms(), true),
            token: token.token,
            device_token,
        })
    }

    /// Resolves a presented session token against the database; anything but a live session is
    /// `Unauthenticated`. Use it for requests that change something.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let presented = PresentedToken::parse(token).ok_or(AuthError::Unauthenticated)?;
        let ticket = self.inner.session_cache.as_ref().map(SessionCache::ticket);
        self.authenticate_in_db(&presented, ticket).await
    }

    /// Like [`Auth::authenticate`], but may answer from the session cache (see
    /// [`Auth::with_session_cache`]): for requests that change nothing, where a session ended by
    /// another process may still be honoured for up to the cache's refresh interval.
    pub async fn authenticate_for_reading(&self, token: &str) -> Result<Authenticated, AuthError> {
        let presented = PresentedToken::parse(token).ok_or(AuthError::Unauthenticated)?;
        let Some(cache) = &self.inner.session_cache else {
            return self.authenticate_in_db(&presented, None).await;
        };
        let ticket = match cache.get(self.db(), &presented.id).await {
            Ok(found) => {
                // Only a hit that needs no write is answered here; an expired-looking or
                // due-for-touch session goes to the database, which has the last word.
                if let Ok(Live { who, touch: false }) = self.check_live(&presented, &found) {
                    crate::metrics::record_session_cache(true);
                    return Ok(who);
                }
                cache.ticket()
            }
            Err(ticket) => ticket,
        };
        crate::metrics::record_session_cache(false);
        self.authenticate_in_db(&presented, Some(ticket)).await
    }

    async fn authenticate_in_db(
        &self,
        presented: &PresentedToken,
        ticket: Option<session_cache::Ticket>,
    ) -> Result<Authenticated, AuthError> {
        let mut found = store::session_with_user(self.db(), &presented.id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let Live { who, touch } = self.check_live(presented, &found)?;
        if touch {
            let now = self.now();
            let touch_before = now - self.touch_interval_ms();
            store::touch_session(self.db(), &found.session.id, now, touch_before).await?;
            found.session.last_seen_at = now;
        }
        if let (Some(cache), Some(ticket)) = (&self.inner.session_cache, ticket) {
            cache.insert(ticket, found);
        }
        Ok(who)
    }

    /// Whether `found` is the live session `presented` names, and whether its `last_seen_at` is
    /// due to be written.
    fn check_live(
        &self,
        presented: &PresentedToken,
        found: &store::SessionWithUser,
    ) -> Result<Live, AuthError> {
        if !presented.matches(&found.session.secret_hash) {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.now();
        let session = &found.session;
        if now >= session.expires_at || now >= session.last_seen_at.saturating_add(self.idle_ms()) {
            return Err(AuthError::Unauthenticated);
        }
        let touch = session.last_seen_at <= now - self.touch_interval_ms();
        let mut shown = session.clone();
        if touch {
            shown.last_seen_at = now;
        }
        let user = User {
            id: session.user_id.clone(),
            email: found.email.clone(),
            email_verified: found.email_verified,
            created_at: crate::clock::rfc3339(found.user_created_at),
        };
        Ok(Live {
            who: Authenticated {
                user,
                session: Session::from_row(&shown, self.idle_ms(), true),
            },
            touch,
        })
    }

    /// Drops every session copy held in memory; called after committing a change that ends a
    /// session or alters an account, before answering.
    fn sessions_changed(&self) {
        if let Some(cache) = &self.inner.session_cache {
            cache.invalidate();
        }
    }

    /// Revokes the caller's own session.
    pub async fn logout(&self, who: &Authenticated) -> Result<(), AuthError> {
        store::delete_session(self.db(), &who.user.id, &who.session.id).await?;
        self.sessions_changed();
        tracing::info!(user_id = %who.user.id, "logout");
        Ok(())
    }

    /// The caller's live sessions, newest first, the calling one marked `current`.
    pub async fn sessions(&self, who: &Authenticated) -> Result<Vec<Session>, AuthError> {
        self.live_sessions(&who.user.id, Some(&who.session.id))
            .await
    }

    /// A user's live sessions, newest first, the one with id `current` (if any) marked so.
    async fn live_sessions(
        &self,
        user_id: &UserId,
        current: Option<&str>,
    ) -> Result<Vec<Session>, AuthError> {
        let now = self.now();
        let rows = store::live_sessions(self.db(), user_id, now, now - self.idle_ms()).await?;
        Ok(rows
            .iter()
            .map(|r| Session::from_row(r, self.idle_ms(), current == Some(r.id.as_str())))
            .collect())
    }

    /// Revokes one of the caller's sessions; another user's session is `NotFound` too.
    pub async fn revoke_session(
        &self,
        who: &Authenticated,
        session_id: &str,
    ) -> Result<(), AuthError> {
        if !crate::token::is_session_id(session_id) {
            return Err(AuthError::NoSuchSession);
        }
        let mut tx = self.db().begin().await?;
        let revoked = store::revoke_session(&mut tx, &who.user.id, session_id).await?;
        tx.commit().await?;
        if revoked {
            self.sessions_changed();
            tracing::info!(user_id = %who.user.id, "session revoked");
            Ok(())
        } else {
            Err(AuthError::NoSuchSession)
        }
    }

    /// Revokes every session of the caller but the calling one.
    pub async fn revoke_other_sessions(&self, who: &Authenticated) -> Result<(), AuthError> {
        let n = self
            .end_sessions(&who.user.id, Some(&who.session.id))
            .await?;
        tracing::info!(user_id = %who.user.id, revoked = n, "other sessions revoked");
        Ok(())
    }

    /// Ends every session of a user except `keep`, as a credential event; returns how many went.
    async fn end_sessions(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64, AuthError> {
        let mut tx = self.db().begin().await?;
        let n = store::delete_sessions_except(&mut tx, user_id, keep).await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(n)
    }

    /// Changes the caller's password and revokes every other session.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current_password: &Password,
        new_password: &Password,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&who.user.email).map_err(AuthError::internal)?;
        self.policy()
            .check(new_password, &email)
            .map_err(AuthError::WeakPassword)?;
        let user = self.check_password(who, current_password).await?;
        let new_hash = self.inner.hasher.hash(new_password).await?;
        let mut tx = self.db().begin().await?;
        store::set_password_hash(&mut tx, &user.id, &new_hash, self.now()).await?;
        store::delete_sessions_except(&mut tx, &user.id, Some(&who.session.id)).await?;
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ResetPassword).await?;
        self.enqueue_notice(&mut tx, &user.email, Template::PasswordWasChanged)
            .await?;
        tx.commit().await?;
        self.sessions_changed();
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "password changed");
        Ok(())
    }

    /// Deletes the caller's account, its sessions and (through the hooks) all its app data, in
    /// one transaction.
    pub async fn delete_account(
        &self,
        who: &Authenticated,
        password: &Password,
    ) -> Result<(), AuthError> {
        let user = self.check_password(who, password).await?;
        self.delete_user(&user.id).await?;
        tracing::info!(user_id = %user.id, "account deleted");
        Ok(())
    }

    /// Re-checks the signed-in user's password (for sensitive operations), within the user's
    /// `RATE_LIMIT_PASSWORD_USER`: every route that re-checks a password comes through here, so
    /// none lets a stolen session guess without limit.
    async fn check_password(
        &self,
        who: &Authenticated,
        password: &Password,
    ) -> Result<UserRow, AuthError> {
        self.limit(Limit::PasswordUser, &who.user.id).await?;
        if PasswordPolicy::is_overlong(password) {
            return Err(AuthError::InvalidCredentials);
        }
        let user = store::user_by_id(self.db(), &who.user.id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        match self
            .inner
            .hasher
            .verify(password, Some(&user.password_hash))
            .await?
        {
            Verified::Yes { .. } => Ok(user),
            Verified::No => Err(AuthError::InvalidCredentials),
        }
    }

    /// Deletes expired and idle sessions; run periodically.
    pub async fn purge_dead_sessions(&self) -> Result<u64, AuthError> {
        let now = self.now();
        Ok(store::purge_dead_sessions(self.db(), now, now - self.idle_ms()).await?)
    }

    /// Deletes dead sessions, expired mailed tokens and spent device tokens; returns how many
    /// rows went.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let sessions = self.purge_dead_sessions().await?;
        let now = self.now();
        let tokens = mailed_token::purge_expired(self.db(), now).await?;
        let devices =
            store::purge_device_tokens(self.db(), now, device_tokens::MAX_FAILURES).await?;
        Ok(sessions + tokens + devices)
    }
}

/// A live session and whether its `last_seen_at` is due to be written.
struct Live {
    who: Authenticated,
    touch: bool,
}

/// "24 hours", "1 hour", "30 minutes": how long a link works, for the reader of the mail.
fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3_600) && secs > 0 {
        (secs / 3_600, "hour")
    } else if secs.is_multiple_of(60) && secs > 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The per-email rate-limit key: the normalised address, or the trimmed lower-cased input when
/// it does not parse (so malformed variants cannot dodge the limit).
pub(crate) fn email_limit_key(email: &str) -> String {
    Email::parse(email).map_or_else(|_| email.trim().to_lowercase(), |e| e.as_str().to_owned())
}

fn check_device_name(name: Option<&str>) -> Result<Option<String>, AuthError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(n) if n.chars().count() > MAX_DEVICE_NAME_CHARS || n.chars().any(char::is_control) => {
            Err(AuthError::InvalidInput(format!(
                "device_name: at most {MAX_DEVICE_NAME_CHARS} characters, no control characters"
            )))
        }
        Some(n) => Ok(Some(n.to_owned())),
    }
}
