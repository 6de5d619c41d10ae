//! Operator actions on a service's database: list and inspect accounts, mark an address
//! verified, delete an account with its app data, revoke sessions, and back up the database.
//!
//! These are what `APP users ...`, `APP sessions revoke` and `APP backup` run (see
//! `service::cli`). They act directly on the database, with no password and no HTTP
//! request, so they are for whoever runs the service, never for its clients. The account actions
//! are [`Auth`]'s own (its operator methods, next to the routes' ones): account deletion runs the
//! app's [`AccountDataHook`](crate::accounts::hooks::AccountDataHook)s inside the deletion
//! transaction, exactly as `DELETE /v1/auth/account` does, and revoking sessions is the same
//! credential event as a client's revoke.

use std::path::Path;

use serde::Serialize;

use crate::accounts::email::Email;
use crate::accounts::model::{Session, User};
use crate::accounts::{Auth, AuthError, UserId};
use crate::db::Db;

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
    /// An account operation failed otherwise.
    #[error("{0}")]
    Account(#[source] AuthError),
}

impl From<AuthError> for AdminError {
    /// A database failure stays one, so that the operator sees its message.
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Internal(source) => match source.downcast::<sqlx::Error>() {
                Ok(db) => AdminError::Db(*db),
                Err(source) => AdminError::Account(AuthError::Internal(source)),
            },
            other => AdminError::Account(other),
        }
    }
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

/// Operator actions on one service's database, through its [`Auth`].
///
/// ```no_run
/// # async fn demo(auth: auth_skeleton::Auth) -> Result<(), auth_skeleton::service::admin::AdminError> {
/// use auth_skeleton::service::admin::Admin;
///
/// let admin = Admin::new(auth);
/// for account in admin.list().await? {
///     println!("{} {}", account.user.email, account.sessions.len());
/// }
/// # Ok(()) }
/// ```
pub struct Admin {
    auth: Auth,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("db", &self.auth.db().backend())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Actions through `auth`: its `session_idle` decides which sessions are live, and its
    /// account-data hooks delete the app's data with an account.
    pub fn new(auth: Auth) -> Self {
        Self { auth }
    }

    /// Every account, oldest first, with its live sessions.
    pub async fn list(&self) -> Result<Vec<Account>, AdminError> {
        let users = self.auth.users().await?;
        let mut accounts = Vec::with_capacity(users.len());
        for user in users {
            accounts.push(self.account(user).await?);
        }
        Ok(accounts)
    }

    /// The account with this address (compared after normalisation, as sign-in does).
    pub async fn show(&self, email: &str) -> Result<Account, AdminError> {
        let user = self.find(email).await?;
        self.account(user).await
    }

    /// Marks the account's address verified, as following the mailed link would.
    pub async fn verify_email(&self, email: &str) -> Result<Verification, AdminError> {
        let user = self.find(email).await?;
        if user.email_verified {
            return Ok(Verification::AlreadyVerified);
        }
        // `false` only if the account lost the address since `find`.
        if !self.auth.mark_verified(&user.id, &user.email).await? {
            return Err(AdminError::NoSuchUser(user.email));
        }
        tracing::info!(user_id = %user.id, "email verified by an operator");
        Ok(Verification::Verified)
    }

    /// Deletes the account, its sessions and, through the hooks, all its app data, in one
    /// transaction. Returns the deleted account's id.
    pub async fn delete(&self, email: &str) -> Result<UserId, AdminError> {
        let user = self.find(email).await?;
        self.auth.delete_user(&user.id).await?;
        tracing::info!(user_id = %user.id, "account deleted by an operator");
        Ok(user.id)
    }

    /// Revokes every session of the account (signing it out everywhere); returns how many.
    pub async fn revoke_sessions(&self, email: &str) -> Result<u64, AdminError> {
        let user = self.find(email).await?;
        let n = self.auth.revoke_all_sessions(&user.id).await?;
        tracing::info!(user_id = %user.id, revoked = n, "sessions revoked by an operator");
        Ok(n)
    }

    /// Writes a consistent copy of a SQLite database to `target`, while the service runs.
    ///
    /// SQLite's `VACUUM INTO` reads the database in one transaction, so the copy is a snapshot
    /// even while writes go on, and it comes out compacted. `target` must not exist yet; it is
    /// created with mode `0600` whatever the umask (see `private_files`). A
    /// PostgreSQL database is refused with [`AdminError::BackupNeedsPgDump`].
    pub async fn backup(&self, target: &Path) -> Result<(), AdminError> {
        let Db::Sqlite(sqlite) = self.auth.db() else {
            return Err(AdminError::BackupNeedsPgDump);
        };
        let path = target.display().to_string();
        let refuse = |reason: &str| AdminError::BackupTarget {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let exists = "it exists already; choose a new file name (a backup never overwrites)";
        if target.symlink_metadata().is_ok() {
            return Err(refuse(exists));
        }
        match target.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => return Err(refuse("its directory does not exist")),
            _ => {}
        }
        let target_text = target
            .to_str()
            .ok_or_else(|| refuse("the path is not valid UTF-8"))?;
        // The copy holds every password hash: create it 0600 (whatever the umask) before SQLite
        // writes into it. VACUUM INTO accepts an existing empty file; it would create a new one
        // 0644 minus the umask.
        match crate::private_files::create_file(target) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(refuse(exists)),
            Err(e) => return Err(refuse(&e.to_string())),
        }
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(target_text)
            .execute(&sqlite.reader)
            .await;
        if let Err(e) = copied {
            // The file is the one created above: leave no empty or partial copy behind.
            let _ = std::fs::remove_file(target);
            return Err(refuse(&e.to_string()));
        }
        tracing::info!(target = %path, "backup written");
        Ok(())
    }

    async fn find(&self, email: &str) -> Result<User, AdminError> {
        let normalised =
            Email::parse(email).map_err(|_| AdminError::InvalidEmail(email.to_owned()))?;
        self.auth
            .user_by_email(&normalised)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(normalised.as_str().to_owned()))
    }

    async fn account(&self, user: User) -> Result<Account, AdminError> {
        let sessions = self.auth.user_sessions(&user.id).await?;
        Ok(Account { user, sessions })
    }
}
