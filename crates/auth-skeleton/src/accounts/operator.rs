//! Account operations for whoever runs the service (`APP users ...`, `APP sessions revoke`,
//! through [`crate::service::admin`]): an account is named by its address or id, and no
//! password or session is asked for, so these are never for a service's clients. They run the
//! same code as the clients' routes: deleting an account takes the app's data along through the
//! same hooks, revoking sessions is the same credential event.

use super::Auth;
use crate::accounts::AuthError;
use crate::accounts::UserId;
use crate::accounts::email::Email;
use crate::accounts::model::{Session, User};
use crate::store;

impl Auth {
    /// Every account, oldest first.
    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        let rows = store::all_users(self.db()).await?;
        Ok(rows.iter().map(User::from).collect())
    }

    /// The account with this (normalised) address, if any.
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, AuthError> {
        let row = store::user_by_email(self.db(), email.as_str()).await?;
        Ok(row.as_ref().map(User::from))
    }

    /// A user's live sessions, newest first (none is `current`).
    pub async fn user_sessions(&self, user_id: &UserId) -> Result<Vec<Session>, AuthError> {
        self.live_sessions(user_id, None).await
    }

    /// Marks the account's address verified, as following a mailed verification link would,
    /// provided its address is still `email`; `false` when it is not (or there is no account).
    pub async fn mark_verified(&self, user_id: &UserId, email: &str) -> Result<bool, AuthError> {
        let mut tx = self.db().begin().await?;
        let updated = store::mark_verified(&mut tx, user_id, email, self.now()).await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(updated)
    }

    /// Deletes the account, its sessions and, through the hooks, all its app data, in one
    /// transaction, as [`Auth::delete_account`] does but without the password; `false` when
    /// there was no such account.
    pub async fn delete_user(&self, user_id: &UserId) -> Result<bool, AuthError> {
        // The deletion spans the app's tables (through its hooks) and the library's, in an order
        // the app's writers need not share: PostgreSQL may end it to break a deadlock with a
        // writer of the same account. It did nothing then, and runs again.
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match self.delete_user_once(user_id).await {
                Err(err) if attempt < ATTEMPTS && crate::db::is_retryable_conflict(&err) => {
                    tracing::warn!(%user_id, attempt, error = %err, "account deletion runs again");
                    attempt += 1;
                }
                result => {
                    let deleted = result?;
                    self.sessions_changed();
                    for hook in &self.inner.data_hooks {
                        hook.user_data_deleted(user_id).await;
                    }
                    return Ok(deleted);
                }
            }
        }
    }

    async fn delete_user_once(&self, user_id: &UserId) -> Result<bool, sqlx::Error> {
        let mut tx = self.db().begin().await?;
        for hook in &self.inner.data_hooks {
            hook.delete_user_data(&mut tx, user_id).await?;
        }
        let deleted = store::delete_user(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Revokes every session of the account (signing it out everywhere), a credential event as
    /// [`Auth::revoke_other_sessions`] is; returns how many sessions went.
    pub async fn revoke_all_sessions(&self, user_id: &UserId) -> Result<u64, AuthError> {
        self.end_sessions(user_id, None).await
    }
}
