//! The SQL for accounts and sessions, one statement per function, for both backends.
//!
//! Nothing here decides policy (expiry, rotation, who may see what): that is the service
//! layer's job. Functions that must share a transaction with other work take a [`Tx`].

use sqlx::FromRow;

use crate::db::{Db, Tx, is_unique_violation};
use crate::{execute_db, execute_tx, read_db, with_tx};

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
    /// The security stamp (see [`move_security_stamp`]), as read with the row.
    pub security_stamp: i64,
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
    let result = execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_users
                 (id, email, email_verified, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(user.email_verified)
        .bind(&user.password_hash)
        .bind(user.created_at)
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(InsertUserError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// The account with this normalised email.
pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, email_verified, password_hash, created_at, security_stamp
             FROM auth_users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(pool)
        .await
    })
}

/// The account with this id.
pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, email_verified, password_hash, created_at, security_stamp
             FROM auth_users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Every account, oldest first.
pub async fn all_users(db: &Db) -> Result<Vec<UserRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, email_verified, password_hash, created_at, security_stamp
             FROM auth_users
             ORDER BY created_at, id",
        )
        .fetch_all(pool)
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
    let done = execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_users SET password_hash = $3, updated_at = $4
             WHERE id = $1 AND password_hash = $2",
        )
        .bind(user_id)
        .bind(old_hash)
        .bind(new_hash)
        .bind(now)
    )?;
    Ok(done == 1)
}

/// Sets an account's password hash inside `tx`.
pub async fn set_password_hash(
    tx: &mut Tx,
    user_id: &str,
    new_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("UPDATE auth_users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(new_hash)
            .bind(now)
    )?;
    // A new password is a credential event, whichever route set it.
    move_security_stamp(tx, user_id).await
}

/// The account's security stamp: the value that every credential event moves (see
/// [`move_security_stamp`]); `None` when there is no such account.
pub async fn security_stamp(db: &Db, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar("SELECT security_stamp FROM auth_users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
}

/// Locks the account's row for the rest of `tx`; `false` when there is no such account.
///
/// Every transaction that changes an account and its mailed tokens or sessions takes the
/// account's row first and the tokens and sessions after it; taken in the other order by two
/// transactions at once (an email confirmation and a revoke-others, say) PostgreSQL would find a
/// deadlock and fail one of them.
pub async fn lock_account(tx: &mut Tx, user_id: &str) -> Result<bool, sqlx::Error> {
    // A write that changes nothing: portable (SQLite has no FOR UPDATE), and it moves no
    // trigger (they watch the email, the verification and deletions).
    let done = execute_tx!(
        tx,
        sqlx::query("UPDATE auth_users SET security_stamp = security_stamp WHERE id = $1")
            .bind(user_id)
    )?;
    Ok(done == 1)
}

/// Records a credential event inside `tx`: moves the account's security stamp, which ends every
/// mailed link bound to the old one, and deletes those links.
///
/// The functions of this module that set a password, end another session or change the address
/// call it themselves, so a route built on them cannot forget it. Afterwards nobody who held the
/// account before the event can use a link mailed to them then, e.g. to move the account to
/// their own address.
pub async fn move_security_stamp(tx: &mut Tx, user_id: &str) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("UPDATE auth_users SET security_stamp = security_stamp + 1 WHERE id = $1")
            .bind(user_id)
    )?;
    execute_tx!(
        tx,
        sqlx::query(
            "DELETE FROM auth_mailed_tokens WHERE user_id = $1 AND security_stamp IS NOT NULL",
        )
        .bind(user_id)
    )?;
    Ok(())
}

/// Deletes an account inside `tx` (its sessions go with it by `ON DELETE CASCADE`).
pub async fn delete_user(tx: &mut Tx, user_id: &str) -> Result<bool, sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1").bind(user_id)
    )?;
    let done = execute_tx!(
        tx,
        sqlx::query("DELETE FROM auth_users WHERE id = $1").bind(user_id)
    )?;
    Ok(done == 1)
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
    user_id: &str,
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
pub async fn delete_session(db: &Db, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
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
pub async fn revoke_session(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
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
    user_id: &str,
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

/// A stored device token (see migration 0005).
#[derive(Debug, Clone, FromRow)]
pub struct DeviceTokenRow {
    /// The token's public half.
    pub id: String,
    /// The account it was issued to.
    pub user_id: String,
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
    user_id: &str,
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
