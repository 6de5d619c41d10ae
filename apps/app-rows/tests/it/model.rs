//! A model-based test: a small in-memory model of the rows sync contract runs side by side with
//! the service while devices running the reference client write, sync, lose answers, join late
//! and come back after the tombstone retention, their clocks skewed both ways.
//!
//! The model keeps, per user, each row's latest version with the sequence number and the server
//! time of the change that wrote it, and the user's counters as ADR 0010 describes them (last
//! sequence number, purge epoch, horizon). From that it predicts every push result (`applied`,
//! `stale`, `rejected` with `too_old` or `clock_skew`, and `current`), every pull page, cursor
//! and `410`, and every purge. On top of the predictions it checks the promises themselves: a
//! pull never skips a purged tombstone it has not seen, a walk from the start never gets `410`
//! unless a purge ran during it, a device that finishes a sync holds what the server holds (and
//! nothing else but tombstones the purge has removed), no deleted row comes back with a version
//! the delete beat, and a sync takes at most its pages plus two resyncs of requests.
//!
//! The server's clock is the test server's manual clock; `TOMBSTONE_RETENTION` is one day and
//! the clock crosses it several times per case. Schedules come from a seeded RNG; on a failure
//! the seed and the schedule so far are printed, and `MODEL_SEED=n` runs that seed alone.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app_rows::cursor::Cursor;
use auth_skeleton::rate_limit::Limit;
use auth_skeleton::testing::{Backend, TestServer};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::{Value, json};

use crate::client::{Device, Key, Remote, Response, Row, SyncError};
use crate::support::{engine, pull, push};

const HOUR_MS: i64 = 3_600_000;
const RETENTION_MS: i64 = 24 * HOUR_MS;
const SKEW_MS: i64 = 5 * 60_000;
const MAX_COUNTER: i64 = 2_147_483_647;
const VARS: [(&str, &str); 4] = [
    ("TOMBSTONE_RETENTION", "1d"),
    ("MAX_CLOCK_SKEW", "5m"),
    // The clock crosses the retention many times per case: sessions outlive the whole run.
    ("SESSION_IDLE", "36500d"),
    ("SESSION_MAX_AGE", "36500d"),
];
const USERS: usize = 2;
const MAX_DEVICES: usize = 3;
const STEPS: usize = 60;
const PAGE_SIZES: [u32; 4] = [1, 2, 3, 500];

/// The rows the devices write: few, so that writes collide; the last has the longest legal
/// collection and id.
fn keys() -> Vec<Key> {
    let mut keys: Vec<Key> = [
        ("notes", "a"),
        ("notes", "b"),
        ("notes", "c"),
        ("tasks", "a"),
    ]
    .iter()
    .map(|(c, i)| (c.to_string(), i.to_string()))
    .collect();
    keys.push(("z".repeat(64), "é".repeat(128)));
    keys
}

/// The node of the writes that do not come from a device: 64 characters, the most allowed.
fn raw_node() -> String {
    format!("raw.{}", "9".repeat(60))
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone)]
struct Stored {
    row: Row,
    seq: i64,
    applied_at: i64,
}

/// One user's rows and counters, as the contract and ADR 0010 describe them.
#[derive(Debug, Default)]
struct UserModel {
    rows: BTreeMap<Key, Stored>,
    last_seq: i64,
    epoch: i64,
    horizon: i64,
    /// The greatest tombstone ever applied per key: a live row must be newer.
    deleted: BTreeMap<Key, Row>,
    /// `(seq, epoch)` of every purged tombstone: the purge that removed it started `epoch`.
    purged: Vec<(i64, i64)>,
}

/// What the model expects of one change of a push.
#[derive(Debug)]
struct Expected {
    status: &'static str,
    reason: Option<&'static str>,
    current: Option<Row>,
}

/// What the model expects of a pull that is not `410`.
#[derive(Debug)]
struct Page {
    changes: Vec<Row>,
    has_more: bool,
    seq: i64,
    epoch: i64,
}

