//! A reference client for `/v1/rows`: what a device does to keep its rows in sync.
//!
//! App teams read it to write their own; the tests use it as a device. It keeps:
//! - the device's rows, tombstones included, each with the version that wrote it;
//! - the keys written locally and not yet acknowledged by the server (the outbox);
//! - a hybrid logical clock that stamps local writes: it follows the device's physical clock,
//!   never goes back, and moves past every version and `server_time` the device has seen, so a
//!   local edit always beats what the device was looking at when it made it;
//! - the pull cursor.
//!
//! `sync` pushes the outbox, then pulls until `has_more` is false. A push whose answer is lost
//! is simply sent again: the server answers `stale` for what it already has. A `stale` or
//! `rejected` result carries `current`, the server's row (or null): the device takes it, and
//! keeps a rejected write in `rejected` for the app to tell its user. On `410
//! resync_required` the device pulls everything from the start (again, if a purge interrupts
//! that walk), replaces its rows with the server's, and keeps the local writes that are still
//! unpushed and newer.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// At most this many changes per push (the server's limit).
pub const PUSH_BATCH: usize = 1_000;
/// How many times a resync starts again after a `410` in its own walk.
const RESYNC_RESTARTS: u32 = 3;

/// `(collection, id)`.
pub type Key = (String, String);

/// A row as the API carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub collection: String,
    pub id: String,
    pub ts: i64,
    pub counter: i64,
    pub node: String,
    pub deleted: bool,
    pub data: Value,
}

impl Row {
    pub fn key(&self) -> Key {
        (self.collection.clone(), self.id.clone())
    }

    /// Versions compare as `(ts, counter, node)`, the node by its bytes.
    pub fn cmp_version(&self, other: &Row) -> Ordering {
        (self.ts, self.counter, self.node.as_bytes()).cmp(&(
            other.ts,
            other.counter,
            other.node.as_bytes(),
        ))
    }
}

/// An HTTP answer, or what stands for one.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// The server, as the client reaches it. `None`: no answer came (the request or the response
/// was lost); the client cannot tell whether the server acted.
pub trait Remote {
    fn push(&self, body: Value) -> impl Future<Output = Option<Response>>;
    fn pull(&self, since: Option<&str>, limit: u32) -> impl Future<Output = Option<Response>>;
    /// A pull that, with nothing new, waits up to `wait_secs` for a change (`Prefer: wait`).
    /// A remote that cannot wait answers at once, which the client handles the same.
    fn pull_waiting(
        &self,
        since: Option<&str>,
        limit: u32,
        wait_secs: u32,
    ) -> impl Future<Output = Option<Response>> {
        let _ = wait_secs;
        self.pull(since, limit)
    }
}

/// Why a sync step stopped. The device's state stays consistent: the step can be retried.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncError {
    Unreachable,
    Refused { status: u16, body: Value },
}

/// The largest `counter` the contract allows.
const MAX_COUNTER: i64 = 2_147_483_647;

/// A hybrid logical clock.
#[derive(Debug, Clone, Copy, Default)]
struct Hlc {
    ts: i64,
    counter: i64,
}

