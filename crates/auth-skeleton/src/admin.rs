//! Operator actions on a service's database: list and inspect accounts, mark an address
//! verified, delete an account with its app data, revoke sessions, and back up the database.
//!
//! These are what `APP users ...`, `APP sessions revoke` and `APP backup` run (see
//! [`crate::cli`]). They act directly on the database, with no password and no HTTP request, so
//! they are for whoever runs the service, never for its clients. They reuse the same
//! [`crate::store`] statements as the HTTP routes, and account deletion runs the app's
//! [`AccountDataHook`]s inside the deletion transaction, exactly as `DELETE /v1/auth/account`
//! does: the account and all its app data go together, or nothing does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::db::Db;
use crate::email::Email;
use crate::hooks::AccountDataHook;
use crate::model::{Session, User};
use crate::store::{self, UserRow};
use crate::with_db;

/// Why an operator action failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address is not a usable email address.
    #[error("{0:?} is not an email address")]
    InvalidEmail(String),
    /// No account has this address.
    #[error("no account has the email address {0:?}")]
    NoSuchUser(String),
    /// The backup target is unusable.
    #[error("cannot back up to {path}: {reason}")]
    BackupTarget {
        /// The target path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This database is backed up with its own tools.
    #[error(
        "backup makes copies of SQLite databases only; for PostgreSQL use pg_dump, e.g. \
         `pg_dump --format=custom --file=app.dump \"$DATABASE_URL\"` (restore with pg_restore)"
    )]
    BackupNeedsPgDump,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// An account as an operator sees it: the client's view plus how many sessions it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// Its live sessions, newest first.
    pub sessions: Vec<Session>,
}

/// What marking an address verified did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The address is now verified.
    Verified,
    /// It was verified already; nothing changed.
    AlreadyVerified,
}

/// Operator actions on one service's database.
///
/// ```no_run
/// # async fn demo(db: auth_skeleton::db::Db) -> Result<(), auth_skeleton::admin::AdminError> {
/// use std::time::Duration;
/// use auth_skeleton::admin::Admin;
/// use auth_skeleton::clock::Clock;
///
/// let admin = Admin::new(db, Clock::system(), Duration::from_secs(30 * 86_400), Vec::new());
/// for account in admin.list().await? {
///     println!("{} {}", account.user.email, account.sessions.len());
/// }
/// # Ok(()) }
/// ```
pub struct Admin {
    db: Db,
    clock: Clock,
    session_idle: Duration,
    data_hooks: Vec<Arc<dyn AccountDataHook>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("db", &self.db.backend())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Actions on `db`; `session_idle` is the configured `SESSION_IDLE` (it decides which
    /// sessions are live) and `data_hooks` delete the app's data with an account.
    pub fn new(
        db: Db,
        clock: Clock,
        session_idle: Duration,
        data_hooks: Vec<Arc<dyn AccountDataHook>>,
    ) -> Self {
        Self {
            db,
            clock,
            session_idle,
            data_hooks,
        }
    }

    fn idle_ms(&self) -> i64 {
        self.session_idle.as_millis() as i64
    }

    /// Every account, oldest first, with its live sessions.
    pub async fn list(&self) -> Result<Vec<Account>, AdminError> {
        let rows: Vec<UserRow> = with_db!(read self.db, |pool| {
            sqlx::query_as::<_, UserRow>(
                "SELECT id, email, email_verified, password_hash, created_at FROM auth_users
                 ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await
        })?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            accounts.push(self.account(row).await?);
        }
        Ok(accounts)
    }

    /// The account with this address (compared after normalisation, as sign-in does).
    pub async fn show(&self, email: &str) -> Result<Account, AdminError> {
        let row = self.find(email).await?;
        self.account(&row).await
    }

    /// Marks the account's address verified, as following the mailed link would.
    pub async fn verify_email(&self, email: &str) -> Result<Verification, AdminError> {
        let row = self.find(email).await?;
        if row.email_verified {
            return Ok(Verification::AlreadyVerified);
        }
        let now = self.clock.now_ms();
        with_db!(write self.db, |pool| {
            sqlx::query("UPDATE auth_users SET email_verified = $2, updated_at = $3 WHERE id = $1")
                .bind(&row.id)
                .bind(true)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        tracing::info!(user_id = %row.id, "email verified by an operator");
        Ok(Verification::Verified)
    }

    /// Deletes the account, its sessions and, through the hooks, all its app data, in one
    /// transaction. Returns the deleted account's id.
    pub async fn delete(&self, email: &str) -> Result<String, AdminError> {
        let row = self.find(email).await?;
        let mut tx = self.db.begin().await?;
        for hook in &self.data_hooks {
            hook.delete_user_data(&mut tx, &row.id).await?;
        }
        store::delete_user(&mut tx, &row.id).await?;
        tx.commit().await?;
        tracing::info!(user_id = %row.id, "account deleted by an operator");
        Ok(row.id)
    }

    /// Revokes every session of the account (signing it out everywhere) and ends its pending
    /// email changes, as every credential event does; returns how many sessions went.
    pub async fn revoke_sessions(&self, email: &str) -> Result<u64, AdminError> {
        let row = self.find(email).await?;
        let mut tx = self.db.begin().await?;
        let n = store::delete_sessions_except(&mut tx, &row.id, None).await?;
        tx.commit().await?;
        tracing::info!(user_id = %row.id, revoked = n, "sessions revoked by an operator");
        Ok(n)
    }

    /// Writes a consistent copy of a SQLite database to `target`, while the service runs.
    ///
    /// SQLite's `VACUUM INTO` reads the database in one transaction, so the copy is a snapshot
    /// even while writes go on, and it comes out compacted. `target` must not exist yet. A
    /// PostgreSQL database is refused with [`AdminError::BackupNeedsPgDump`].
    pub async fn backup(&self, target: &Path) -> Result<(), AdminError> {
        let Db::Sqlite(sqlite) = &self.db else {
            return Err(AdminError::BackupNeedsPgDump);
        };
        let path = target.display().to_string();
        let refuse = |reason: &str| AdminError::BackupTarget {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if target.exists() {
            return Err(refuse(
                "it exists already; choose a new file name (a backup never overwrites)",
            ));
        }
        match target.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => return Err(refuse("its directory does not exist")),
            _ => {}
        }
        let target_text = target
            .to_str()
            .ok_or_else(|| refuse("the path is not valid UTF-8"))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target_text)
            .execute(&sqlite.reader)
            .await
            .map_err(|e| refuse(&e.to_string()))?;
        tracing::info!(target = %path, "backup written");
        Ok(())
    }

    async fn find(&self, email: &str) -> Result<UserRow, AdminError> {
        let normalised =
            Email::parse(email).map_err(|_| AdminError::InvalidEmail(email.to_owned()))?;
        store::user_by_email(&self.db, normalised.as_str())
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(normalised.as_str().to_owned()))
    }

    async fn account(&self, row: &UserRow) -> Result<Account, AdminError> {
        let now = self.clock.now_ms();
        let sessions = store::live_sessions(&self.db, &row.id, now, now - self.idle_ms()).await?;
        Ok(Account {
            user: User::from(row),
            sessions: sessions
                .iter()
                .map(|s| Session::from_row(s, self.idle_ms(), false))
                .collect(),
        })
    }
}
