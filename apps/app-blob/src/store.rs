//! The save engine's SQL, one text per query for both SQLite and PostgreSQL.
//!
//! Functions taking a [`Tx`] are steps of the write transactions in [`crate::saves`]; the others
//! are single reads. Nothing here decides anything.
//!
//! A version's bytes live in `blob_data`, keyed by (user, generation), apart from its meta
//! (`blob_saves` for the current version, `blob_history` for the kept ones). They are inserted
//! once, when the version is created, and deleted once no meta row refers to them; no statement
//! here updates or copies them, since every rewrite of a large value costs its whole size again
//! in the SQLite WAL and checkpoint, or in PostgreSQL's TOAST and WAL
//! (`docs/adr/0012-save-bytes-written-once.md`).

use auth_skeleton::accounts::UserId;
use auth_skeleton::db::{Db, Tx};
use auth_skeleton::{execute_db, execute_tx, read_db, with_tx};

use crate::version::VersionRow;

/// Locks the user's counter row for the rest of the transaction and returns a fresh
/// generation number (creating the row on the user's first write).
///
/// Taking this row lock first is what serialises concurrent writers of one user on PostgreSQL
/// (SQLite has a single writer anyway), so the precondition check and the write that follow
/// cannot interleave with another writer's. Rolled back, the number is never used.
pub async fn lock_user(tx: &mut Tx, user_id: &str) -> Result<i64, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO blob_counters (user_id, generation) VALUES ($1, 1)
             ON CONFLICT (user_id) DO UPDATE SET generation = blob_counters.generation + 1
             RETURNING generation",
        )
        .bind(user_id)
        .fetch_one(conn)
        .await
    })
}

/// The current version inside a write transaction.
pub async fn current_in(tx: &mut Tx, user_id: &str) -> Result<Option<VersionRow>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT tag, size, sha256, updated_at, device_name FROM blob_saves WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(conn)
        .await
    })
}

/// Copies the current version's meta into the history; its bytes stay where they are.
pub async fn archive_current(tx: &mut Tx, user_id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO blob_history
                 (user_id, generation, tag, size, sha256, updated_at, device_name, replaced_at)
             SELECT user_id, generation, tag, size, sha256, updated_at, device_name, $2
             FROM blob_saves WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(now_ms)
    )?;
    Ok(())
}

/// Where a version's bytes are kept.
#[derive(Debug, Clone, Copy)]
pub enum Stored<'a> {
    /// In its `blob_data` row.
    Inline(&'a [u8]),
    /// In the file of this name beside the database ([`crate::files`]); the row's `data` is
    /// empty.
    File(&'a str),
}

/// A version's bytes as read: in hand, or the name of their file.
#[derive(Debug)]
pub enum StoredBytes {
    /// The bytes, from the row.
    Inline(Vec<u8>),
    /// The file that holds them.
    File {
        /// Its name.
        name: String,
        /// The version's size, which the file must have.
        size: i64,
    },
}

/// A version to store as the current save.
#[derive(Debug)]
pub struct NewVersion<'a> {
    /// Its generation (from [`lock_user`]).
    pub generation: i64,
    /// Its meta.
    pub row: &'a VersionRow,
    /// Its bytes.
    pub data: Stored<'a>,
}

/// Stores `version`'s bytes (or the name of their file) and makes it the current save,
/// replacing any other.
///
/// The bytes go into a row of their own, the only write of them ever made; the meta row that
/// the upsert rewrites is small.
pub async fn write_current(
    tx: &mut Tx,
    user_id: &str,
    version: &NewVersion<'_>,
) -> Result<(), sqlx::Error> {
    let (data, file): (&[u8], Option<&str>) = match version.data {
        Stored::Inline(bytes) => (bytes, None),
        Stored::File(name) => (&[], Some(name)),
    };
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO blob_data (user_id, generation, data, file) VALUES ($1, $2, $3, $4)"
        )
        .bind(user_id)
        .bind(version.generation)
        .bind(data)
        .bind(file)
    )?;
    let row = version.row;
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO blob_saves
                 (user_id, generation, tag, size, sha256, updated_at, device_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id) DO UPDATE SET
                 generation = excluded.generation, tag = excluded.tag, size = excluded.size,
                 sha256 = excluded.sha256, updated_at = excluded.updated_at,
                 device_name = excluded.device_name",
        )
        .bind(user_id)
        .bind(version.generation)
        .bind(&row.tag)
        .bind(row.size)
        .bind(&row.sha256)
        .bind(row.updated_at)
        .bind(&row.device_name)
    )?;
    Ok(())
}

