//! Property tests: devices running the reference client converge, whatever the network does.
//!
//! The devices talk to the sync service directly (the server minus HTTP, on a real database) so
//! that many random schedules run in little time; the HTTP face has tests of its own. The
//! network between them loses requests, loses responses, duplicates pushes and holds pushes back
//! to deliver them later, out of order; pulls are cut off after a random number of pages.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use app_rows::change::{BatchError, PushRequest, check_batch};
use app_rows::cursor::Cursor;
use app_rows::sync::{RowSync, SyncError};
use auth_skeleton::config::Vars;
use auth_skeleton::service::EngineContext;
use auth_skeleton::testing::{Backend, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::client::{Device, Key, Remote, Response, Row};

const KEYS: [(&str, &str); 5] = [
    ("notes", "a"),
    ("notes", "b"),
    ("notes", "c"),
    ("tasks", "a"),
    ("tasks", "b"),
];

/// The sync service of one user, answering as the HTTP routes do.
struct Direct {
    sync: RowSync,
    user_id: String,
}

impl Remote for Direct {
    async fn push(&self, body: Value) -> Option<Response> {
        let request: PushRequest =
            serde_json::from_value(body).expect("the client sends valid JSON");
        let changes = match check_batch(request) {
            Ok(changes) => changes,
            Err(e @ BatchError::TooManyChanges) => return Some(refused(413, e.to_string())),
            Err(e) => return Some(refused(400, e.to_string())),
        };
        let pushed = self.sync.push(&self.user_id, &changes).await.expect("push");
        Some(Response {
            status: 200,
            body: json!({"results": pushed.results, "server_time": self.sync.now_ms()}),
        })
    }

    async fn pull(&self, since: Option<&str>, limit: u32) -> Option<Response> {
        let since = match since
            .map(|text| Cursor::decode(text, &self.user_id, self.sync.keys()))
            .transpose()
        {
            Ok(since) => since,
            Err(e) => return Some(refused(400, e.to_string())),
        };
        match self.sync.pull(&self.user_id, since, limit).await {
            Ok(page) => Some(Response {
                status: 200,
                body: json!({
                    "changes": page.changes,
                    "cursor": page.cursor.encode(&self.user_id, self.sync.keys()),
                    "has_more": page.has_more,
                    "server_time": self.sync.now_ms(),
                }),
            }),
            Err(SyncError::ResyncRequired) => Some(refused(410, "resync_required".into())),
            Err(e) => Some(refused(400, e.to_string())),
        }
    }
}

fn refused(status: u16, detail: String) -> Response {
    Response {
        status,
        body: json!({"detail": detail}),
    }
}

/// What the network does to one push.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    LoseRequest,
    LoseResponse,
    Duplicate,
    /// Held back, delivered later by a `Deliver` step (or at the end), the client told nothing.
    Hold,
}

/// The network between a device and the server, for one step.
struct Network<'a> {
    server: &'a Direct,
    fate: Fate,
    pages_left: Cell<u8>,
    held: &'a RefCell<Vec<Value>>,
}

