//! The mail outbox (`auth_mail_outbox`): rendered messages, their bodies sealed, waiting for
//! delivery.

use sqlx::FromRow;

use crate::db::{Db, Tx};
use crate::{execute_db, execute_tx, read_db};

/// A message waiting in the outbox, as stored (its bodies sealed).
#[derive(Debug, Clone, FromRow)]
pub struct OutboxMessage {
    /// Opaque id (the bodies are sealed bound to it).
    pub id: String,
    /// The address it goes to.
    pub recipient: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body, sealed.
    pub body_text: String,
    /// The HTML body, sealed.
    pub body_html: String,
    /// When it is next due (or, while claimed, when the claim lapses), Unix ms.
    pub next_attempt_at: i64,
    /// Failed delivery attempts so far.
    pub attempts: i64,
    /// When it is dropped unsent (the expiry of the link it carries), Unix ms.
    pub discard_after: i64,
}

/// Writes a message into the outbox inside `tx`, due at once; dropped unsent after
/// `discard_after`.
#[allow(clippy::too_many_arguments)]
pub async fn insert_mail(
    tx: &mut Tx,
    id: &str,
    recipient: &str,
    subject: &str,
    body_text: &str,
    body_html: &str,
    now: i64,
    discard_after: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO auth_mail_outbox
                 (id, recipient, subject, body_text, body_html, created_at, next_attempt_at,
                  attempts, discard_after)
             VALUES ($1, $2, $3, $4, $5, $6, $6, 0, $7)",
        )
        .bind(id)
        .bind(recipient)
        .bind(subject)
        .bind(body_text)
        .bind(body_html)
        .bind(now)
        .bind(discard_after)
    )?;
    Ok(())
}

/// How many messages wait for delivery.
pub async fn count_mail(db: &Db) -> Result<i64, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM auth_mail_outbox")
            .fetch_one(pool)
            .await
    })
}

/// Up to 20 messages due at `now`, the longest due first.
pub async fn due_mail(db: &Db, now: i64) -> Result<Vec<OutboxMessage>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as::<_, OutboxMessage>(
            "SELECT id, recipient, subject, body_text, body_html, next_attempt_at, attempts,
                    discard_after
             FROM auth_mail_outbox WHERE next_attempt_at <= $1
             ORDER BY next_attempt_at, created_at LIMIT 20",
        )
        .bind(now)
        .fetch_all(pool)
        .await
    })
}

/// Claims message `id` for its sender until `lease_until`, provided it is still due at the
/// `next_attempt_at` read with it; `false` when another instance claimed or rescheduled it
/// first. Several instances on one PostgreSQL database never send a message twice at once:
/// only the one whose conditional `UPDATE` matches sends it.
pub async fn claim_mail(
    db: &Db,
    id: &str,
    next_attempt_at: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_mail_outbox SET next_attempt_at = $3
             WHERE id = $1 AND next_attempt_at = $2",
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(lease_until)
    )?;
    Ok(claimed == 1)
}

/// Records a failed delivery of message `id`: its `attempts` so far, when to try again, and
/// the error (which must not contain the message).
pub async fn reschedule_mail(
    db: &Db,
    id: &str,
    attempts: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    execute_db!(
        db,
        sqlx::query(
            "UPDATE auth_mail_outbox
             SET attempts = $2, next_attempt_at = $3, last_error = $4
             WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
    )?;
    Ok(())
}

/// Deletes message `id` (delivered, or dropped).
pub async fn delete_mail(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    execute_db!(
        db,
        sqlx::query("DELETE FROM auth_mail_outbox WHERE id = $1").bind(id)
    )?;
    Ok(())
}
