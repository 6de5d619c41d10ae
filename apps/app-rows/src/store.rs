//! The SQL of row sync, one text per query for both SQLite and PostgreSQL.
//!
//! Tables (`migrations/app-rows/`): `rows_users` holds each user's sequence counter, row count,
//! bytes of `data` kept, purge horizon and purge epoch; `rows_items` holds the latest state of
//! every row with the sequence number of the change that wrote it. Every write to a user's rows happens in a transaction that
//! first locks the user's `rows_users` line ([`lock_counters`]): on PostgreSQL that row lock
//! serialises the user's pushes and purges, so sequence numbers commit in order and no
//! compare-and-write interleaves with another; on SQLite the single writer does the same.

use std::collections::HashMap;

use auth_skeleton::accounts::UserId;
use auth_skeleton::db::{Db, Tx};
use auth_skeleton::{execute_tx, read_db, with_tx};

use crate::change::Change;
use crate::lww::Version;

/// A user's sync counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct Counters {
    /// The sequence number of the user's latest applied change (0: none yet).
    pub last_seq: i64,
    /// How many rows the user keeps, tombstones included.
    pub row_count: i64,
    /// The highest sequence number of a purged tombstone (0: none purged).
    pub horizon: i64,
    /// How many purges removed some of the user's tombstones (0: none).
    #[sqlx(rename = "purge_epoch")]
    pub epoch: i64,
    /// The bytes of `data` the user keeps (tombstones count 0), for `ROWS_BYTES_QUOTA`.
    pub data_bytes: i64,
}

/// A row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRow {
    /// The row's collection.
    pub collection: String,
    /// The row's id.
    pub id: String,
    /// The version's `ts`.
    pub ts: i64,
    /// The version's `counter`.
    pub counter: i64,
    /// The version's `node`.
    pub node: String,
    /// Whether the row is a tombstone.
    pub deleted: bool,
    /// Compact JSON text, `None` for a tombstone.
    pub data: Option<String>,
    /// The sequence number of the change that wrote this state.
    pub seq: i64,
}

/// Begins a write transaction at the isolation the row sync relies on: `READ COMMITTED` on
/// PostgreSQL, whatever the database's `default_transaction_isolation`, so that a push waiting
/// for the user's lock reads what the push before it committed instead of failing to
/// serialise. (SQLite has a single writer.)
pub async fn begin_write(db: &Db) -> Result<Tx, sqlx::Error> {
    Ok(match db {
        Db::Sqlite(_) => db.begin().await?,
        Db::Postgres(p) => {
            Tx::Postgres(p.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?)
        }
    })
}

/// Locks the user's counters for the rest of `tx`, creating them on the user's first push.
///
/// The no-op update makes PostgreSQL take the row lock even when the line exists already.
pub async fn lock_counters(tx: &mut Tx, user_id: &str) -> Result<Counters, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "INSERT INTO rows_users (user_id, last_seq, row_count, horizon, purge_epoch)
             VALUES ($1, 0, 0, 0, 0)
             ON CONFLICT (user_id) DO UPDATE SET last_seq = rows_users.last_seq
             RETURNING last_seq, row_count, horizon, purge_epoch, data_bytes",
        )
        .bind(user_id)
        .fetch_one(conn)
        .await
    })
}

/// Locks the counters of a user who has them, for the rest of `tx`.
pub async fn lock_existing_counters(
    tx: &mut Tx,
    user_id: &str,
) -> Result<Option<Counters>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "UPDATE rows_users SET last_seq = last_seq WHERE user_id = $1
             RETURNING last_seq, row_count, horizon, purge_epoch, data_bytes",
        )
        .bind(user_id)
        .fetch_optional(conn)
        .await
    })
}

/// Stores counters locked with [`lock_counters`].
pub async fn save_counters(
    tx: &mut Tx,
    user_id: &str,
    counters: &Counters,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "UPDATE rows_users SET last_seq = $2, row_count = $3, horizon = $4, purge_epoch = $5,
                 data_bytes = $6
             WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(counters.last_seq)
        .bind(counters.row_count)
        .bind(counters.horizon)
        .bind(counters.epoch)
        .bind(counters.data_bytes)
    )?;
    Ok(())
}