impl Remote for Network<'_> {
    async fn push(&self, body: Value) -> Option<Response> {
        match self.fate {
            Fate::Deliver => self.server.push(body).await,
            Fate::LoseRequest => None,
            Fate::LoseResponse => {
                self.server.push(body).await;
                None
            }
            Fate::Duplicate => {
                self.server.push(body.clone()).await;
                self.server.push(body).await
            }
            Fate::Hold => {
                self.held.borrow_mut().push(body);
                None
            }
        }
    }

    async fn pull(&self, since: Option<&str>, limit: u32) -> Option<Response> {
        let left = self.pages_left.get();
        if left == 0 {
            return None;
        }
        self.pages_left.set(left - 1);
        self.server.pull(since, limit).await
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        device: usize,
        key: usize,
        delete: bool,
    },
    Push {
        device: usize,
        fate: Fate,
    },
    Pull {
        device: usize,
        page_size: u32,
        pages: u8,
    },
    DeliverHeld {
        pick: prop::sample::Index,
    },
    Tick {
        ms: i64,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Each device's physical clock, ahead of or behind the server's.
    skews: Vec<i64>,
    ops: Vec<Op>,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        4 => Just(Fate::Deliver),
        1 => Just(Fate::LoseRequest),
        1 => Just(Fate::LoseResponse),
        1 => Just(Fate::Duplicate),
        2 => Just(Fate::Hold),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let device = 0usize..5;
    prop_oneof![
        5 => (device.clone(), 0..KEYS.len(), prop::bool::weighted(0.3))
            .prop_map(|(device, key, delete)| Op::Write { device, key, delete }),
        3 => (device.clone(), fate()).prop_map(|(device, fate)| Op::Push { device, fate }),
        3 => (device, 1u32..4, 0u8..4)
            .prop_map(|(device, page_size, pages)| Op::Pull { device, page_size, pages }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::DeliverHeld { pick }),
        1 => (0i64..2_000).prop_map(|ms| Op::Tick { ms }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(-60_000i64..60_000, 2..=5),
        prop::collection::vec(op(), 1..60),
    )
        .prop_map(|(skews, ops)| Scenario { skews, ops })
}

/// The app on a test server, and the sync service of one signed-in user, for many cases.
struct Fixture {
    server: TestServer,
    direct: Direct,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let server = crate::support::start(backend, &[]).await;
        let (_, user_id) = server.signup_bearer("ann@example.com").await;
        let engine = app_rows::Engine::new(EngineContext {
            db: server.db.clone(),
            clock: server.clock.clone(),
            vars: Vars::from_pairs([]),
            keys: server.auth.config().keys.clone(),
        })
        .unwrap();
        let direct = Direct {
            sync: engine.sync().clone(),
            user_id,
        };
        Self { server, direct }
    }

    /// Forgets the user's rows, so that every case starts empty.
    async fn reset(&self) {
        let mut tx = self.server.db.begin().await.unwrap();
        app_rows::store::delete_user(&mut tx, &self.direct.user_id.as_str().into())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    fn now(&self) -> i64 {
        self.server.clock.now_ms()
    }
}

async fn devices_converge(f: &Fixture, s: Scenario) -> Result<(), TestCaseError> {
    f.reset().await;
    let mut devices: Vec<Device> = (0..s.skews.len())
        .map(|i| Device::new(&format!("device-{i}")))
        .collect();
    let held = RefCell::new(Vec::new());
    let mut writes: Vec<Row> = Vec::new();
    for op in s.ops {
        match op {
            Op::Write {
                device,
                key,
                delete,
            } => {
                let d = device % devices.len();
                let now = f.now() + s.skews[d];
                let (collection, id) = KEYS[key];
                let n = writes.len();
                let row = if delete {
                    devices[d].delete(now, collection, id)
                } else {
                    devices[d].put(now, collection, id, json!({"by": d, "n": n}))
                };
                writes.push(row);
            }
            Op::Push { device, fate } => {
                let d = device % devices.len();
                let network = Network {
                    server: &f.direct,
                    fate,
                    pages_left: Cell::new(0),
                    held: &held,
                };
                let _ = devices[d].push(&network).await;
            }
            Op::Pull {
                device,
                page_size,
                pages,
            } => {
                let d = device % devices.len();
                devices[d].page_size = page_size;
                let network = Network {
                    server: &f.direct,
                    fate: Fate::Deliver,
                    pages_left: Cell::new(pages),
                    held: &held,
                };
                let _ = devices[d].pull(&network).await;
            }
            Op::DeliverHeld { pick } => {
                let body = {
                    let mut held = held.borrow_mut();
                    let n = held.len();
                    (n > 0).then(|| held.remove(pick.index(n)))
                };
                if let Some(body) = body {
                    f.direct.push(body).await;
                }
            }
            Op::Tick { ms } => f
                .server
                .clock
                .advance(std::time::Duration::from_millis(ms as u64)),
        }
    }

    // The network heals: late pushes land, then every device syncs, then every device pulls.
    for body in held.take() {
        f.direct.push(body).await;
    }
    for device in &mut devices {
        device.sync(&f.direct).await.expect("a reliable sync");
    }
    for device in &mut devices {
        device.pull(&f.direct).await.expect("a reliable pull");
    }

    let mut greatest: BTreeMap<Key, Row> = BTreeMap::new();
    for w in writes {
        if greatest
            .get(&w.key())
            .is_none_or(|g| w.cmp_version(g).is_gt())
        {
            greatest.insert(w.key(), w);
        }
    }
    let mut server = Device::new("observer");
    server.pull(&f.direct).await.expect("a reliable pull");
    prop_assert_eq!(
        server.rows(),
        &greatest,
        "the server holds the greatest versions"
    );
    for device in &devices {
        prop_assert_eq!(device.rows(), &greatest, "{} converged", device.node);
        prop_assert_eq!(device.unpushed(), 0);
        prop_assert!(device.rejected.is_empty(), "{:?}", device.rejected);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum PageOp {
    /// One reliable push of these writes (key, delete).
    Push(Vec<(usize, bool)>),
    /// One page of at most this many changes.
    Page(u32),
}

fn page_ops() -> impl Strategy<Value = Vec<PageOp>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec((0..KEYS.len(), any::<bool>()), 1..8).prop_map(PageOp::Push),
            (1u32..5).prop_map(PageOp::Page),
        ],
        1..40,
    )
}

