//! Tokens sent by mail: email verification, password reset and email change.
//!
//! A token is 256 random bits from the OS CSPRNG, base64url-encoded; only its SHA-256 is stored,
//! with its purpose, its user, the address it was mailed to and its expiry (the statements are
//! in [`crate::store`]). Spending it is a single `DELETE ... RETURNING`, so of two concurrent
//! redemptions exactly one gets the row.

use crate::accounts::UserId;
use crate::db::{Db, Tx};
use crate::store::{self, MailedTokenOwner};
use crate::token::{hash_secret, random_token_string};

const TOKEN_BYTES: usize = 32;
/// Length of a token's base64url form.
const TOKEN_CHARS: usize = 43;

/// What a mailed token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proving an account's address.
    VerifyEmail,
    /// Setting a new password without the old one.
    ResetPassword,
    /// Moving an account to a new address.
    ChangeEmail,
}

impl Purpose {
    /// Whether a token of this purpose works only while the account's security stamp is the one
    /// it was mailed under (see [`crate::store::move_security_stamp`]).
    pub fn bound_to_security_stamp(self) -> bool {
        matches!(self, Purpose::ChangeEmail)
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }
}

/// A new token: the string for the link and the hash to store.
#[derive(Debug)]
pub struct NewMailedToken {
    /// The token, for the link; never stored.
    pub token: String,
    hash: Vec<u8>,
}

impl NewMailedToken {
    /// Mints a token.
    pub fn generate() -> Self {
        let token = random_token_string(TOKEN_BYTES);
        let hash = hash_secret(token.as_bytes());
        Self { token, hash }
    }
}

/// Stores a token for `user_id` mailed to `email`, valid until `expires_at`, inside `tx`.
///
/// `stamp` is the account's security stamp as read *before* the request was authorised (for a
/// purpose [bound to it](Purpose::bound_to_security_stamp)): a credential event that commits in
/// between then leaves the token dead, never alive under the new stamp.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    token: &NewMailedToken,
    purpose: Purpose,
    user_id: &UserId,
    email: &str,
    stamp: Option<i64>,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let stamp = if purpose.bound_to_security_stamp() {
        // A bound token without a stamp would never work; 0 is the stamp of a new account.
        Some(stamp.unwrap_or(0))
    } else {
        None
    };
    store::insert_mailed_token(
        tx,
        &token.hash,
        purpose.as_str(),
        user_id,
        email,
        stamp,
        now,
        expires_at,
    )
    .await
}

/// Whether `token` has the shape of a token of ours (43 base64url characters).
///
/// Redemption routes ask this before they begin a transaction: a flood of made-up tokens must
/// not queue for the database's write lock ahead of real writes.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored hash of a presented token, or `None` if it cannot be one of ours.
fn presented_hash(token: &str) -> Option<Vec<u8>> {
    is_well_formed(token).then(|| hash_secret(token.as_bytes()))
}

/// Spends a live token inside `tx`: deletes it and says whose it was. `None` for an unknown,
/// expired, already spent or wrong-purpose token, and for one bound to a security stamp that
/// has moved since it was mailed.
pub async fn spend(
    tx: &mut Tx,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<Option<MailedTokenOwner>, sqlx::Error> {
    let Some(hash) = presented_hash(token) else {
        return Ok(None);
    };
    store::spend_mailed_token(tx, &hash, purpose.as_str(), now).await
}

/// Looks a live token up without spending it.
pub async fn peek(
    db: &Db,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<Option<MailedTokenOwner>, sqlx::Error> {
    let Some(hash) = presented_hash(token) else {
        return Ok(None);
    };
    store::peek_mailed_token(db, &hash, purpose.as_str(), now).await
}

/// Deletes every pending token of `purpose` for a user, inside `tx`.
pub async fn revoke_all(
    tx: &mut Tx,
    user_id: &UserId,
    purpose: Purpose,
) -> Result<u64, sqlx::Error> {
    store::delete_mailed_tokens(tx, user_id, purpose.as_str()).await
}

/// Deletes expired tokens; returns how many.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    store::purge_mailed_tokens(db, now).await
}