/// The most rows one [`stored_versions`] query asks for: two parameters each, far below either
/// backend's limit on parameters.
const ROWS_PER_VERSION_QUERY: usize = 256;

/// Stored versions by collection and id, each with the byte length of the row's `data`.
#[derive(Debug, Default)]
pub struct StoredVersions(HashMap<String, HashMap<String, (Version, i64)>>);

impl StoredVersions {
    /// The stored version of row `id` of `collection`, if the row exists (tombstones included).
    pub fn get(&self, collection: &str, id: &str) -> Option<&Version> {
        self.0.get(collection)?.get(id).map(|(version, _)| version)
    }

    /// The bytes of the stored row's `data` (0 for a tombstone or no row).
    pub fn data_bytes(&self, collection: &str, id: &str) -> i64 {
        self.0
            .get(collection)
            .and_then(|rows| rows.get(id))
            .map_or(0, |(_, bytes)| *bytes)
    }

    /// Records that the row now has `version` and `data_bytes` bytes of data (after writing it).
    pub fn set(&mut self, collection: &str, id: &str, version: Version, data_bytes: i64) {
        self.0
            .entry(collection.to_owned())
            .or_default()
            .insert(id.to_owned(), (version, data_bytes));
    }
}

/// The byte length of `data` (0 for a tombstone's NULL) in `tx`'s SQL dialect: SQLite's
/// `length()` of TEXT counts characters, so the text is measured as a BLOB there.
fn data_bytes_sql(tx: &Tx) -> &'static str {
    match tx {
        Tx::Sqlite(_) => "COALESCE(length(CAST(data AS BLOB)), 0)",
        Tx::Postgres(_) => "CAST(COALESCE(octet_length(data), 0) AS BIGINT)",
    }
}

