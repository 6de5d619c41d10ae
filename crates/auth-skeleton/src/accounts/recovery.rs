//! Password reset: a link mailed on request lets a person set a new password without the old.
//!
//! `forgot_password` answers the same whether or not the address has an account: the lookup and
//! the mail work happen in a background task after the answer is decided, so neither the body,
//! the status nor the time of the answer depends on the address.

use super::Auth;
use crate::accounts::AuthError;
use crate::accounts::email::Email;
use crate::accounts::mailed_token::{self, Purpose};
use crate::accounts::password::Password;
use crate::mail::templates::Template;
use crate::rate_limit::Limit;
use crate::store;

impl Auth {
    /// Accepts a reset request for `email`; if an account has that address, a reset link is
    /// mailed to it (the stored address, not the string given) in the background.
    pub async fn forgot_password(&self, email: &str) -> Result<(), AuthError> {
        let email = Email::parse(email).map_err(|e| AuthError::InvalidEmail(e.to_string()))?;
        let Ok(permit) = self.inner.background_mail.clone().try_acquire_owned() else {
            tracing::warn!("password reset request dropped: too many in progress");
            return Ok(());
        };
        let auth = self.clone();
        tokio::task::spawn_local(async move {
            let _permit = permit;
            if let Err(e) = auth.mail_reset_link(&email).await {
                tracing::warn!(error = %e, "password reset mail not enqueued");
            }
        });
        Ok(())
    }

    async fn mail_reset_link(&self, email: &Email) -> Result<(), AuthError> {
        let Some(user) = store::user_by_email(self.db(), email.as_str()).await? else {
            return Ok(());
        };
        let mut tx = self.db().begin().await?;
        self.mail_token(
            &mut tx,
            Purpose::ResetPassword,
            (&user.id, None),
            &user.email,
            |link, valid_for| Template::ResetPassword { link, valid_for },
        )
        .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "password reset requested");
        Ok(())
    }

    /// Sets a new password with a reset token: spends every pending reset token of the user,
    /// marks the address verified (the inbox was proven), revokes every session, and mails a
    /// notice to the account's address.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &Password,
    ) -> Result<(), AuthError> {
        let now = self.now();
        // Look before spending, so a weak new password does not burn the link.
        let redeemed = mailed_token::peek(self.db(), Purpose::ResetPassword, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = store::user_by_id(self.db(), &redeemed.user_id)
            .await?
            .filter(|u| u.email == redeemed.email)
            .ok_or(AuthError::InvalidToken)?;
        let email = Email::parse(&user.email).map_err(AuthError::internal)?;
        self.policy()
            .check(new_password, &email)
            .map_err(AuthError::WeakPassword)?;
        let new_hash = self.inner.hasher.hash(new_password).await?;

        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &user.id).await?;
        // Spending is what decides: of two concurrent resets, one finds the token gone.
        mailed_token::spend(&mut tx, Purpose::ResetPassword, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        store::set_password_hash(&mut tx, &user.id, &new_hash, now).await?;
        store::mark_verified(&mut tx, &user.id, &user.email, now).await?;
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ResetPassword).await?;
        store::delete_sessions_except(&mut tx, &user.id, None).await?;
        self.enqueue_notice(&mut tx, &user.email, Template::PasswordWasReset)
            .await?;
        tx.commit().await?;
        self.sessions_changed();
        self.outbox().notify();
        // Whoever locked the account's login out, its owner is back in.
        self.inner
            .limiter
            .clear_async(Limit::LoginEmail, &user.email)
            .await;
        tracing::info!(user_id = %user.id, "password reset");
        Ok(())
    }
}
