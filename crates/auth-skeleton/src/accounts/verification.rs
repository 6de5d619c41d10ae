//! Email verification: a link mailed at sign-up (and on request) proves the address.

use super::{Auth, Authenticated};
use crate::accounts::AuthError;
use crate::accounts::UserId;
use crate::accounts::mailed_token::{self, Purpose};
use crate::accounts::model::User;
use crate::db::Tx;
use crate::mail::templates::Template;
use crate::store;

impl Auth {
    /// Mails a verification link for `email` to `email`, inside `tx`.
    pub(super) async fn mail_verification(
        &self,
        tx: &mut Tx,
        user_id: &UserId,
        email: &str,
    ) -> Result<(), AuthError> {
        self.mail_token(
            tx,
            Purpose::VerifyEmail,
            (user_id, None),
            email,
            |link, valid_for| Template::VerifyEmail { link, valid_for },
        )
        .await
    }

    /// Sends a fresh verification link to the signed-in user's address.
    pub async fn request_verification(&self, who: &Authenticated) -> Result<(), AuthError> {
        let user = store::user_by_id(self.db(), &who.user.id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if user.email_verified {
            return Err(AuthError::AlreadyVerified);
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
    pub async fn confirm_verification(&self, token: &str) -> Result<User, AuthError> {
        if !mailed_token::is_well_formed(token) {
            return Err(AuthError::InvalidToken);
        }
        let now = self.now();
        // Whose it is, to lock the account before spending (see `store::lock_account`).
        let owner = mailed_token::peek(self.db(), Purpose::VerifyEmail, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &owner.user_id).await?;
        let redeemed = mailed_token::spend(&mut tx, Purpose::VerifyEmail, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let updated =
            store::mark_verified(&mut tx, &redeemed.user_id, &redeemed.email, now).await?;
        if !updated {
            return Err(AuthError::InvalidToken);
        }
        tx.commit().await?;
        self.sessions_changed();
        let user = store::user_by_id(self.db(), &redeemed.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tracing::info!(user_id = %user.id, "email verified");
        Ok(User::from(&user))
    }
}