impl UserModel {
    fn push(&mut self, now: i64, changes: &[Row]) -> Vec<Expected> {
        let mut expected: Vec<Expected> = changes
            .iter()
            .map(|change| {
                let reason = if change.ts > now + SKEW_MS {
                    Some("clock_skew")
                } else if change.ts < now - RETENTION_MS {
                    Some("too_old")
                } else {
                    None
                };
                let key = change.key();
                let newer = self
                    .rows
                    .get(&key)
                    .is_none_or(|s| change.cmp_version(&s.row).is_gt());
                let status = match reason {
                    Some(_) => "rejected",
                    None if newer => {
                        self.last_seq += 1;
                        if change.deleted
                            && self
                                .deleted
                                .get(&key)
                                .is_none_or(|d| change.cmp_version(d).is_gt())
                        {
                            self.deleted.insert(key.clone(), change.clone());
                        }
                        let stored = Stored {
                            row: change.clone(),
                            seq: self.last_seq,
                            applied_at: now,
                        };
                        self.rows.insert(key, stored);
                        "applied"
                    }
                    None => "stale",
                };
                Expected {
                    status,
                    reason,
                    current: None,
                }
            })
            .collect();
        // `current` is the row as it stands at the end of the push.
        for (e, change) in expected.iter_mut().zip(changes) {
            if e.status != "applied" {
                e.current = self.rows.get(&change.key()).map(|s| s.row.clone());
            }
        }
        expected
    }

    /// `None`: `410`.
    fn pull(&self, since: Option<(i64, i64)>, limit: u32) -> Option<Page> {
        if let Some((seq, epoch)) = since
            && epoch < self.epoch
            && seq < self.horizon
        {
            return None;
        }
        let after = since.map_or(0, |c| c.0);
        let mut rows: Vec<&Stored> = self.rows.values().filter(|s| s.seq > after).collect();
        rows.sort_by_key(|s| s.seq);
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let seq = match rows.last() {
            Some(last) if has_more => last.seq,
            _ => self.last_seq,
        };
        Some(Page {
            changes: rows.iter().map(|s| s.row.clone()).collect(),
            has_more,
            seq,
            epoch: self.epoch,
        })
    }

    /// Removes the tombstones whose `ts` and application are both past the retention.
    fn purge(&mut self, now: i64) -> u64 {
        let cutoff = now - RETENTION_MS;
        let gone: Vec<Key> = self
            .rows
            .iter()
            .filter(|(_, s)| s.row.deleted && s.applied_at < cutoff && s.row.ts < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        if gone.is_empty() {
            return 0;
        }
        self.epoch += 1;
        for key in &gone {
            let stored = self.rows.remove(key).expect("a stored row");
            self.horizon = self.horizon.max(stored.seq);
            self.purged.push((stored.seq, self.epoch));
        }
        gone.len() as u64
    }
}

// ---------------------------------------------------------------------------------------------
// The schedules.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Deliver,
    LoseRequest,
    LoseResponse,
}

/// A write that does not come from a device, at the edges of what is legal.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// `ts` exactly the retention before the server's clock, the greatest counter: legal.
    OldestLegal,
    /// One ms older: `too_old`.
    JustTooOld,
    /// `ts` exactly `MAX_CLOCK_SKEW` ahead: legal.
    NewestLegal,
    /// One ms further: `clock_skew`.
    JustAhead,
    /// One ms before the server's clock, the greatest counter.
    JustBeforeNow,
    /// A live row just older than the greatest delete of the row: never applied.
    UnderTombstone,
    /// A tombstone as old as may be, the greatest counter: purgeable a retention later.
    OldestTombstone,
}

