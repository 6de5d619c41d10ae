//! Email change: nothing changes until the new address confirms through a mailed link; the old
//! address is told at once, and again when the change happens.

use super::{Auth, Authenticated};
use crate::accounts::AuthError;
use crate::accounts::UserId;
use crate::accounts::email::Email;
use crate::accounts::mailed_token::{self, Purpose};
use crate::accounts::model::User;
use crate::accounts::password::Password;
use crate::db::{Tx, is_unique_violation};
use crate::mail::templates::Template;
use crate::store;

impl Auth {
    /// Starts moving the signed-in account to `new_email`: re-checks the password, mails a
    /// confirmation link to the new address and a notice to the current one.
    pub async fn request_email_change(
        &self,
        who: &Authenticated,
        new_email: &str,
        password: &Password,
    ) -> Result<(), AuthError> {
        let new_email =
            Email::parse(new_email).map_err(|e| AuthError::InvalidEmail(e.to_string()))?;
        // Read before the password is checked: a credential event that commits meanwhile
        // leaves this request's link dead.
        let stamp = store::security_stamp(self.db(), &who.user.id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let user = self.check_password(who, password).await?;
        if new_email.as_str() == user.email {
            return Err(AuthError::InvalidEmail(
                "this is already the account's email address".to_owned(),
            ));
        }
        if store::user_by_email(self.db(), new_email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &user.id).await?;
        // Only the newest change link works. Reset links stay: a request changes nothing, and
        // the owner's reset is how they take the account back from whoever asked; a confirmed
        // change ends them.
        mailed_token::revoke_all(&mut tx, &user.id, Purpose::ChangeEmail).await?;
        self.mail_token(
            &mut tx,
            Purpose::ChangeEmail,
            (&user.id, Some(stamp)),
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

    /// Cancels every pending email change of the signed-in account: their links stop working.
    /// Cancelling is a credential event (see [`store::move_security_stamp`]).
    pub async fn cancel_email_change(&self, who: &Authenticated) -> Result<(), AuthError> {
        let mut tx = self.db().begin().await?;
        // Moving the stamp deletes the change links too, after locking the account's row.
        store::move_security_stamp(&mut tx, &who.user.id).await?;
        mailed_token::revoke_all(&mut tx, &who.user.id, Purpose::ChangeEmail).await?;
        tx.commit().await?;
        tracing::info!(user_id = %who.user.id, "pending email change cancelled");
        Ok(())
    }

    /// Spends an email-change token: the account takes the address the link was mailed to,
    /// verified. `EmailTaken` if another account took that address meanwhile.
    pub async fn confirm_email_change(&self, token: &str) -> Result<User, AuthError> {
        if !mailed_token::is_well_formed(token) {
            return Err(AuthError::InvalidToken);
        }
        let now = self.now();
        // Whose it is, to lock the account before spending (see `store::lock_account`).
        let owner = mailed_token::peek(self.db(), Purpose::ChangeEmail, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let mut tx = self.db().begin().await?;
        store::lock_account(&mut tx, &owner.user_id).await?;
        let redeemed = mailed_token::spend(&mut tx, Purpose::ChangeEmail, token, now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = store::user_by_id(self.db(), &redeemed.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        // The stamp is compared again under the row's lock: a credential event that committed
        // after the token was spent still wins.
        let stamp = redeemed.security_stamp.ok_or(AuthError::InvalidToken)?;
        if !set_email(&mut tx, &user.id, &redeemed.email, stamp, now).await? {
            return Err(AuthError::InvalidToken);
        }
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
        self.sessions_changed();
        self.outbox().notify();
        tracing::info!(user_id = %user.id, "email changed");
        let user = store::user_by_id(self.db(), &user.id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok(User::from(&user))
    }
}

/// [`store::set_email`], with another account's taking the address meanwhile as `EmailTaken`.
async fn set_email(
    tx: &mut Tx,
    user_id: &UserId,
    email: &str,
    stamp: i64,
    now: i64,
) -> Result<bool, AuthError> {
    match store::set_email(tx, user_id, email, stamp, now).await {
        Ok(moved) => Ok(moved),
        Err(e) if is_unique_violation(&e) => Err(AuthError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}
