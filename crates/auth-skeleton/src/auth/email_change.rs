//! Email change: nothing changes until the new address confirms through a mailed link; the old
//! address is told at once, and again when the change happens.

use super::{Auth, Authenticated};
use crate::db::{Tx, is_unique_violation};
use crate::email::Email;
use crate::error::ApiError;
use crate::mail::templates::Template;
use crate::mailed_token::{self, Purpose};
use crate::model::User;
use crate::{store, with_tx};

impl Auth {
    /// Starts moving the signed-in account to `new_email`: re-checks the password, mails a
    /// confirmation link to the new address and a notice to the current one.
    pub async fn request_email_change(
        &self,
        who: &Authenticated,
        new_email: &str,
        password: &str,
    ) -> Result<(), ApiError> {
        let new_email =
            Email::parse(new_email).map_err(|e| ApiError::InvalidEmail(e.to_string()))?;
        let user = self.check_password(who, password).await?;
        if new_email.as_str() == user.email {
            return Err(ApiError::InvalidEmail(
                "this is already the account's email address".to_owned(),
            ));
        }
        if store::user_by_email(self.db(), new_email.as_str())
            .await?
            .is_some()
        {
            return Err(ApiError::EmailTaken);
        }
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &user.id).await?;
        // A credential event that committed while the password was being checked (a reset, a
        // password change, this session revoked) ended every pending change; a link minted
        // now would outlive it.
        if !store::unchanged_since(&mut tx, &user, &who.session.id).await? {
            return Err(ApiError::Unauthenticated);
        }
        // Only the newest change link works. Reset links stay: a request changes nothing, and
        // a reset is how the owner takes the account back from whoever asked; a confirmed
        // change ends them.
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ChangeEmail).await?;
        self.mail_token(
            &mut tx,
            Purpose::ChangeEmail,
            &user.id,
            new_email.as_str(),
            |link, valid_for| Template::ConfirmEmailChange { link, valid_for },
        )
        .await?;
        self.enqueue_notice(
            &mut tx,
            &user.email,
            Template::EmailChangeRequested {
                new_email: new_email.as_str(),
            },
        )
        .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "email change requested");
        Ok(())
    }

    /// Spends an email-change token: the account takes the address the link was mailed to,
    /// verified. `EmailTaken` if another account took that address meanwhile.
    ///
    /// A completed change is a credential event: every other pending change of the account
    /// ends with it, as do its reset and verification links.
    pub async fn confirm_email_change(&self, token: &str) -> Result<User, ApiError> {
        let now = self.now();
        // Whose it is, to lock the account before spending (see `store::lock_account`).
        let owner = mailed_token::peek(self.db(), Purpose::ChangeEmail, token, now)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &owner.user_id).await?;
        let redeemed = mailed_token::spend(&mut tx, Purpose::ChangeEmail, token, now)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        let user = store::user_by_id(self.db(), &redeemed.user_id)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        set_email(&mut tx, &user.id, &redeemed.email, now).await?;
        store::credential_event(&mut tx, &user.id).await?;
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::VerifyEmail).await?;
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ResetPassword).await?;
        self.enqueue_notice(
            &mut tx,
            &user.email,
            Template::EmailWasChanged {
                new_email: &redeemed.email,
            },
        )
        .await?;
        tx.commit().await?;
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "email changed");
        let user = store::user_by_id(self.db(), &user.id)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        Ok(User::from(&user))
    }
}

async fn set_email(tx: &mut Tx, user_id: &str, email: &str, now: i64) -> Result<(), ApiError> {
    let result = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE auth_users SET email = $2, email_verified = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(user_id)
        .bind(email)
        .bind(true)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    });
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(ApiError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}