#[derive(Debug)]
enum Op {
    Write {
        user: usize,
        device: usize,
        key: usize,
        delete: bool,
    },
    Sync {
        user: usize,
        device: usize,
        page_size: u32,
        fate: Fate,
        retry: bool,
        /// `false`: a pull only.
        push: bool,
        /// Before the pull request of this index, the clock moves on by so many ms and the
        /// purge runs.
        purge_mid_walk: Option<(u32, i64)>,
    },
    /// The clock moves on; then, if `purge`, the purge runs (as the hourly job would).
    Advance {
        ms: i64,
        purge: bool,
    },
    Purge,
    Raw {
        user: usize,
        changes: Vec<(usize, Raw)>,
    },
    Join {
        user: usize,
        skew: i64,
    },
}

/// How far ahead (+) or behind (-) of the server a device's clock runs.
fn skew(rng: &mut TestRng) -> i64 {
    match rng.random_range(0..10) {
        0..=2 => 0,
        3..=5 => rng.random_range(-SKEW_MS..SKEW_MS),
        6 => rng.random_range(SKEW_MS + 1..2 * SKEW_MS),
        7 | 8 => -rng.random_range(HOUR_MS..12 * HOUR_MS),
        _ => -rng.random_range(RETENTION_MS..2 * RETENTION_MS),
    }
}

/// How far the server's clock moves: a little, hours, right around the retention, or days.
fn advance(rng: &mut TestRng) -> i64 {
    match rng.random_range(0..20) {
        0..=8 => rng.random_range(0..5_000),
        9..=12 => rng.random_range(HOUR_MS..12 * HOUR_MS),
        13..=16 => {
            let edge = [-60_000, -1, 0, 1, 60_000, SKEW_MS, SKEW_MS + 1];
            RETENTION_MS + edge[rng.random_range(0..edge.len())]
        }
        _ => rng.random_range(RETENTION_MS..3 * RETENTION_MS),
    }
}

