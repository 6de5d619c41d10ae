//! The sync service: push, pull and the tombstone purge, as transactions over the store.
//!
//! No HTTP types here, so that it is tested (and driven by the property tests) without a
//! server; `routes` turns its answers into the HTTP contract's.

use std::collections::HashMap;

use auth_skeleton::clock::Clock;
use auth_skeleton::db::Db;
use auth_skeleton::secret_key::Keyring;
use serde_json::value::RawValue;

use crate::change::{Change, ChangeResult, Rejection, Row, Status};
use crate::cursor::{Cursor, CursorError};
use crate::limits::Limits;
use crate::lww::{Outcome, decide};
use crate::store::{self, StoredRow};

/// How many users one round of the purge handles before it looks again.
const PURGE_USERS_PER_ROUND: i64 = 100;

/// Push, pull and purge for one database.
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct RowSync {
    db: Db,
    clock: Clock,
    limits: Limits,
    keys: Keyring,
}

/// Why a push or pull failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `since` is not a cursor this server minted for this user.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// `since` is older than the purge of a tombstone the client has not seen.
    #[error(
        "the cursor predates purged deletions; pull from the start (omit since) and replace the local state"
    )]
    ResyncRequired,
    /// The user's account was deleted while the request ran.
    #[error("the account no longer exists")]
    AccountGone,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The answer to a push.
#[derive(Debug)]
pub struct Pushed {
    /// One result per change, in order.
    pub results: Vec<ChangeResult>,
}

/// One page of a pull.
#[derive(Debug)]
pub struct Page {
    /// The rows, in the order their latest change was applied.
    pub changes: Vec<Row>,
    /// Where the next pull starts: after the page's last row, or, when the page ends the walk,
    /// after every change committed so far (purged ones included); with the page's purge epoch.
    pub cursor: Cursor,
    /// Whether more changes follow `cursor` already.
    pub has_more: bool,
}

/// What a purge did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Tombstones deleted.
    pub tombstones: u64,
    /// Users whose horizon moved.
    pub users: u64,
}

impl RowSync {
    /// The service over `db`, with `clock` as the server's time. Cursors are bound to their user
    /// with `keys`.
    pub fn new(db: Db, clock: Clock, limits: Limits, keys: Keyring) -> Self {
        Self {
            db,
            clock,
            limits,
            keys,
        }
    }

    /// The keys its cursors are bound with (the service's `SECRET_KEY`).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The server's time, in ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies a checked batch for `user_id` in one transaction, durable when this returns.
    ///
    /// Each change is compared with the stored row while the user's counters are locked, so
    /// concurrent pushes of one user never lose an update nor let a smaller version win.
    pub async fn push(&self, user_id: &str, changes: &[Change]) -> Result<Pushed, SyncError> {
        let now = self.now_ms();
        let mut tx = store::begin_write(&self.db).await?;
        let mut counters = store::lock_counters(&mut tx, user_id)
            .await
            .map_err(gone_if_no_account)?;
        let quota = i64::try_from(self.limits.quota).unwrap_or(i64::MAX);
        let bytes_quota = i64::try_from(self.limits.bytes_quota).unwrap_or(i64::MAX);
        let breaches: Vec<Option<Rejection>> = changes
            .iter()
            .map(|c| c.breach(now, &self.limits))
            .collect();
        let keys: Vec<(&str, &str)> = changes
            .iter()
            .zip(&breaches)
            .filter(|(_, breach)| breach.is_none())
            .map(|(c, _)| (c.collection.as_str(), c.id.as_str()))
            .collect();
        let mut stored = store::stored_versions(&mut tx, user_id, &keys).await?;
        let mut results = Vec::with_capacity(changes.len());
        for (change, breach) in changes.iter().zip(breaches) {
            let (status, reason) = match breach {
                Some(reason) => (Status::Rejected, Some(reason)),
                None => {
                    let outcome = decide(
                        stored.get(&change.collection, &change.id),
                        &change.version,
                        counters.row_count < quota,
                    );
                    let old_bytes = stored.data_bytes(&change.collection, &change.id);
                    let new_bytes = change.data.as_ref().map_or(0, |d| d.len() as i64);
                    let data_bytes = counters.data_bytes - old_bytes + new_bytes;
                    // Only a change that grows the stored data is held to the byte quota: one
                    // that shrinks it or keeps its size applies even at or over the quota.
                    let over_bytes = new_bytes > old_bytes && data_bytes > bytes_quota;
                    match outcome {
                        Outcome::Insert | Outcome::Replace if over_bytes => {
                            (Status::Rejected, Some(Rejection::QuotaExceeded))
                        }
                        Outcome::Insert | Outcome::Replace => {
                            counters.last_seq += 1;
                            if outcome == Outcome::Insert {
                                counters.row_count += 1;
                            }
                            counters.data_bytes = data_bytes;
                            store::write_row(&mut tx, user_id, change, counters.last_seq, now)
                                .await?;
                            // A later change of the same row in this batch compares with this one.
                            stored.set(
                                &change.collection,
                                &change.id,
                                change.version.clone(),
                                new_bytes,
                            );
                            (Status::Applied, None)
                        }
                        Outcome::Stale => (Status::Stale, None),
                        Outcome::OverQuota => (Status::Rejected, Some(Rejection::QuotaExceeded)),
                    }
                }
            };
            results.push(ChangeResult {
                collection: change.collection.clone(),
                id: change.id.clone(),
                status,
                reason,
                current: None,
            });
        }
        // The rows as they stand now, for the changes that did not become them.
        let refused: Vec<(&str, &str)> = results
            .iter()
            .filter(|r| r.status != Status::Applied)
            .map(|r| (r.collection.as_str(), r.id.as_str()))
            .collect();
        let mut current: HashMap<(String, String), StoredRow> = HashMap::new();
        for row in store::stored_rows(&mut tx, user_id, &refused).await? {
            current.insert((row.collection.clone(), row.id.clone()), row);
        }
        for result in results.iter_mut().filter(|r| r.status != Status::Applied) {
            let key = (result.collection.clone(), result.id.clone());
            result.current = Some(current.get(&key).cloned().map(to_row).transpose()?);
        }
        store::save_counters(&mut tx, user_id, &counters).await?;
        tx.commit().await?;
        Ok(Pushed { results })
    }

