//! Tokens sent by mail (`auth_mailed_tokens`): only a token's SHA-256 is stored, with its
//! purpose, its user, the address it was mailed to, its expiry and, for a purpose bound to it,
//! the account's security stamp when it was mailed.

use sqlx::FromRow;

use crate::db::{Db, Tx};
use crate::store::UserId;
use crate::{execute_db, execute_tx, read_db, with_tx};

/// Whom a mailed token belongs to.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct MailedTokenOwner {
    /// The user it was issued to.
    pub user_id: UserId,
    /// The address it was mailed to.
    pub email: String,
    /// The account's security stamp when the token was mailed, for purposes bound to it.
    pub security_stamp: Option<i64>,
}

/// Stores a token's hash for `user_id`, mailed to `email` for `purpose`, valid until
/// `expires_at`, inside `tx`. With a `security_stamp` the token works only while the account's
/// stamp is that one.
#[allow(clippy::too_many_arguments)]
pub async fn insert_mailed_token(
    tx: &mut Tx,
    token_hash: &[u8],
    purpose: &str,
    user_id: &UserId,
    email: &str,
    security_stamp: Option<i64>,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_mailed_tokens
                 (token_hash, purpose, user_id, email, security_stamp, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(user_id)
        .bind(email)
        .bind(security_stamp)
        .bind(now)
        .bind(expires_at)
    )?;
    Ok(())
}

/// Spends a live token inside `tx`: deletes it and says whose it was. `None` for an unknown,
/// expired, already spent or wrong-purpose token, and for one bound to a security stamp that
/// has moved since it was mailed.
pub async fn spend_mailed_token(
    tx: &mut Tx,
    token_hash: &[u8],
    purpose: &str,
    now: i64,
) -> Result<Option<MailedTokenOwner>, sqlx::Error> {
    // One `DELETE ... RETURNING`: of two concurrent redemptions exactly one gets the row.
    with_tx!(tx, |conn| {
        sqlx::query_as::<_, MailedTokenOwner>(
            "DELETE FROM auth_mailed_tokens
             WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3
               AND (security_stamp IS NULL OR security_stamp =
                    (SELECT u.security_stamp FROM auth_users u WHERE u.id = user_id))
             RETURNING user_id, email, security_stamp",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(conn)
        .await
    })
}

/// Whose a live token is, without spending it (live as for [`spend_mailed_token`]).
pub async fn peek_mailed_token(
    db: &Db,
    token_hash: &[u8],
    purpose: &str,
    now: i64,
) -> Result<Option<MailedTokenOwner>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, MailedTokenOwner>(
            "SELECT user_id, email, security_stamp FROM auth_mailed_tokens
             WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3
               AND (security_stamp IS NULL OR security_stamp =
                    (SELECT u.security_stamp FROM auth_users u WHERE u.id = user_id))",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// Deletes every pending token of `purpose` for a user, inside `tx`; returns how many.
pub async fn delete_mailed_tokens(
    tx: &mut Tx,
    user_id: &UserId,
    purpose: &str,
) -> Result<u64, sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_mailed_tokens WHERE user_id = $1 AND purpose = $2")
            .bind(user_id)
            .bind(purpose)
    )
}

/// Deletes expired tokens; returns how many.
pub async fn purge_mailed_tokens(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    execute_db!(
        db,
        sqlx::query("DELETE FROM auth_mailed_tokens WHERE expires_at <= $1").bind(now)
    )
}