fn op(rng: &mut TestRng, devices: &[Vec<Dev>]) -> Op {
    let user = rng.random_range(0..USERS);
    let device = rng.random_range(0..devices[user].len());
    let keys = keys().len();
    match rng.random_range(0..100) {
        0..=26 => Op::Write {
            user,
            device,
            key: rng.random_range(0..keys),
            delete: rng.random_bool(0.45),
        },
        27..=61 => {
            let fate = match rng.random_range(0..20) {
                0..=11 => Fate::Deliver,
                12..=16 => Fate::LoseResponse,
                _ => Fate::LoseRequest,
            };
            let purge_mid_walk = rng.random_bool(0.25).then(|| {
                let ms = if rng.random_bool(0.5) {
                    RETENTION_MS + rng.random_range(0..HOUR_MS)
                } else {
                    advance(rng)
                };
                (rng.random_range(1..4), ms)
            });
            // A purge in the middle of a walk needs a walk of several pages.
            let sizes = if purge_mid_walk.is_some() {
                &PAGE_SIZES[..2]
            } else {
                &PAGE_SIZES[..]
            };
            Op::Sync {
                user,
                device,
                page_size: sizes[rng.random_range(0..sizes.len())],
                fate,
                retry: rng.random_bool(0.7),
                push: rng.random_bool(0.85),
                purge_mid_walk,
            }
        }
        62..=73 => Op::Advance {
            ms: advance(rng),
            purge: rng.random_bool(0.5),
        },
        74..=83 => Op::Purge,
        84..=93 => {
            let kinds = [
                Raw::OldestLegal,
                Raw::JustTooOld,
                Raw::NewestLegal,
                Raw::JustAhead,
                Raw::JustBeforeNow,
                Raw::UnderTombstone,
                Raw::OldestTombstone,
            ];
            let n = rng.random_range(1..3);
            let key = rng.random_range(0..keys);
            let changes = (0..n)
                .map(|_| {
                    // Mostly the same row twice: `current` is the row at the end of the push.
                    let k = if rng.random_bool(0.7) {
                        key
                    } else {
                        rng.random_range(0..keys)
                    };
                    (k, kinds[rng.random_range(0..kinds.len())])
                })
                .collect();
            Op::Raw { user, changes }
        }
        _ if devices[user].len() < MAX_DEVICES => Op::Join {
            user,
            skew: skew(rng),
        },
        _ => Op::Advance {
            ms: advance(rng),
            purge: false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The service and the model, side by side.

/// A device of one user.
struct Dev {
    device: Device,
    user: usize,
    skew: i64,
    /// The server's clock when the device last finished a sync.
    last_sync: Option<i64>,
}

#[derive(Debug, Default)]
struct Stats {
    cases: u64,
    steps: u64,
    pushes: u64,
    applied: u64,
    stale: u64,
    too_old: u64,
    clock_skew: u64,
    pulls: u64,
    gone_410: u64,
    resyncs: u64,
    tombstones: u64,
    purged: u64,
    mid_walk_purges: u64,
    lost_requests: u64,
    lost_responses: u64,
    retried_syncs: u64,
    finished_syncs: u64,
    back_after_retention: u64,
    joins: u64,
    raw_pushes: u64,
    max_requests_per_sync: u32,
}

struct User {
    token: String,
    id: String,
}

struct World {
    server: TestServer,
    engine: app_rows::Engine,
    users: Vec<User>,
    model: RefCell<Vec<UserModel>>,
    stats: RefCell<Stats>,
    trace: RefCell<Vec<String>>,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let mut vars = VARS.to_vec();
        // The schedules push in bursts while the manual clock stands still: the per-user push
        // limit, where the build has one, is not what this test is about.
        if Limit::ALL.iter().any(|l| l.name() == "PUSH_USER") {
            vars.push(("RATE_LIMIT_PUSH_USER", "off"));
        }
        let server = crate::support::start(backend, &vars).await;
        let engine = engine(&server, &VARS);
        let mut users = Vec::new();
        for i in 0..USERS {
            let (token, id) = server.signup_bearer(&format!("u{i}@example.com")).await;
            users.push(User { token, id });
        }
        Self {
            server,
            engine,
            users,
            model: RefCell::new(Vec::new()),
            stats: RefCell::default(),
            trace: RefCell::default(),
        }
    }

    /// Forgets every row and counter, so that every case starts empty.
    async fn reset(&self) {
        let mut tx = self.server.db.begin().await.unwrap();
        for user in &self.users {
            app_rows::store::delete_user(&mut tx, &user.id.as_str().into())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        *self.model.borrow_mut() = (0..USERS).map(|_| UserModel::default()).collect();
        self.trace.borrow_mut().clear();
    }

    fn now(&self) -> i64 {
        self.server.clock.now_ms()
    }

    fn advance(&self, ms: i64) {
        self.server.clock.advance(Duration::from_millis(ms as u64));
    }

    fn note(&self, line: String) {
        self.trace.borrow_mut().push(line);
    }

    /// Pushes `changes` as `user` and checks every result against the model.
    async fn push(&self, user: usize, changes: &[Value]) -> Response {
        let now = self.now();
        let reply = push(&self.server, &self.users[user].token, changes).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["server_time"], now);
        let rows: Vec<Row> = serde_json::from_value(Value::from(changes.to_vec())).unwrap();
        let expected = self.model.borrow_mut()[user].push(now, &rows);
        let results = reply.body["results"].as_array().expect("results");
        assert_eq!(results.len(), rows.len(), "one result per change");
        let mut stats = self.stats.borrow_mut();
        stats.pushes += 1;
        for ((row, result), want) in rows.iter().zip(results).zip(expected) {
            let what = format!("user {user}, {row:?} at {now}: {result}");
            assert_eq!(result["collection"], row.collection.as_str(), "{what}");
            assert_eq!(result["id"], row.id.as_str(), "{what}");
            assert_eq!(result["status"], want.status, "{what}");
            assert_eq!(result["reason"].as_str(), want.reason, "{what}");
            if want.status != "applied" {
                let current = result.get("current").expect("current").clone();
                let current: Option<Row> = serde_json::from_value(current).unwrap();
                assert_eq!(current, want.current, "{what}");
            }
            match (want.status, want.reason) {
                ("applied", _) => {
                    stats.applied += 1;
                    stats.tombstones += u64::from(row.deleted);
                }
                ("stale", _) => stats.stale += 1,
                (_, Some("too_old")) => stats.too_old += 1,
                _ => stats.clock_skew += 1,
            }
        }
        Response {
            status: reply.status,
            body: reply.body,
        }
    }

    /// Pulls as `user` and checks the page, the cursor or the `410` against the model.
    async fn pull(&self, user: usize, since: Option<&str>, limit: u32) -> Response {
        let now = self.now();
        let query = match since {
            Some(since) => format!("?limit={limit}&since={since}"),
            None => format!("?limit={limit}"),
        };
        let reply = pull(&self.server, &self.users[user].token, &query).await;
        let id = &self.users[user].id;
        let since = since.map(|text| {
            let c = Cursor::decode(text, id, &self.server.auth.config().keys)
                .expect("a cursor the server minted");
            (c.seq, c.epoch)
        });
        let model = &self.model.borrow()[user];
        let what = format!(
            "user {user}, since {since:?}, limit {limit}: {}",
            reply.body
        );
        let mut stats = self.stats.borrow_mut();
        stats.pulls += 1;
        match model.pull(since, limit) {
            None => {
                assert_eq!(reply.status, 410, "{what}");
                assert_eq!(reply.code(), "resync_required", "{what}");
                // The contract itself: only a purge after the cursor was minted sends it back.
                let (_, epoch) = since.expect("a walk from the start never gets 410");
                assert!(epoch < model.epoch, "{what}");
                stats.gone_410 += 1;
            }
            Some(page) => {
                assert_eq!(reply.status, 200, "{what}");
                // The contract itself: no purged tombstone past the cursor goes unseen.
                if let Some((seq, epoch)) = since {
                    let gap = model.purged.iter().any(|&(s, e)| s > seq && e > epoch);
                    assert!(!gap, "a purged tombstone silently skipped: {what}");
                }
                let changes: Vec<Row> =
                    serde_json::from_value(reply.body["changes"].clone()).unwrap();
                assert_eq!(changes, page.changes, "{what}");
                assert_eq!(reply.body["has_more"], page.has_more, "{what}");
                assert_eq!(reply.body["server_time"], now, "{what}");
                let cursor = reply.body["cursor"].as_str().expect("a cursor");
                let cursor = Cursor::decode(cursor, id, &self.server.auth.config().keys)
                    .expect("a cursor of this user");
                assert_eq!((cursor.seq, cursor.epoch), (page.seq, page.epoch), "{what}");
            }
        }
        Response {
            status: reply.status,
            body: reply.body,
        }
    }

    /// Runs the purge on the service and in the model.
    async fn purge(&self) {
        let now = self.now();
        let report = self.engine.purge_tombstones().await.unwrap();
        let mut model = self.model.borrow_mut();
        let purged: Vec<u64> = model.iter_mut().map(|m| m.purge(now)).collect();
        let tombstones: u64 = purged.iter().sum();
        let users = purged.iter().filter(|&&n| n > 0).count() as u64;
        assert_eq!(
            (report.tombstones, report.users),
            (tombstones, users),
            "purge at {now}"
        );
        self.stats.borrow_mut().purged += tombstones;
    }

    /// One sync (or pull) of a device; checks the request bound, and the device against the
    /// model when it finishes. Returns whether it finished.
    async fn sync(&self, dev: &mut Dev, op: SyncOp) -> bool {
        let now = self.now();
        dev.device.page_size = op.page_size;
        let rows = self.model.borrow()[dev.user].rows.len() + dev.device.unpushed();
        let net = Net::new(self, dev.user, op.fate, op.purge_mid_walk);
        let resyncs = dev.device.resyncs;
        let mut result = if op.push {
            dev.device.sync(&net).await
        } else {
            dev.device.pull(&net).await
        };
        let mut push_attempts = 1;
        if result == Err(SyncError::Unreachable) && op.retry {
            self.stats.borrow_mut().retried_syncs += 1;
            push_attempts += 1;
            result = dev.device.sync(&net).await;
        }
        // Pages of at most `rows` changes; a walk, then at most two resync walks (one more
        // only for a purge during the first).
        let pages = rows.div_ceil(op.page_size as usize).max(1) as u32;
        let requests = net.requests.get();
        assert!(
            requests <= push_attempts + 3 * pages,
            "{} took {requests} requests for {rows} rows in pages of {}",
            dev.device.node,
            op.page_size
        );
        assert!(
            net.gone.get() <= 1 + net.purges.get(),
            "{}: a resync walk got 410 with no purge during it",
            dev.device.node
        );
        let mut stats = self.stats.borrow_mut();
        stats.max_requests_per_sync = stats.max_requests_per_sync.max(requests);
        stats.resyncs += u64::from(dev.device.resyncs - resyncs);
        match result {
            Ok(()) => {}
            Err(SyncError::Unreachable) => {
                assert!(op.fate != Fate::Deliver && !op.retry, "unreachable");
                return false;
            }
            Err(e) => panic!("{}: {e:?}", dev.device.node),
        }
        if dev.last_sync.is_some_and(|then| now - then > RETENTION_MS) {
            stats.back_after_retention += 1;
        }
        drop(stats);
        dev.last_sync = Some(self.now());
        if dev.device.unpushed() == 0 {
            self.stats.borrow_mut().finished_syncs += 1;
            self.agrees(dev);
        }
        true
    }

    /// A device that finished a sync holds the server's rows, and besides them only tombstones
    /// the purge removed; none of its live rows is older than a delete of it.
    fn agrees(&self, dev: &Dev) {
        let model = &self.model.borrow()[dev.user];
        let node = &dev.device.node;
        for (key, stored) in &model.rows {
            assert_eq!(
                dev.device.rows().get(key),
                Some(&stored.row),
                "{node} disagrees with the server on {key:?}"
            );
        }
        for (key, row) in dev.device.rows() {
            if !model.rows.contains_key(key) {
                assert!(row.deleted, "{node} holds {row:?}, which the server lacks");
            }
            if let Some(delete) = model.deleted.get(key)
                && !row.deleted
            {
                assert!(
                    row.cmp_version(delete).is_gt(),
                    "a delete came back on {node}: {row:?} after {delete:?}"
                );
            }
        }
    }

    /// A live row as old as may be, or a tombstone, at the edges of the legal range.
    fn raw_change(&self, user: usize, key: usize, raw: Raw, n: usize) -> Value {
        let now = self.now();
        let (collection, id) = keys().swap_remove(key);
        let node = raw_node();
        let data = json!({"big": 12345678901234567890u64, "min": -9007199254740991i64, "n": n});
        let live = |ts: i64, counter: i64, node: &str| {
            crate::support::row(&collection, &id, ts, counter, node, data.clone())
        };
        match raw {
            Raw::OldestLegal => live(now - RETENTION_MS, MAX_COUNTER, &node),
            Raw::JustTooOld => live(now - RETENTION_MS - 1, MAX_COUNTER, &node),
            Raw::NewestLegal => live(now + SKEW_MS, n as i64, &node),
            Raw::JustAhead => live(now + SKEW_MS + 1, 0, &node),
            Raw::JustBeforeNow => live(now - 1, MAX_COUNTER, &node),
            Raw::UnderTombstone => {
                let delete = self.model.borrow()[user]
                    .deleted
                    .get(&(collection.clone(), id.clone()))
                    .cloned();
                match delete {
                    // "0" sorts before every node of the test: just under the delete.
                    Some(d) => live(d.ts, d.counter, "0"),
                    None => live(now - RETENTION_MS, MAX_COUNTER, &node),
                }
            }
            Raw::OldestTombstone => {
                crate::support::tombstone(&collection, &id, now - RETENTION_MS, MAX_COUNTER, &node)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct SyncOp {
    page_size: u32,
    fate: Fate,
    retry: bool,
    push: bool,
    purge_mid_walk: Option<(u32, i64)>,
}

/// The network between a device and the service, for one sync: it may lose the first push's
/// request or its response, and it may let the clock move and the purge run between pages.
struct Net<'a> {
    world: &'a World,
    user: usize,
    fate: Cell<Fate>,
    purge_mid_walk: Option<(u32, i64)>,
    requests: Cell<u32>,
    pulls: Cell<u32>,
    gone: Cell<u32>,
    purges: Cell<u32>,
}

impl<'a> Net<'a> {
    fn new(world: &'a World, user: usize, fate: Fate, purge_mid_walk: Option<(u32, i64)>) -> Self {
        Self {
            world,
            user,
            fate: Cell::new(fate),
            purge_mid_walk,
            requests: Cell::new(0),
            pulls: Cell::new(0),
            gone: Cell::new(0),
            purges: Cell::new(0),
        }
    }
}

impl Remote for Net<'_> {
    async fn push(&self, body: Value) -> Option<Response> {
        self.requests.set(self.requests.get() + 1);
        let fate = self.fate.replace(Fate::Deliver);
        if fate == Fate::LoseRequest {
            self.world.stats.borrow_mut().lost_requests += 1;
            return None;
        }
        let changes = body["changes"].as_array().expect("changes").clone();
        let response = self.world.push(self.user, &changes).await;
        if fate == Fate::LoseResponse {
            self.world.stats.borrow_mut().lost_responses += 1;
            return None;
        }
        Some(response)
    }

    async fn pull(&self, since: Option<&str>, limit: u32) -> Option<Response> {
        self.requests.set(self.requests.get() + 1);
        let n = self.pulls.get();
        self.pulls.set(n + 1);
        if let Some((at, ms)) = self.purge_mid_walk
            && at == n
        {
            self.world.advance(ms);
            self.world.purge().await;
            self.purges.set(self.purges.get() + 1);
            self.world.stats.borrow_mut().mid_walk_purges += 1;
        }
        let response = self.world.pull(self.user, since, limit).await;
        if response.status == 410 {
            self.gone.set(self.gone.get() + 1);
        }
        Some(response)
    }
}

/// Prints the seed and the schedule so far when a case fails.
struct OnFailure<'a> {
    seed: u64,
    world: &'a World,
}

impl Drop for OnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "model: seed {} failed after this schedule:\n{}",
                self.seed,
                self.world.trace.borrow().join("\n")
            );
        }
    }
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