    /// Up to `limit` of the user's changes after `since` (`None`: from the start).
    ///
    /// The page and the counters are read in one snapshot. A cursor gets
    /// [`SyncError::ResyncRequired`] only when a purge after the one it was minted under
    /// (its epoch) may have removed a tombstone past its position (the horizon is above it); a
    /// purge racing this pull shows in the snapshot or not at all, never as a silent gap.
    pub async fn pull(
        &self,
        user_id: &str,
        since: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, SyncError> {
        let mut tx = store::begin_snapshot(&self.db).await?;
        let counters = store::counters(&mut tx, user_id).await?;
        if let Some(since) = since {
            // A position or an epoch never reached cannot come from this server's answers.
            if since.seq > counters.last_seq || since.epoch > counters.epoch {
                return Err(CursorError::Malformed.into());
            }
            if since.epoch < counters.epoch && since.seq < counters.horizon {
                return Err(SyncError::ResyncRequired);
            }
        }
        let after = since.map_or(0, |c| c.seq);
        let mut rows = store::rows_after(&mut tx, user_id, after, i64::from(limit) + 1).await?;
        tx.rollback().await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let seq = match rows.last() {
            Some(last) if has_more => last.seq,
            // The walk is complete: the cursor covers every change so far, so tombstones purged
            // behind the last row shown never send this cursor to a resync.
            _ => counters.last_seq,
        };
        let changes = rows.into_iter().map(to_row).collect::<Result<_, _>>()?;
        Ok(Page {
            changes,
            cursor: Cursor {
                seq,
                epoch: counters.epoch,
            },
            has_more,
        })
    }

    /// Deletes the tombstones whose version's `ts` is more than `TOMBSTONE_RETENTION` before
    /// the server's clock and which the server applied at least that long ago, moves each
    /// user's horizon past them and starts a new purge epoch for the user.
    pub async fn purge_tombstones(&self) -> Result<PurgeReport, sqlx::Error> {
        let cutoff = self
            .now_ms()
            .saturating_sub(self.limits.tombstone_retention_ms);
        let mut report = PurgeReport::default();
        loop {
            let users =
                store::users_with_tombstones_before(&self.db, cutoff, PURGE_USERS_PER_ROUND)
                    .await?;
            let before = report;
            for user_id in users {
                let mut tx = store::begin_write(&self.db).await?;
                let Some(mut counters) = store::lock_existing_counters(&mut tx, &user_id).await?
                else {
                    // The account went between the two queries.
                    continue;
                };
                let purged = store::delete_tombstones_before(&mut tx, &user_id, cutoff).await?;
                if let Some(highest) = purged.iter().map(|&(seq, _)| seq).max() {
                    counters.horizon = counters.horizon.max(highest);
                    counters.epoch += 1;
                    counters.row_count -= purged.len() as i64;
                    counters.data_bytes -= purged.iter().map(|&(_, bytes)| bytes).sum::<i64>();
                    store::save_counters(&mut tx, &user_id, &counters).await?;
                    report.tombstones += purged.len() as u64;
                    report.users += 1;
                }
                tx.commit().await?;
            }
            // Nothing left to purge (or only rows that vanished meanwhile): done.
            if report == before {
                return Ok(report);
            }
        }
    }
}

fn to_row(row: StoredRow) -> Result<Row, sqlx::Error> {
    let data = row
        .data
        .map(RawValue::from_string)
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Row {
        collection: row.collection,
        id: row.id,
        ts: row.ts,
        counter: row.counter,
        node: row.node,
        deleted: row.deleted,
        data,
    })
}

/// The counters reference the account: a foreign-key failure means it was deleted meanwhile.
fn gone_if_no_account(err: sqlx::Error) -> SyncError {
    if err
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
    {
        SyncError::AccountGone
    } else {
        SyncError::Db(err)
    }
}
