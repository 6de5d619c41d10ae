//! Tokens sent by mail: email verification, password reset and email change.
//!
//! A token is 256 random bits from the OS CSPRNG, base64url-encoded; only its SHA-256 is stored,
//! with its purpose, its user, the address it was mailed to and its expiry. Spending it is a
//! single `DELETE ... RETURNING`, so of two concurrent redemptions exactly one gets the row.

use sqlx::FromRow;

use crate::db::{Db, Tx};
use crate::token::{hash_secret, random_token_string};
use crate::{execute_db, execute_tx, read_db, with_tx};

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
    /// it was mailed under (see [`crate::accounts::store::move_security_stamp`]).
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

/// Whom a redeemed token belongs to.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct Redeemed {
    /// The user it was issued to.
    pub user_id: String,
    /// The address it was mailed to.
    pub email: String,
    /// The account's security stamp when the token was mailed, for purposes bound to it.
    pub security_stamp: Option<i64>,
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
    user_id: &str,
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
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_mailed_tokens
                 (token_hash, purpose, user_id, email, security_stamp, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.hash)
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(email)
        .bind(stamp)
        .bind(now)
        .bind(expires_at)
    )?;
    Ok(())
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
) -> Result<Option<Redeemed>, sqlx::Error> {
    let Some(hash) = presented_hash(token) else {
        return Ok(None);
    };
    with_tx!(tx, |conn| {
        sqlx::query_as::<_, Redeemed>(
            "DELETE FROM auth_mailed_tokens
             WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3
               AND (security_stamp IS NULL OR security_stamp =
                    (SELECT u.security_stamp FROM auth_users u WHERE u.id = user_id))
             RETURNING user_id, email, security_stamp",
        )
        .bind(&hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(conn)
        .await
    })
}

/// Looks a live token up without spending it.
pub async fn peek(
    db: &Db,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<Option<Redeemed>, sqlx::Error> {
    let Some(hash) = presented_hash(token) else {
        return Ok(None);
    };
    read_db!(db, |pool| {
        sqlx::query_as::<_, Redeemed>(
            "SELECT user_id, email, security_stamp FROM auth_mailed_tokens
             WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3
               AND (security_stamp IS NULL OR security_stamp =
                    (SELECT u.security_stamp FROM auth_users u WHERE u.id = user_id))",
        )
        .bind(&hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// Deletes every pending token of `purpose` for a user, inside `tx`.
pub async fn revoke_all(tx: &mut Tx, user_id: &str, purpose: Purpose) -> Result<u64, sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_mailed_tokens WHERE user_id = $1 AND purpose = $2")
            .bind(user_id)
            .bind(purpose.as_str())
    )
}

/// Deletes expired tokens; returns how many.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    execute_db!(
        db,
        sqlx::query("DELETE FROM auth_mailed_tokens WHERE expires_at <= $1").bind(now)
    )
}