/// Removes the current save.
pub async fn delete_current(tx: &mut Tx, user_id: &str) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query("DELETE FROM blob_saves WHERE user_id = $1").bind(user_id)
    )?;
    Ok(())
}

/// Deletes all but the newest `keep` versions of the user's history.
pub async fn prune_history(tx: &mut Tx, user_id: &str, keep: u32) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "DELETE FROM blob_history WHERE user_id = $1 AND generation NOT IN (
                 SELECT generation FROM blob_history WHERE user_id = $1
                 ORDER BY generation DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(i64::from(keep))
    )?;
    Ok(())
}

/// Deletes the user's oldest history versions until the sizes of those kept add up to at most
/// `budget` bytes (the newest are kept first; one too large goes with every older one).
///
/// Each history row has a `blob_data` row of its own (keyed by its generation, which no other
/// version of the user shares), so a row's `size` is what its removal frees once
/// [`drop_unreferenced_data`] runs; versions that share a file beside the database count once
/// each, as the contract counts them, though they free less.
pub async fn prune_history_to_bytes(
    tx: &mut Tx,
    user_id: &str,
    budget: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "DELETE FROM blob_history WHERE user_id = $1 AND generation IN (
                 SELECT generation FROM (
                     SELECT generation, SUM(size) OVER (
                         ORDER BY generation DESC
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS newer_bytes
                     FROM blob_history WHERE user_id = $1) AS kept
                 WHERE newer_bytes > $2)",
        )
        .bind(user_id)
        .bind(budget)
    )?;
    Ok(())
}

/// Deletes the bytes of the user's versions that are neither current nor in the history: the
/// version a write replaced when no history is kept, and the versions pruned from it. Returns
/// the files the deleted rows named, for [`crate::files::FileStore::collect`] once committed.
pub async fn drop_unreferenced_data(
    tx: &mut Tx,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let files: Vec<Option<String>> = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "DELETE FROM blob_data WHERE user_id = $1
             AND NOT EXISTS (SELECT 1 FROM blob_saves s
                 WHERE s.user_id = blob_data.user_id AND s.generation = blob_data.generation)
             AND NOT EXISTS (SELECT 1 FROM blob_history h
                 WHERE h.user_id = blob_data.user_id AND h.generation = blob_data.generation)
             RETURNING file",
        )
        .bind(user_id)
        .fetch_all(conn)
        .await
    })?;
    Ok(files.into_iter().flatten().collect())
}

/// Whether any row names the file `name`.
pub async fn file_is_named(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM blob_data WHERE file = $1)")
            .bind(name)
            .fetch_one(pool)
            .await
    })
}

/// Every file a row names.
pub async fn named_files(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar("SELECT DISTINCT file FROM blob_data WHERE file IS NOT NULL")
            .fetch_all(pool)
            .await
    })
}

/// The response remembered under an `Idempotency-Key` of a `PUT` or a `DELETE`.
#[derive(Debug, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// The request's fingerprint.
    pub fingerprint: Vec<u8>,
    /// The status answered.
    pub status: i32,
    /// The body answered: a `PUT`'s meta object (JSON), empty for a `DELETE`'s `204`.
    pub response_body: String,
}

