//! Accounts (`auth_users`), and the security stamp that every credential event moves.

use sqlx::FromRow;

use crate::db::{Db, Tx, is_unique_violation};
use crate::{execute_db, execute_tx, read_db};

/// An account's id: opaque to clients (they get it as a string), and a type of its own here so
/// that a session id or an email cannot be passed where an account is meant. It reads as a
/// `&str` (`Deref`) for SQL binds and keys, and binds and decodes as text on both backends.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct UserId(String);

impl UserId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for UserId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for UserId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl std::ops::Deref for UserId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for UserId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UserId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A stored account.
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    /// Opaque id.
    pub id: UserId,
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
    user_id: &UserId,
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
    user_id: &UserId,
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

/// Marks `user_id` verified if its address is still `email`, inside `tx`; `false` otherwise.
pub async fn mark_verified(
    tx: &mut Tx,
    user_id: &UserId,
    email: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let updated = execute_tx!(
        tx,
        sqlx::query(
            "UPDATE auth_users SET email_verified = $3, updated_at = $4
             WHERE id = $1 AND email = $2",
        )
        .bind(user_id)
        .bind(email)
        .bind(true)
        .bind(now)
    )?;
    Ok(updated == 1)
}

/// Moves the account to `email`, verified, if its security stamp is still `stamp`, inside `tx`;
/// the change is itself a credential event (the stamp moves). `false` when the stamp had moved;
/// a [unique violation](crate::db::is_unique_violation) when another account has `email`.
pub async fn set_email(
    tx: &mut Tx,
    user_id: &UserId,
    email: &str,
    stamp: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = execute_tx!(
        tx,
        sqlx::query(
            "UPDATE auth_users
             SET email = $2, email_verified = $3, updated_at = $4,
                 security_stamp = security_stamp + 1
             WHERE id = $1 AND security_stamp = $5",
        )
        .bind(user_id)
        .bind(email)
        .bind(true)
        .bind(now)
        .bind(stamp)
    )?;
    Ok(done == 1)
}

/// The account's security stamp: the value that every credential event moves (see
/// [`move_security_stamp`]); `None` when there is no such account.
pub async fn security_stamp(db: &Db, user_id: &UserId) -> Result<Option<i64>, sqlx::Error> {
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
pub async fn lock_account(tx: &mut Tx, user_id: &UserId) -> Result<bool, sqlx::Error> {
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
/// mailed link bound to the old one, and deletes those links, and every email-change link that
/// carries no stamp at all. The 0.1 line writes its change links without one and accepts them
/// without looking at the stamp: while a 0.1 instance runs beside this one (during an upgrade),
/// only their deletion ends them.
///
/// The functions of this module that set a password, end another session or change the address
/// call it themselves, so a route built on them cannot forget it. Afterwards nobody who held the
/// account before the event can use a link mailed to them then, e.g. to move the account to
/// their own address.
pub async fn move_security_stamp(tx: &mut Tx, user_id: &UserId) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("UPDATE auth_users SET security_stamp = security_stamp + 1 WHERE id = $1")
            .bind(user_id)
    )?;
    execute_tx!(
        tx,
        sqlx::query(
            "DELETE FROM auth_mailed_tokens
             WHERE user_id = $1 AND (security_stamp IS NOT NULL OR purpose = $2)",
        )
        .bind(user_id)
        // `mailed_token::Purpose::ChangeEmail`, as stored.
        .bind("change_email")
    )?;
    Ok(())
}

/// Deletes an account inside `tx` (its sessions go with it by `ON DELETE CASCADE`).
pub async fn delete_user(tx: &mut Tx, user_id: &UserId) -> Result<bool, sqlx::Error> {
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