impl Hlc {
    /// A reading for a local write, later than every reading and observation before it. A
    /// counter at the contract's ceiling carries into the next millisecond rather than past it.
    fn tick(&mut self, physical_ms: i64) -> (i64, i64) {
        if physical_ms > self.ts {
            self.ts = physical_ms;
            self.counter = 0;
        } else if self.counter >= MAX_COUNTER {
            self.ts += 1;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        (self.ts, self.counter)
    }

    /// Moves past a version (or the server's time) the device has seen.
    fn observe(&mut self, ts: i64, counter: i64) {
        if (ts, counter) > (self.ts, self.counter) {
            self.ts = ts;
            self.counter = counter;
        }
    }
}

/// One device's rows and sync state.
#[derive(Debug, Clone)]
pub struct Device {
    pub node: String,
    clock: Hlc,
    rows: BTreeMap<Key, Row>,
    unpushed: BTreeSet<Key>,
    cursor: Option<String>,
    pub page_size: u32,
    /// Local writes the server refused (`rejected`), with the reason; they stay local.
    pub rejected: Vec<(Row, String)>,
    /// How many times a `410` sent the device back to the start.
    pub resyncs: u32,
}

impl Device {
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_owned(),
            clock: Hlc::default(),
            rows: BTreeMap::new(),
            unpushed: BTreeSet::new(),
            cursor: None,
            page_size: 500,
            rejected: Vec::new(),
            resyncs: 0,
        }
    }

    /// Writes a row locally; `now_ms` is the device's physical clock (`SystemTime` in an app).
    pub fn put(&mut self, now_ms: i64, collection: &str, id: &str, data: Value) -> Row {
        self.write(now_ms, collection, id, Some(data))
    }

    /// Deletes a row locally (a tombstone, which syncs like any write).
    pub fn delete(&mut self, now_ms: i64, collection: &str, id: &str) -> Row {
        self.write(now_ms, collection, id, None)
    }

    fn write(&mut self, now_ms: i64, collection: &str, id: &str, data: Option<Value>) -> Row {
        let (ts, counter) = self.clock.tick(now_ms);
        let row = Row {
            collection: collection.to_owned(),
            id: id.to_owned(),
            ts,
            counter,
            node: self.node.clone(),
            deleted: data.is_none(),
            data: data.unwrap_or(Value::Null),
        };
        self.unpushed.insert(row.key());
        self.rows.insert(row.key(), row.clone());
        row
    }

    /// Every row, tombstones included.
    pub fn rows(&self) -> &BTreeMap<Key, Row> {
        &self.rows
    }

    /// The rows an app shows: not deleted.
    pub fn live(&self) -> BTreeMap<Key, Value> {
        self.rows
            .iter()
            .filter(|(_, r)| !r.deleted)
            .map(|(k, r)| (k.clone(), r.data.clone()))
            .collect()
    }

    pub fn unpushed(&self) -> usize {
        self.unpushed.len()
    }

    /// Pushes the outbox, then pulls until there is nothing more.
    pub async fn sync(&mut self, remote: &impl Remote) -> Result<(), SyncError> {
        self.push(remote).await?;
        self.pull(remote).await
    }

    /// Sends the outbox in batches until it is empty.
    pub async fn push(&mut self, remote: &impl Remote) -> Result<(), SyncError> {
        while !self.unpushed.is_empty() {
            let batch: Vec<Row> = self
                .unpushed
                .iter()
                .take(PUSH_BATCH)
                .map(|k| self.rows[k].clone())
                .collect();
            let reply = remote
                .push(json!({ "changes": batch }))
                .await
                .ok_or(SyncError::Unreachable)?;
            if reply.status != 200 {
                return Err(SyncError::Refused {
                    status: reply.status,
                    body: reply.body,
                });
            }
            self.observe_server_time(&reply.body);
            let results = reply.body["results"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(results.len(), batch.len(), "one result per change");
            for (sent, result) in batch.into_iter().zip(results) {
                let key = sent.key();
                // Only the write that was sent is settled; a newer local one stays queued.
                if self.rows.get(&key) != Some(&sent) {
                    continue;
                }
                match result["status"].as_str() {
                    Some("applied") => {}
                    status => {
                        if status != Some("stale") {
                            let reason = result["reason"].as_str().unwrap_or("unknown").to_owned();
                            self.rejected.push((sent, reason));
                        }
                        // The server says how the row stands: the device takes that, so that
                        // it shows what every other device will (a refused new row goes).
                        if let Some(current) = result.get("current") {
                            self.adopt(key.clone(), current);
                        }
                    }
                }
                self.unpushed.remove(&key);
            }
        }
        Ok(())
    }

    /// Pulls pages until `has_more` is false; on `410` starts over from the beginning.
    pub async fn pull(&mut self, remote: &impl Remote) -> Result<(), SyncError> {
        self.pull_after_waiting(remote, None).await
    }

    /// Waits up to `wait_secs` for a change made through another device (a long-poll, woken
    /// as soon as one commits), then pulls as [`Device::pull`] does. A device that has nothing
    /// to push calls this in a loop instead of polling.
    pub async fn wait_for_changes(
        &mut self,
        remote: &impl Remote,
        wait_secs: u32,
    ) -> Result<(), SyncError> {
        self.pull_after_waiting(remote, Some(wait_secs)).await
    }

    async fn pull_after_waiting(
        &mut self,
        remote: &impl Remote,
        mut wait_secs: Option<u32>,
    ) -> Result<(), SyncError> {
        loop {
            // Only the first page waits: the others exist already.
            let since = self.cursor.as_deref();
            let pulled = match wait_secs.take() {
                Some(wait) => remote.pull_waiting(since, self.page_size, wait).await,
                None => remote.pull(since, self.page_size).await,
            };
            let reply = pulled.ok_or(SyncError::Unreachable)?;
            match reply.status {
                200 => {}
                410 => return self.resync(remote).await,
                status => {
                    return Err(SyncError::Refused {
                        status,
                        body: reply.body,
                    });
                }
            }
            self.observe_server_time(&reply.body);
            let (rows, cursor, has_more) = page(&reply.body);
            for row in rows {
                self.merge(row);
            }
            // The cursor moves only once the page is applied, so a lost page is pulled again.
            self.cursor = Some(cursor);
            if !has_more {
                return Ok(());
            }
        }
    }

    /// Replaces the rows with the server's, keeping unpushed local writes that are newer.
    ///
    /// A `410` during the walk (a purge ran meanwhile) starts it again from the beginning, a few
    /// times at most.
    async fn resync(&mut self, remote: &impl Remote) -> Result<(), SyncError> {
        let mut restarts = 0;
        let (mut fresh, cursor) = 'walk: loop {
            let mut fresh: BTreeMap<Key, Row> = BTreeMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let reply = remote
                    .pull(cursor.as_deref(), self.page_size)
                    .await
                    .ok_or(SyncError::Unreachable)?;
                match reply.status {
                    200 => {}
                    410 if restarts < RESYNC_RESTARTS => {
                        restarts += 1;
                        continue 'walk;
                    }
                    status => {
                        return Err(SyncError::Refused {
                            status,
                            body: reply.body,
                        });
                    }
                }
                self.observe_server_time(&reply.body);
                let (rows, next, has_more) = page(&reply.body);
                for row in rows {
                    self.clock.observe(row.ts, row.counter);
                    fresh.insert(row.key(), row);
                }
                cursor = Some(next);
                if !has_more {
                    break 'walk (fresh, cursor);
                }
            }
        };
        // Nothing changes locally until the whole state has arrived.
        for key in std::mem::take(&mut self.unpushed) {
            let local = &self.rows[&key];
            let newer = fresh
                .get(&key)
                .is_none_or(|server| local.cmp_version(server) == Ordering::Greater);
            if newer {
                fresh.insert(key.clone(), local.clone());
                self.unpushed.insert(key);
            }
        }
        self.rows = fresh;
        self.cursor = cursor;
        self.resyncs += 1;
        Ok(())
    }

    /// Makes the server's `current` row (null: none) the device's row for `key`.
    fn adopt(&mut self, key: Key, current: &Value) {
        if current.is_null() {
            self.rows.remove(&key);
            return;
        }
        let row: Row = serde_json::from_value(current.clone()).expect("a row in current");
        self.clock.observe(row.ts, row.counter);
        self.rows.insert(key, row);
    }

    /// Takes a pulled row if it is at least as new as the local one.
    fn merge(&mut self, row: Row) {
        self.clock.observe(row.ts, row.counter);
        let key = row.key();
        let take = self
            .rows
            .get(&key)
            .is_none_or(|local| row.cmp_version(local) != Ordering::Less);
        if take {
            // An unpushed local write older than the server's row has lost: stop sending it.
            self.unpushed.remove(&key);
            self.rows.insert(key, row);
        }
    }

    fn observe_server_time(&mut self, body: &Value) {
        if let Some(t) = body["server_time"].as_i64() {
            self.clock.observe(t, 0);
        }
    }
}

fn page(body: &Value) -> (Vec<Row>, String, bool) {
    let rows = serde_json::from_value(body["changes"].clone()).expect("rows in a pull");
    let cursor = body["cursor"].as_str().expect("a cursor").to_owned();
    let has_more = body["has_more"].as_bool().expect("has_more");
    (rows, cursor, has_more)
}

#[test]
fn a_clock_at_the_counter_ceiling_carries_into_the_next_millisecond() {
    let mut clock = Hlc::default();
    clock.observe(1_000, MAX_COUNTER);
    let (ts, counter) = clock.tick(500);
    assert_eq!((ts, counter), (1_001, 0), "never past the ceiling");
    assert!(
        (ts, counter) > (1_000, MAX_COUNTER),
        "and still later than what it saw"
    );
}
