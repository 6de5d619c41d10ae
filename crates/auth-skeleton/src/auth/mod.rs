//! The account and session services: plain async functions over the store, the hasher, the
//! mail outbox and the clock, with no HTTP types, so they can be called from routes, the CLI or
//! tests alike.
//!
//! Sign-up, login and sessions are here; the flows that go through a mailed link have a module
//! each.

mod email_change;
mod recovery;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::{AuthConfig, origin_of};
use crate::db::{Db, Tx};
use crate::email::Email;
use crate::error::ApiError;
use crate::hooks::AccountDataHook;
use crate::mail::Transport;
use crate::mail::outbox::{self, NOTICE_LIFETIME, Outbox};
use crate::mail::templates::Template;
use crate::mailed_token::{self, Purpose};
use crate::model::{Session, User};
use crate::password::{Hasher, PasswordPolicy, Verified};
use crate::rate_limit::{InMemoryRateLimiter, Limit, RateLimiter};
use crate::store::{self, InsertUserError, SessionRow, UserRow};
use crate::token::{NewSessionToken, PresentedToken, new_id};

/// `last_seen_at` is written at most this often per session.
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
    Hash(#[from] crate::password::HashError),
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
        );
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                hasher,
                clock,
                data_hooks,
                outbox,
                background_mail: Arc::new(Semaphore::new(MAX_BACKGROUND_MAIL_TASKS)),
                limiter: Arc::new(InMemoryRateLimiter::new(config_limits)),
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

    /// Counts an attempt of `limit` for `key`: `429 rate_limited` with `Retry-After` when over.
    pub fn check_limit(&self, limit: Limit, key: &str) -> Result<(), ApiError> {
        self.inner.limiter.check(limit, key).map_err(|retry| {
            tracing::info!(limit = %limit, "rate limited");
            crate::metrics::record_rate_limited(limit.name());
            ApiError::RateLimited {
                retry_after_secs: retry.secs(),
            }
        })
    }

    /// Drops rate-limit state that no longer limits anything; run periodically.
    pub fn prune_rate_limits(&self) {
        self.inner.limiter.prune();
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
    ) -> Result<(), ApiError> {
        let rendered = template.render(&self.inner.config.app_name);
        outbox::enqueue(tx, to, &rendered, self.now(), discard_after).await?;
        Ok(())
    }

    /// Writes a notice (a message without a link) for `to` inside `tx`.
    async fn enqueue_notice(
        &self,
        tx: &mut Tx,
        to: &str,
        template: Template<'_>,
    ) -> Result<(), ApiError> {
        let discard_after = self.now() + NOTICE_LIFETIME.as_millis() as i64;
        self.enqueue_mail(tx, to, template, discard_after).await
    }

    /// Mints a mailed token for `user_id` at `email`, stores its hash and enqueues the message
    /// `template(link, valid_for)` to `email`, all inside `tx`.
    async fn mail_token(
        &self,
        tx: &mut Tx,
        purpose: Purpose,
        user_id: &str,
        email: &str,
        template: for<'a> fn(&'a str, &'a str) -> Template<'a>,
    ) -> Result<(), ApiError> {
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
        mailed_token::insert(tx, &token, purpose, user_id, email, now, expires_at).await?;
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
        password: &str,
        device_name: Option<&str>,
    ) -> Result<SignedIn, ApiError> {
        let email = Email::parse(email).map_err(|e| ApiError::InvalidEmail(e.to_string()))?;
        let device_name = check_device_name(device_name)?;
        self.policy()
            .check(password, &email)
            .map_err(ApiError::WeakPassword)?;
        // A taken address is answered before the expensive hash (sign-up reveals it anyway).
        if store::user_by_email(self.db(), email.as_str())
            .await?
            .is_some()
        {
            return Err(ApiError::EmailTaken);
        }
        let password_hash = self
            .inner
            .hasher
            .hash(password)
            .await
            .map_err(ApiError::internal)?;
        let now = self.now();
        let user = UserRow {
            id: new_id(),
            email: email.as_str().to_owned(),
            email_verified: false,
            password_hash,
            created_at: now,
        };
        let mut tx = self.db().begin().await?;
        store::insert_user(&mut tx, &user)
            .await
            .map_err(|e| match e {
                InsertUserError::EmailTaken => ApiError::EmailTaken,
                InsertUserError::Db(e) => e.into(),
            })?;
        let signed_in = self.start_session(&mut tx, &user, device_name, now).await?;
        self.mail_verification(&mut tx, &user.id, &user.email)
            .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "signup");
        Ok(signed_in)
    }

    /// Checks credentials and opens a new session.
    ///
    /// An unknown email and a wrong password give the same error after the same hashing work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<SignedIn, ApiError> {
        if PasswordPolicy::is_overlong(password) {
            return Err(ApiError::InvalidCredentials);
        }
        let device_name = check_device_name(device_name)?;
        let user = match Email::parse(email) {
            Ok(email) => store::user_by_email(self.db(), email.as_str()).await?,
            Err(_) => None,
        };
        let verified = self
            .inner
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await
            .map_err(ApiError::internal)?;
        let (user, needs_rehash) = match (user, verified) {
            (Some(user), Verified::Yes { needs_rehash }) => (user, needs_rehash),
            _ => {
                tracing::info!("login failed");
                crate::metrics::record_login(crate::metrics::LoginOutcome::Failure);
                return Err(ApiError::InvalidCredentials);
            }
        };
        let now = self.now();
        if needs_rehash {
            self.rehash(&user, password, now).await;
        }
        let mut tx = self.db().begin().await?;
        let signed_in = self.start_session(&mut tx, &user, device_name, now).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "login");
        crate::metrics::record_login(crate::metrics::LoginOutcome::Success);
        Ok(signed_in)
    }

    /// Upgrades a hash made with weaker parameters; a failure only postpones it to the next login.
    async fn rehash(&self, user: &UserRow, password: &str, now: i64) {
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
        now: i64,
    ) -> Result<SignedIn, ApiError> {
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
        })
    }

    /// Resolves a presented session token; anything but a live session is `Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, ApiError> {
        let presented = PresentedToken::parse(token).ok_or(ApiError::Unauthenticated)?;
        let found = store::session_with_user(self.db(), &presented.id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if !presented.matches(&found.session.secret_hash) {
            return Err(ApiError::Unauthenticated);
        }
        let now = self.now();
        let mut session = found.session;
        if now >= session.expires_at || now >= session.last_seen_at.saturating_add(self.idle_ms()) {
            return Err(ApiError::Unauthenticated);
        }
        let touch_before = now - TOUCH_INTERVAL.as_millis() as i64;
        if session.last_seen_at <= touch_before {
            store::touch_session(self.db(), &session.id, now, touch_before).await?;
            session.last_seen_at = now;
        }
        let user = User {
            id: session.user_id.clone(),
            email: found.email,
            email_verified: found.email_verified,
            created_at: crate::clock::rfc3339(found.user_created_at),
        };
        Ok(Authenticated {
            user,
            session: Session::from_row(&session, self.idle_ms(), true),
        })
    }

    /// Revokes the caller's own session.
    pub async fn logout(&self, who: &Authenticated) -> Result<(), ApiError> {
        store::delete_session(self.db(), &who.user.id, &who.session.id).await?;
        tracing::info!(user_id = %who.user.id, "logout");
        Ok(())
    }

    /// The caller's live sessions, newest first, the calling one marked `current`.
    pub async fn sessions(&self, who: &Authenticated) -> Result<Vec<Session>, ApiError> {
        let now = self.now();
        let rows = store::live_sessions(self.db(), &who.user.id, now, now - self.idle_ms()).await?;
        Ok(rows
            .iter()
            .map(|r| Session::from_row(r, self.idle_ms(), r.id == who.session.id))
            .collect())
    }

    /// Revokes one of the caller's sessions; another user's session is `NotFound` too.
    ///
    /// Like every credential event, it ends the account's pending email changes.
    pub async fn revoke_session(
        &self,
        who: &Authenticated,
        session_id: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.db().begin().await?;
        if store::revoke_session(&mut tx, &who.user.id, session_id).await? {
            tx.commit().await?;
            tracing::info!(user_id = %who.user.id, "session revoked");
            Ok(())
        } else {
            // Nothing was revoked: the transaction is rolled back.
            Err(ApiError::NotFound("no such session"))
        }
    }

    /// Revokes every session of the caller but the calling one.
    ///
    /// Like every credential event, it ends the account's pending email changes.
    pub async fn revoke_other_sessions(&self, who: &Authenticated) -> Result<(), ApiError> {
        let mut tx = self.db().begin().await?;
        let n = store::delete_sessions_except(&mut tx, &who.user.id, Some(&who.session.id)).await?;
        tx.commit().await?;
        tracing::info!(user_id = %who.user.id, revoked = n, "other sessions revoked");
        Ok(())
    }

    /// Changes the caller's password and revokes every other session.
    ///
    /// Like every credential event, it ends the account's pending email changes.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), ApiError> {
        let email = Email::parse(&who.user.email).map_err(ApiError::internal)?;
        self.policy()
            .check(new_password, &email)
            .map_err(ApiError::WeakPassword)?;
        let user = self.check_password(who, current_password).await?;
        let new_hash = self
            .inner
            .hasher
            .hash(new_password)
            .await
            .map_err(ApiError::internal)?;
        let mut tx = self.db().begin().await?;
        store::set_password_hash(&mut tx, &user.id, &new_hash, self.now()).await?;
        store::delete_sessions_except(&mut tx, &user.id, Some(&who.session.id)).await?;
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ResetPassword).await?;
        self.enqueue_notice(&mut tx, &user.email, Template::PasswordWasChanged)
            .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "password changed");
        Ok(())
    }

    /// Deletes the caller's account, its sessions and (through the hooks) all its app data, in
    /// one transaction.
    pub async fn delete_account(
        &self,
        who: &Authenticated,
        password: &str,
    ) -> Result<(), ApiError> {
        let user = self.check_password(who, password).await?;
        let mut tx = self.db().begin().await?;
        for hook in &self.inner.data_hooks {
            hook.delete_user_data(&mut tx, &user.id).await?;
        }
        store::delete_user(&mut tx, &user.id).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "account deleted");
        Ok(())
    }

    /// Re-checks the signed-in user's password (for sensitive operations).
    async fn check_password(
        &self,
        who: &Authenticated,
        password: &str,
    ) -> Result<UserRow, ApiError> {
        if PasswordPolicy::is_overlong(password) {
            return Err(ApiError::InvalidCredentials);
        }
        let user = store::user_by_id(self.db(), &who.user.id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        match self
            .inner
            .hasher
            .verify(password, Some(&user.password_hash))
            .await
            .map_err(ApiError::internal)?
        {
            Verified::Yes { .. } => Ok(user),
            Verified::No => Err(ApiError::InvalidCredentials),
        }
    }

    /// Deletes expired and idle sessions; run periodically.
    pub async fn purge_dead_sessions(&self) -> Result<u64, ApiError> {
        let now = self.now();
        Ok(store::purge_dead_sessions(self.db(), now, now - self.idle_ms()).await?)
    }

    /// Deletes dead sessions and expired mailed tokens; returns how many rows went.
    pub async fn purge_expired(&self) -> Result<u64, ApiError> {
        let sessions = self.purge_dead_sessions().await?;
        let tokens = mailed_token::purge_expired(self.db(), self.now()).await?;
        Ok(sessions + tokens)
    }
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

fn check_device_name(name: Option<&str>) -> Result<Option<String>, ApiError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(n) if n.chars().count() > MAX_DEVICE_NAME_CHARS || n.chars().any(char::is_control) => {
            Err(ApiError::InvalidRequest(format!(
                "device_name: at most {MAX_DEVICE_NAME_CHARS} characters, no control characters"
            )))
        }
        Some(n) => Ok(Some(n.to_owned())),
    }
}
