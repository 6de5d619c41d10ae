//! Email verification: a link mailed at sign-up (and on request) proves the address.

use super::{Auth, Authenticated};
use crate::db::Tx;
use crate::error::ApiError;
use crate::mail::templates::Template;
use crate::mailed_token::{self, Purpose};
use crate::model::User;
use crate::{store, with_tx};

impl Auth {
    /// Mails a verification link for `email` to `email`, inside `tx`.
    pub(super) async fn mail_verification(
        &self,
        tx: &mut Tx,
        user_id: &str,
        email: &str,
    ) -> Result<(), ApiError> {
        self.mail_token(
            tx,
            Purpose::VerifyEmail,
            user_id,
            email,
            |link, valid_for| Template::VerifyEmail { link, valid_for },
        )
        .await
    }

    /// Sends a fresh verification link to the signed-in user's address.
    pub async fn request_verification(&self, who: &Authenticated) -> Result<(), ApiError> {
        let user = store::user_by_id(self.db(), &who.user.id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if user.email_verified {
            return Err(ApiError::AlreadyVerified);
        }
        let mut tx = self.db().begin().await?;
        self.mail_verification(&mut tx, &user.id, &user.email)
            .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "verification requested");
        Ok(())
    }

    /// Spends a verification token and marks the address it was sent to as verified.
    ///
    /// A token mailed to an address the account no longer has is invalid.
    pub async fn confirm_verification(&self, token: &str) -> Result<User, ApiError> {
        let now = self.now();
        // Whose it is, to lock the account before spending (see `store::lock_account`).
        let owner = mailed_token::peek(self.db(), Purpose::VerifyEmail, token, now)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &owner.user_id).await?;
        let redeemed = mailed_token::spend(&mut tx, Purpose::VerifyEmail, token, now)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        let updated = mark_verified(&mut tx, &redeemed.user_id, &redeemed.email, now).await?;
        if !updated {
            return Err(ApiError::InvalidToken);
        }
        tx.commit().await?;
        let user = store::user_by_id(self.db(), &redeemed.user_id)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        tracing::info!(user_id = %user.id, "email verified");
        Ok(User::from(&user))
    }
}

/// Marks `user_id` verified if its address is still `email`; `false` otherwise.
pub(super) async fn mark_verified(
    tx: &mut Tx,
    user_id: &str,
    email: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let updated = with_tx!(tx, |conn| {
        sqlx::query("UPDATE auth_users SET email_verified = $3, updated_at = $4 WHERE id = $1 AND email = $2")
            .bind(user_id)
            .bind(email)
            .bind(true)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(updated == 1)
}