/// Pages read while pushes land between them never repeat a change, and following the cursor
/// to the end gives every row in its latest state.
async fn pages_give_every_change_once(f: &Fixture, ops: Vec<PageOp>) -> Result<(), TestCaseError> {
    f.reset().await;
    let mut writer = Device::new("writer");
    let mut seen: BTreeSet<(Key, i64, i64)> = BTreeSet::new();
    let mut latest: BTreeMap<Key, Row> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut read_page =
        async |limit: u32, cursor: &mut Option<String>| -> Result<bool, TestCaseError> {
            let reply = f.direct.pull(cursor.as_deref(), limit).await.unwrap();
            prop_assert_eq!(reply.status, 200);
            let rows: Vec<Row> = serde_json::from_value(reply.body["changes"].clone()).unwrap();
            prop_assert!(rows.len() <= limit as usize);
            for row in rows {
                prop_assert!(
                    seen.insert((row.key(), row.ts, row.counter)),
                    "a change came twice: {:?}",
                    row
                );
                if let Some(before) = latest.get(&row.key()) {
                    prop_assert!(
                        row.cmp_version(before).is_gt(),
                        "{:?} after {:?}",
                        row,
                        before
                    );
                }
                latest.insert(row.key(), row);
            }
            *cursor = Some(reply.body["cursor"].as_str().unwrap().to_owned());
            Ok(reply.body["has_more"].as_bool().unwrap())
        };
    for op in ops {
        match op {
            PageOp::Push(writes) => {
                for (key, delete) in writes {
                    let (collection, id) = KEYS[key];
                    if delete {
                        writer.delete(f.now(), collection, id);
                    } else {
                        writer.put(f.now(), collection, id, json!({"k": key}));
                    }
                }
                writer.push(&f.direct).await.unwrap();
            }
            PageOp::Page(limit) => {
                read_page(limit, &mut cursor).await?;
            }
        }
    }
    while read_page(2, &mut cursor).await? {}
    prop_assert_eq!(&latest, writer.rows());
    Ok(())
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn converge(backend: Backend, cases: u32) {
    let system = actix_web::rt::System::new();
    let fixture = system.block_on(Fixture::new(backend));
    let result = TestRunner::new(config(cases)).run(&scenario(), |s| {
        system.block_on(devices_converge(&fixture, s))
    });
    system.block_on(fixture.server.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn paginate(backend: Backend, cases: u32) {
    let system = actix_web::rt::System::new();
    let fixture = system.block_on(Fixture::new(backend));
    let result = TestRunner::new(config(cases)).run(&page_ops(), |ops| {
        system.block_on(pages_give_every_change_once(&fixture, ops))
    });
    system.block_on(fixture.server.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}

mod sqlite {
    use super::*;

    #[test]
    fn devices_converge_under_loss_duplication_and_reordering() {
        converge(Backend::Sqlite, 64);
    }

    #[test]
    fn pagination_gives_every_change_exactly_once() {
        paginate(Backend::Sqlite, 32);
    }
}

mod postgres {
    use super::*;

    #[test]
    fn devices_converge_under_loss_duplication_and_reordering() {
        converge(Backend::Postgres, 24);
    }

    #[test]
    fn pagination_gives_every_change_exactly_once() {
        paginate(Backend::Postgres, 16);
    }
}
