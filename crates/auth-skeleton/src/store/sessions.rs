//! Sessions (`auth_sessions`), and the change counter a session cache watches.

use sqlx::FromRow;

use super::users::{lock_account, move_security_stamp};
use crate::db::{Db, Tx};
use crate::store::UserId;
use crate::{execute_db, execute_tx, read_db};

/// A stored session.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// The token's public half.
    pub id: String,
    /// The owner.
    pub user_id: UserId,
    /// SHA-256 of the token's secret half.
    pub secret_hash: Vec<u8>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, advanced at most hourly.
    pub last_seen_at: i64,
    /// Absolute end, Unix ms.
    pub expires_at: i64,
    /// A label the client chose.
    pub device_name: Option<String>,
}

/// A session joined with its owner.
#[derive(Debug, Clone, FromRow)]
pub struct SessionWithUser {
    /// The session.
    #[sqlx(flatten)]
    pub session: SessionRow,
    /// Owner's email.
    pub email: String,
    /// Owner's verification state.
    pub email_verified: bool,
    /// Owner's creation time.
    pub user_created_at: i64,
}

/// Inserts a session inside `tx`.
pub async fn insert_session(tx: &mut Tx, s: &SessionRow) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_sessions
                 (id, user_id, secret_hash, created_at, last_seen_at, expires_at, device_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.secret_hash)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.device_name)
    )?;
    Ok(())
}

/// A session and its owner, by session id.
pub async fn session_with_user(db: &Db, id: &str) -> Result<Option<SessionWithUser>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, SessionWithUser>(
            "SELECT s.id, s.user_id, s.secret_hash, s.created_at, s.last_seen_at, s.expires_at,
                    s.device_name, u.email, u.email_verified, u.created_at AS user_created_at
             FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id
             WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// The counter that triggers move whenever a session is deleted or an account's email,
/// verification or existence changes (see migration 0003); a session cache compares it.
pub async fn change_counter(db: &Db) -> Result<i64, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar("SELECT changes FROM auth_change_counter WHERE id = 1")
            .fetch_one(pool)
            .await
    })
}

/// Moves `last_seen_at` to `now` unless it is already later than `not_before` (the hourly
/// throttle, enforced in SQL so that concurrent requests write at most once).
pub async fn touch_session(
    db: &Db,
    id: &str,
    now: i64,
    not_before: i64,
) -> Result<(), sqlx::Error> {
    execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at <= $3"
        )
        .bind(id)
        .bind(now)
        .bind(not_before)
    )?;
    Ok(())
}

/// The user's sessions that are neither past their absolute end nor idle since `idle_cutoff`,
/// newest first.
pub async fn live_sessions(
    db: &Db,
    user_id: &UserId,
    now: i64,
    idle_cutoff: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, SessionRow>(
            "SELECT id, user_id, secret_hash, created_at, last_seen_at, expires_at, device_name
             FROM auth_sessions
             WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3
             ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_all(pool)
        .await
    })
}

/// Deletes one session of a user; `false` when there was none (or it is another user's).
pub async fn delete_session(db: &Db, user_id: &UserId, id: &str) -> Result<bool, sqlx::Error> {
    let done = execute_db!(
        db,
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
    )?;
    Ok(done == 1)
}

/// Revokes one session of a user by its id, inside `tx`, as a credential event (the owner
/// signing another device out; see [`move_security_stamp`]); `false` when there was none (or it
/// is another user's), and then nothing changes.
pub async fn revoke_session(tx: &mut Tx, user_id: &UserId, id: &str) -> Result<bool, sqlx::Error> {
    lock_account(tx, user_id).await?;
    let done = execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
    )?;
    if done == 1 {
        move_security_stamp(tx, user_id).await?;
    }
    Ok(done == 1)
}

/// Deletes every session of a user except `keep` (none kept when `keep` is `None`), inside `tx`.
/// This is a credential event (see [`move_security_stamp`]), even when no session went.
pub async fn delete_sessions_except(
    tx: &mut Tx,
    user_id: &UserId,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    // The account's row first (see `lock_account`).
    move_security_stamp(tx, user_id).await?;
    let done = execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND id <> COALESCE($2, '')")
            .bind(user_id)
            .bind(keep)
    )?;
    Ok(done)
}

/// Deletes sessions past their absolute end or idle since `idle_cutoff`; returns how many.
pub async fn purge_dead_sessions(db: &Db, now: i64, idle_cutoff: i64) -> Result<u64, sqlx::Error> {
    let done = execute_db!(
        db,
        sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_cutoff)
    )?;
    Ok(done)
}
