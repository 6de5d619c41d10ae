//! The SQL for accounts and sessions, one statement per function, for both backends.
//!
//! Nothing here decides policy (expiry, rotation, who may see what): that is the service
//! layer's job. Functions that must share a transaction with other work take a [`Tx`].
//!
//! One rule lives here so that no route can forget it: the functions that are credential events
//! ([`set_password_hash`], [`delete_sessions_except`], and revoking one session) also delete
//! every pending email-change token of the account, after locking the account's row.

use sqlx::FromRow;

use crate::db::{Db, Tx, is_unique_violation};
use crate::{with_db, with_tx};

/// A stored account.
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    /// Opaque id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// Whether the address was proven.
    pub email_verified: bool,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A stored session.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// The token's public half.
    pub id: String,
    /// The owner.
    pub user_id: String,
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

/// Inserting an account failed.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// The normalised email belongs to another account.
    #[error("email taken")]
    EmailTaken,
    /// Anything else.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Inserts an account inside `tx`.
pub async fn insert_user(tx: &mut Tx, user: &UserRow) -> Result<(), InsertUserError> {
    let result = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO auth_users (id, email, email_verified, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(user.email_verified)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(conn)
        .await
            .map(|r| r.rows_affected())
    });
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(InsertUserError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// The account with this normalised email.
pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(read db, |pool| {
        sqlx::query_as::<_, UserRow>("SELECT id, email, email_verified, password_hash, created_at FROM auth_users WHERE email = $1",
        )
            .bind(email)
            .fetch_optional(pool)
            .await
    })
}

/// The account with this id.
pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(read db, |pool| {
        sqlx::query_as::<_, UserRow>("SELECT id, email, email_verified, password_hash, created_at FROM auth_users WHERE id = $1",
        )
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Replaces an account's password hash, but only if it is still `old_hash` (a concurrent
/// password change wins over a login's opportunistic rehash).
pub async fn replace_password_hash(
    db: &Db,
    user_id: &str,
    old_hash: &str,
    new_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = with_db!(write db, |pool| {
        sqlx::query(
            "UPDATE auth_users SET password_hash = $3, updated_at = $4
             WHERE id = $1 AND password_hash = $2",
        )
        .bind(user_id)
        .bind(old_hash)
        .bind(new_hash)
        .bind(now)
        .execute(pool)
        .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Sets an account's password hash inside `tx`.
///
/// A new password is a credential event: this also deletes every pending email-change token of
/// the account, whichever route set it, after locking the account's row.
pub async fn set_password_hash(
    tx: &mut Tx,
    user_id: &str,
    new_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    credential_event(tx, user_id).await?;
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE auth_users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(new_hash)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Locks the account's row for the rest of `tx`; `false` when there is no such account.
///
/// Every transaction that changes an account together with its mailed tokens or its sessions
/// takes the account's row first and the token and session rows after it. Taken in the other
/// order by two transactions at once (an email confirmation and a revoke-others, say),
/// PostgreSQL would find a deadlock and fail one of them; and a request that checked the
/// account before it began sees, after the lock, whatever a concurrent credential event did.
pub(crate) async fn lock_account(tx: &mut Tx, user_id: &str) -> Result<bool, sqlx::Error> {
    let done = with_tx!(tx, |conn| {
        // A write that changes nothing: portable (SQLite has no FOR UPDATE; its write
        // transactions are serialised anyway).
        sqlx::query("UPDATE auth_users SET updated_at = updated_at WHERE id = $1")
            .bind(user_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Records a credential event of an account inside `tx`: locks the account's row (see
/// [`lock_account`]) and deletes every pending email-change token of the account.
///
/// A credential event is whatever its owner does to take an account back: a password set or
/// reset, sessions revoked (by the owner or an operator), a completed change of address.
/// Whoever held the account before it (with a stolen password, or having signed up with the
/// owner's address) may have asked to move it to an address of their own; their link must not
/// outlive the owner's action. [`set_password_hash`], [`delete_sessions_except`] and
/// [`revoke_session`] call this themselves, so a route built on them cannot forget it.
pub(crate) async fn credential_event(tx: &mut Tx, user_id: &str) -> Result<u64, sqlx::Error> {
    lock_account(tx, user_id).await?;
    crate::mailed_token::revoke_all(tx, user_id, crate::mailed_token::Purpose::ChangeEmail).await
}

/// Whether, inside `tx`, the account still has the address and password hash read before the
/// transaction began and the session `session_id` still exists: no credential event committed
/// in between. Call it after [`lock_account`].
pub(crate) async fn unchanged_since(
    tx: &mut Tx,
    user: &UserRow,
    session_id: &str,
) -> Result<bool, sqlx::Error> {
    let found: i64 = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM auth_users u JOIN auth_sessions s ON s.user_id = u.id
             WHERE u.id = $1 AND u.email = $2 AND u.password_hash = $3 AND s.id = $4",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(session_id)
        .fetch_one(conn)
        .await
    })?;
    Ok(found == 1)
}

/// Deletes an account inside `tx` (its sessions go with it by `ON DELETE CASCADE`).
pub async fn delete_user(tx: &mut Tx, user_id: &str) -> Result<bool, sqlx::Error> {
    // The account's row before its sessions, as credential events take them.
    lock_account(tx, user_id).await?;
    let done = with_tx!(tx, |conn| {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM auth_users WHERE id = $1")
            .bind(user_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Inserts a session inside `tx`.
pub async fn insert_session(tx: &mut Tx, s: &SessionRow) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
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
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A session and its owner, by session id.
pub async fn session_with_user(db: &Db, id: &str) -> Result<Option<SessionWithUser>, sqlx::Error> {
    with_db!(read db, |pool| {
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

/// Moves `last_seen_at` to `now` unless it is already later than `not_before` (the hourly
/// throttle, enforced in SQL so that concurrent requests write at most once).
pub async fn touch_session(
    db: &Db,
    id: &str,
    now: i64,
    not_before: i64,
) -> Result<(), sqlx::Error> {
    with_db!(write db, |pool| {
        sqlx::query("UPDATE auth_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at <= $3")
            .bind(id)
            .bind(now)
            .bind(not_before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The user's sessions that are neither past their absolute end nor idle since `idle_cutoff`,
/// newest first.
pub async fn live_sessions(
    db: &Db,
    user_id: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    with_db!(read db, |pool| {
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
pub async fn delete_session(db: &Db, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = with_db!(write db, |pool| {
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Revokes one session of a user by its id, inside `tx`; `false` when there was none (or it is
/// another user's). Revoking a session (the owner signing another device out) is a credential
/// event (see [`credential_event`]); signing oneself out is [`delete_session`].
pub(crate) async fn revoke_session(
    tx: &mut Tx,
    user_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    credential_event(tx, user_id).await?;
    let done = with_tx!(tx, |conn| {
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Deletes every session of a user except `keep` (none kept when `keep` is `None`), inside `tx`.
///
/// This is a credential event, even when no session went: it also deletes every pending
/// email-change token of the account, after locking the account's row.
pub async fn delete_sessions_except(
    tx: &mut Tx,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    credential_event(tx, user_id).await?;
    let done = with_tx!(tx, |conn| {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND id <> COALESCE($2, '')")
            .bind(user_id)
            .bind(keep)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done)
}

/// Deletes sessions past their absolute end or idle since `idle_cutoff`; returns how many.
pub async fn purge_dead_sessions(db: &Db, now: i64, idle_cutoff: i64) -> Result<u64, sqlx::Error> {
    let done = with_db!(write db, |pool| {
        sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_cutoff)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done)
}
