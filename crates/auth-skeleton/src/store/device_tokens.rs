//! Device tokens (`auth_device_tokens`; see `docs/adr/0014-device-tokens.md`).

use sqlx::FromRow;

use crate::db::{Db, Tx};
use crate::store::UserId;
use crate::{execute_db, execute_tx, read_db, with_tx};

/// A stored device token (see migration 0005).
#[derive(Debug, Clone, FromRow)]
pub struct DeviceTokenRow {
    /// The token's public half.
    pub id: String,
    /// The account it was issued to.
    pub user_id: UserId,
    /// SHA-256 of the token's secret half.
    pub secret_hash: Vec<u8>,
    /// Login attempts with it that failed (or are under way) since its last success.
    pub failures: i64,
    /// The account's security stamp when it was issued or last signed in with.
    pub security_stamp: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// Inserts a device token inside `tx`.
pub async fn insert_device_token(
    tx: &mut Tx,
    row: &DeviceTokenRow,
    created_at: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_device_tokens
                 (id, user_id, secret_hash, failures, security_stamp, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.user_id)
        .bind(&row.secret_hash)
        .bind(row.failures)
        .bind(row.security_stamp)
        .bind(created_at)
        .bind(row.expires_at)
    )?;
    Ok(())
}

/// A device token by id.
pub async fn device_token(db: &Db, id: &str) -> Result<Option<DeviceTokenRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, DeviceTokenRow>(
            "SELECT id, user_id, secret_hash, failures, security_stamp, expires_at
             FROM auth_device_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Counts a login attempt against a device token before its password is checked, unless the
/// token already has `max_failures` or has expired: whether the attempt may go on. Counting
/// first (and in one statement) is what keeps concurrent guesses within the bound.
pub async fn reserve_device_attempt(
    db: &Db,
    id: &str,
    max_failures: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_device_tokens SET failures = failures + 1
             WHERE id = $1 AND failures < $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(max_failures)
        .bind(now)
    )?;
    Ok(done == 1)
}

/// Gives back an attempt counted by [`reserve_device_attempt`] that never checked a password
/// (the hashing queue was full, the database failed).
pub async fn release_device_attempt(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_device_tokens SET failures = failures - 1 WHERE id = $1 AND failures > 0",
        )
        .bind(id)
    )?;
    Ok(())
}

/// After a successful login with a device token, inside `tx`: its failures start again from
/// zero, it carries the account's `security_stamp` and lives until `expires_at`. `false` when
/// it is gone.
pub async fn renew_device_token(
    tx: &mut Tx,
    id: &str,
    security_stamp: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = execute_tx!(
        tx,
        sqlx::query(
            "UPDATE auth_device_tokens SET failures = 0, security_stamp = $2, expires_at = $3
             WHERE id = $1",
        )
        .bind(id)
        .bind(security_stamp)
        .bind(expires_at)
    )?;
    Ok(done == 1)
}

/// How many live (unexpired) device tokens a user has that carry `security_stamp`, inside `tx`.
pub async fn count_device_tokens(
    tx: &mut Tx,
    user_id: &UserId,
    security_stamp: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM auth_device_tokens
             WHERE user_id = $1 AND security_stamp = $2 AND expires_at > $3",
        )
        .bind(user_id)
        .bind(security_stamp)
        .bind(now)
        .fetch_one(conn)
        .await
    })
}

/// Deletes device tokens that expired or reached `max_failures`; returns how many.
pub async fn purge_device_tokens(db: &Db, now: i64, max_failures: i64) -> Result<u64, sqlx::Error> {
    let done = execute_db!(
        db,
        sqlx::query("DELETE FROM auth_device_tokens WHERE expires_at <= $1 OR failures >= $2")
            .bind(now)
            .bind(max_failures)
    )?;
    Ok(done)
}