/// The unexpired record under `key`, if any.
pub async fn idempotency_record(
    tx: &mut Tx,
    user_id: &str,
    key: &str,
    now_ms: i64,
) -> Result<Option<IdempotencyRecord>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT fingerprint, status, response_body FROM blob_idempotency
             WHERE user_id = $1 AND idem_key = $2 AND expires_at > $3",
        )
        .bind(user_id)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(conn)
        .await
    })
}

/// Remembers a response under `key` until `expires_at` (replacing an expired record).
pub async fn remember_response(
    tx: &mut Tx,
    user_id: &str,
    key: &str,
    record: &IdempotencyRecord,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO blob_idempotency
                 (user_id, idem_key, fingerprint, status, response_body, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, idem_key) DO UPDATE SET
                 fingerprint = excluded.fingerprint, status = excluded.status,
                 response_body = excluded.response_body, expires_at = excluded.expires_at",
        )
        .bind(user_id)
        .bind(key)
        .bind(&record.fingerprint)
        .bind(record.status)
        .bind(&record.response_body)
        .bind(expires_at)
    )?;
    Ok(())
}

/// Deletes the `Idempotency-Key` records that expired by `now_ms`; returns how many.
pub async fn purge_idempotency_records(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    execute_db!(
        db,
        sqlx::query("DELETE FROM blob_idempotency WHERE expires_at <= $1").bind(now_ms)
    )
}

/// The current version's meta.
pub async fn current(db: &Db, user_id: &str) -> Result<Option<VersionRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as(
            "SELECT tag, size, sha256, updated_at, device_name FROM blob_saves WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await
    })
}

/// The current save's bytes (or their file) if its tag is still `tag`.
pub async fn current_bytes(
    db: &Db,
    user_id: &str,
    tag: &str,
) -> Result<Option<StoredBytes>, sqlx::Error> {
    let row: Option<(Vec<u8>, Option<String>, i64)> = read_db!(db, |pool| {
        sqlx::query_as(
            "SELECT d.data, d.file, s.size FROM blob_saves s
             JOIN blob_data d ON d.user_id = s.user_id AND d.generation = s.generation
             WHERE s.user_id = $1 AND s.tag = $2",
        )
        .bind(user_id)
        .bind(tag)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.map(stored_bytes))
}

/// The newest `limit` versions of the history, newest first.
pub async fn history(db: &Db, user_id: &str, limit: u32) -> Result<Vec<VersionRow>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_as(
            "SELECT tag, size, sha256, updated_at, device_name FROM blob_history
             WHERE user_id = $1 ORDER BY generation DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
    })
}

/// The bytes (or their file) of the history version `tag`.
pub async fn history_bytes(
    db: &Db,
    user_id: &str,
    tag: &str,
) -> Result<Option<StoredBytes>, sqlx::Error> {
    let row: Option<(Vec<u8>, Option<String>, i64)> = read_db!(db, |pool| {
        sqlx::query_as(
            "SELECT d.data, d.file, h.size FROM blob_history h
             JOIN blob_data d ON d.user_id = h.user_id AND d.generation = h.generation
             WHERE h.user_id = $1 AND h.tag = $2",
        )
        .bind(user_id)
        .bind(tag)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.map(stored_bytes))
}

fn stored_bytes((data, file, size): (Vec<u8>, Option<String>, i64)) -> StoredBytes {
    match file {
        Some(name) => StoredBytes::File { name, size },
        None => StoredBytes::Inline(data),
    }
}

/// Deletes everything the engine keeps for `user_id`.
///
/// Deleting the counter row cascades to the save, the history, their bytes and the idempotency
/// records. Going through the parent row also takes the locks in the same order as a write
/// (counter first), so a deletion and a concurrent write queue up instead of deadlocking on
/// PostgreSQL.
pub async fn delete_user_data(tx: &mut Tx, user_id: &UserId) -> Result<(), sqlx::Error> {
    auth_skeleton::accounts::hooks::delete_rows(
        tx,
        user_id,
        &["DELETE FROM blob_counters WHERE user_id = $1"],
    )
    .await
}