/// The stored versions (and data lengths) of the rows `keys` (`(collection, id)`), tombstones included, read a few
/// hundred at a time rather than one query per row; call with the user's counters locked.
pub async fn stored_versions(
    tx: &mut Tx,
    user_id: &str,
    keys: &[(&str, &str)],
) -> Result<StoredVersions, sqlx::Error> {
    let mut found = StoredVersions::default();
    for chunk in keys.chunks(ROWS_PER_VERSION_QUERY) {
        // Padded to a power of two by repeating the last key (IN ignores repeats), so that a
        // connection prepares at most nine distinct statements instead of one per batch size.
        let slots = chunk.len().next_power_of_two();
        let last = chunk[chunk.len() - 1];
        let columns = format!("collection, id, ts, counter, node, {}", data_bytes_sql(tx));
        let sql = by_keys_sql(&columns, slots);
        let rows: Vec<(String, String, i64, i64, String, i64)> = with_tx!(tx, |conn| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id);
            for (collection, id) in chunk
                .iter()
                .chain(std::iter::repeat_n(&last, slots - chunk.len()))
            {
                query = query.bind(*collection).bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        for (collection, id, ts, counter, node, data_bytes) in rows {
            found.set(
                &collection,
                &id,
                Version::new(ts, counter, node),
                data_bytes,
            );
        }
    }
    Ok(found)
}

/// The stored rows `keys` (`(collection, id)`), tombstones included, read a few hundred at a
/// time; keys with no row are left out.
pub async fn stored_rows(
    tx: &mut Tx,
    user_id: &str,
    keys: &[(&str, &str)],
) -> Result<Vec<StoredRow>, sqlx::Error> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_VERSION_QUERY) {
        // Padded as in `stored_versions`; a repeated key matches its row once.
        let slots = chunk.len().next_power_of_two();
        let last = chunk[chunk.len() - 1];
        let sql = by_keys_sql(
            "collection, id, ts, counter, node, deleted, data, seq",
            slots,
        );
        let rows: Vec<StoredRow> = with_tx!(tx, |conn| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id);
            for (collection, id) in chunk
                .iter()
                .chain(std::iter::repeat_n(&last, slots - chunk.len()))
            {
                query = query.bind(*collection).bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// `SELECT columns ... WHERE user_id = $1 AND (collection, id) IN (VALUES ($2, $3), ...)` for
/// `rows` keys; only placeholders are generated, never values.
fn by_keys_sql(columns: &str, rows: usize) -> String {
    let mut sql = format!(
        "SELECT {columns} FROM rows_items
         WHERE user_id = $1 AND (collection, id) IN (VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i));
    }
    sql.push(')');
    sql
}

/// Makes `change` the row's state, stamped with `seq`; call with the user's counters locked,
/// after [`crate::lww::decide`] said so.
pub async fn write_row(
    tx: &mut Tx,
    user_id: &str,
    change: &Change,
    seq: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    execute_tx!(
        tx,
        sqlx::query(
            "INSERT INTO rows_items
                 (user_id, collection, id, ts, counter, node, deleted, data, seq, applied_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (user_id, collection, id) DO UPDATE SET
                 ts = excluded.ts, counter = excluded.counter, node = excluded.node,
                 deleted = excluded.deleted, data = excluded.data, seq = excluded.seq,
                 applied_at = excluded.applied_at",
        )
        .bind(user_id)
        .bind(&change.collection)
        .bind(&change.id)
        .bind(change.version.ts)
        .bind(change.version.counter)
        .bind(&change.version.node)
        .bind(change.is_tombstone())
        .bind(change.data.as_deref())
        .bind(seq)
        .bind(now_ms)
    )?;
    Ok(())
}

/// Begins a read-only transaction that sees one snapshot of the database from its first query
/// on, so that a page and the counters it is checked against agree.
///
/// SQLite's readers see one snapshot per transaction (WAL); PostgreSQL is asked for
/// `REPEATABLE READ` explicitly, whatever the database's default isolation.
pub async fn begin_snapshot(db: &Db) -> Result<Tx, sqlx::Error> {
    Ok(match db {
        Db::Sqlite(s) => Tx::Sqlite(s.reader.begin().await?),
        Db::Postgres(p) => Tx::Postgres(
            p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?,
        ),
    })
}

/// Up to `limit` of the user's rows written after sequence number `after`, in sequence order.
pub async fn rows_after(
    tx: &mut Tx,
    user_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredRow>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT collection, id, ts, counter, node, deleted, data, seq FROM rows_items
             WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// The user's counters as `tx` sees them (all zero for a user who never pushed).
pub async fn counters(tx: &mut Tx, user_id: &str) -> Result<Counters, sqlx::Error> {
    let found = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT last_seq, row_count, horizon, purge_epoch, data_bytes FROM rows_users
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(conn)
        .await
    })?;
    Ok(found.unwrap_or_default())
}

/// Up to `limit` users who have a tombstone applied before `cutoff_ms` whose version's `ts` is
/// before it too.
pub async fn users_with_tombstones_before(
    db: &Db,
    cutoff_ms: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    read_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM rows_items
             WHERE deleted AND applied_at < $1 AND ts < $1 LIMIT $2",
        )
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Deletes the user's tombstones applied before `cutoff_ms` whose version's `ts` is before it
/// too, and returns their sequence numbers and data lengths in bytes (0: a tombstone keeps no
/// data); call with the user's counters locked.
///
/// The `ts` condition is what keeps a delete from coming back: every version a purged tombstone
/// beat has a `ts` older than the retention, and such changes are rejected (`too_old`).
pub async fn delete_tombstones_before(
    tx: &mut Tx,
    user_id: &str,
    cutoff_ms: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let sql = format!(
        "DELETE FROM rows_items WHERE user_id = $1 AND deleted AND applied_at < $2 AND ts < $2
         RETURNING seq, {}",
        data_bytes_sql(tx)
    );
    with_tx!(tx, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(cutoff_ms)
            .fetch_all(conn)
            .await
    })
}

/// Deletes all of the user's rows and counters, inside the account-deletion transaction.
pub async fn delete_user(tx: &mut Tx, user_id: &UserId) -> Result<(), sqlx::Error> {
    // The counters go first: deleting them takes the same lock a push takes first, so a push in
    // flight finishes before its rows are deleted, and the two never wait on each other.
    auth_skeleton::accounts::hooks::delete_rows(
        tx,
        user_id,
        &[
            "DELETE FROM rows_users WHERE user_id = $1",
            "DELETE FROM rows_items WHERE user_id = $1",
        ],
    )
    .await
}