fn new_dev(world: &World, user: usize, index: usize, skew: i64) -> Dev {
    world.note(format!("  device u{user}-d{index}, skew {skew} ms"));
    Dev {
        device: Device::new(&format!("u{user}-d{index}")),
        user,
        skew,
        last_sync: None,
    }
}

async fn run_case(world: &World, seed: u64) {
    world.reset().await;
    let _guard = OnFailure { seed, world };
    let mut rng = rng(seed);
    let mut devices: Vec<Vec<Dev>> = (0..USERS)
        .map(|user| vec![new_dev(world, user, 0, skew(&mut rng))])
        .collect();
    let keys = keys();
    for step in 0..STEPS {
        let op = op(&mut rng, &devices);
        world.note(format!("{step}: {op:?} (server clock {})", world.now()));
        match op {
            Op::Write {
                user,
                device,
                key,
                delete,
            } => {
                let dev = &mut devices[user][device];
                let now = world.now() + dev.skew;
                let (collection, id) = &keys[key];
                if delete {
                    dev.device.delete(now, collection, id);
                } else {
                    let data = json!({"by": dev.device.node, "step": step});
                    dev.device.put(now, collection, id, data);
                }
            }
            Op::Sync {
                user,
                device,
                page_size,
                fate,
                retry,
                push,
                purge_mid_walk,
            } => {
                let op = SyncOp {
                    page_size,
                    fate,
                    retry,
                    push,
                    purge_mid_walk,
                };
                world.sync(&mut devices[user][device], op).await;
            }
            Op::Advance { ms, purge } => {
                world.advance(ms);
                if purge {
                    world.purge().await;
                }
            }
            Op::Purge => world.purge().await,
            Op::Raw { user, changes } => {
                let changes: Vec<Value> = changes
                    .iter()
                    .enumerate()
                    .map(|(n, &(key, raw))| world.raw_change(user, key, raw, step * 10 + n))
                    .collect();
                world.push(user, &changes).await;
                world.stats.borrow_mut().raw_pushes += 1;
            }
            Op::Join { user, skew } => {
                let index = devices[user].len();
                devices[user].push(new_dev(world, user, index, skew));
                world.stats.borrow_mut().joins += 1;
            }
        }
    }

    // The network heals: every device syncs, then every device pulls, page sizes as they were.
    world.note("end: every device syncs, then pulls".into());
    let reliable = |page_size| SyncOp {
        page_size,
        fate: Fate::Deliver,
        retry: false,
        push: true,
        purge_mid_walk: None,
    };
    for round in [true, false] {
        for dev in devices.iter_mut().flatten() {
            let op = SyncOp {
                push: round,
                ..reliable(dev.device.page_size)
            };
            assert!(world.sync(dev, op).await, "a reliable sync finishes");
            assert_eq!(dev.device.unpushed(), 0);
        }
    }
    for (user, devices) in devices.iter().enumerate() {
        // A device that joins now, in pages of one, holds exactly the server's rows.
        let mut late = Dev {
            device: Device::new(&format!("u{user}-late")),
            user,
            skew: 0,
            last_sync: None,
        };
        assert!(world.sync(&mut late, reliable(1)).await);
        let model = &world.model.borrow()[user];
        let server: BTreeMap<Key, Row> = model
            .rows
            .iter()
            .map(|(k, s)| (k.clone(), s.row.clone()))
            .collect();
        assert_eq!(late.device.rows(), &server);
        for dev in devices {
            assert_eq!(dev.device.live(), late.device.live(), "{}", dev.device.node);
            for (row, reason) in &dev.device.rejected {
                assert!(
                    ["too_old", "clock_skew"].contains(&reason.as_str()),
                    "{row:?}: {reason}"
                );
            }
        }
    }
    let mut stats = world.stats.borrow_mut();
    stats.cases += 1;
    stats.steps += STEPS as u64;
}

/// Seeds per backend, for some 15 seconds each on two cores: a case is about 200 requests, and
/// PostgreSQL's commits cost more.
fn seeds(backend: Backend) -> u64 {
    match backend {
        Backend::Sqlite => 48,
        Backend::Postgres => 24,
    }
}

async fn the_service_follows_the_model(backend: Backend) {
    let started = Instant::now();
    let world = World::new(backend).await;
    let seeds: Vec<u64> = match std::env::var("MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("MODEL_SEED is a number")],
        Err(_) => (0..seeds(backend)).collect(),
    };
    for &seed in &seeds {
        run_case(&world, seed).await;
    }
    {
        let stats = world.stats.borrow();
        eprintln!(
            "model ({backend:?}): seeds {}..={} in {:.1?}: {stats:#?}",
            seeds[0],
            seeds[seeds.len() - 1],
            started.elapsed()
        );
        assert_eq!(stats.cases, seeds.len() as u64);
    }
    world.server.stop().await;
}

auth_skeleton::both_backends!(the_service_follows_the_model);
