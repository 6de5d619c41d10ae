//! Upgrading a database of the first schema, where each version's bytes sat in its meta row, to
//! the one where they live in `blob_data`: the migration moves them, and the service then serves
//! the same bytes, ETags and meta for the current save and every kept version, and goes on
//! numbering versions from where the counter was.

use auth_skeleton::clock::Clock;
use auth_skeleton::config::{Settings, Vars};
use auth_skeleton::db::Db;
use auth_skeleton::db::{APP_MIGRATIONS_TABLE, Migrations, claim_ownership};
use auth_skeleton::testing::{Backend, TEST_PASSWORD, TestDatabase};
use auth_skeleton::{Auth, execute_db, read_db, service};
use reqwest::Method;
use serde_json::Value;
use sqlx::migrate::Migrator;

use app_blob::version::{Meta, VersionRow};

use crate::support::*;

const NOW_MS: i64 = 1_764_307_200_000;

/// The app's migrations as its first schema had them: 0001 alone, tracked where the app's are,
/// so that the current migrations continue from there.
fn first_schema() -> Migrations {
    let current = app_blob::spec().migrations;
    let only_0001 = |all: &Migrator| {
        let mut first =
            Migrator::with_migrations(all.iter().filter(|m| m.version == 1).cloned().collect());
        first.dangerous_set_table_name(APP_MIGRATIONS_TABLE);
        first
    };
    Migrations {
        sqlite: only_0001(&current.sqlite),
        postgres: only_0001(&current.postgres),
    }
}

/// A version as the first schema stored it.
struct OldVersion {
    generation: i64,
    row: VersionRow,
    bytes: Vec<u8>,
}

impl OldVersion {
    fn new(generation: i64, bytes: Vec<u8>, device_name: Option<&str>) -> Self {
        Self {
            generation,
            row: VersionRow {
                tag: app_blob::version::mint_tag(generation),
                size: bytes.len() as i64,
                sha256: sha256_hex(&bytes),
                updated_at: NOW_MS - 1_000_000 + generation * 1_000,
                device_name: device_name.map(str::to_owned),
            },
            bytes,
        }
    }

    fn meta(&self) -> Value {
        serde_json::to_value(Meta::from(&self.row)).unwrap()
    }
}

/// A user's save data as the first schema's engine wrote it.
struct OldSaves {
    counter: i64,
    current: Option<OldVersion>,
    /// Newest first.
    history: Vec<OldVersion>,
}

async fn write_old(db: &Db, user_id: &str, saves: &OldSaves) {
    execute_db!(
        db,
        sqlx::query("INSERT INTO blob_counters (user_id, generation) VALUES ($1, $2)")
            .bind(user_id)
            .bind(saves.counter)
    )
    .expect("the counter row");
    if let Some(v) = &saves.current {
        execute_db!(
            db,
            sqlx::query(
                "INSERT INTO blob_saves
                     (user_id, generation, tag, size, sha256, updated_at, device_name, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(user_id)
            .bind(v.generation)
            .bind(&v.row.tag)
            .bind(v.row.size)
            .bind(&v.row.sha256)
            .bind(v.row.updated_at)
            .bind(&v.row.device_name)
            .bind(&v.bytes)
        )
        .expect("the save row");
    }
    for v in &saves.history {
        execute_db!(
            db,
            sqlx::query(
                "INSERT INTO blob_history
                     (user_id, generation, tag, size, sha256, updated_at, device_name, data,
                      replaced_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(user_id)
            .bind(v.generation)
            .bind(&v.row.tag)
            .bind(v.row.size)
            .bind(&v.row.sha256)
            .bind(v.row.updated_at)
            .bind(&v.row.device_name)
            .bind(&v.bytes)
            .bind(v.row.updated_at + 500)
        )
        .expect("a history row");
    }
}

/// `GET base + path` with the session `token`: status, ETag, body.
async fn get(base: &str, token: &str, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = reqwest::Client::new()
        .request(Method::GET, format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, etag, response.bytes().await.unwrap().to_vec())
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON body")
}

/// `data` is no longer a column of `table`.
async fn assert_no_data_column(db: &Db, table: &str) {
    // The table name is one of the test's own literals.
    let sql = format!("SELECT COUNT(data) FROM {table}");
    let result: Result<i64, _> = read_db!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
    });
    assert!(result.is_err(), "{table} still has a data column");
}

async fn saves_and_history_survive_the_move_of_the_bytes(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", database.url.as_str()),
        ("BIND", "127.0.0.1:0"),
        ("PUBLIC_URL", "http://app.test"),
        ("SECRET_KEY", auth_skeleton::testing::TEST_SECRET_KEY),
    ]);
    let settings = Settings::from_vars("app-blob", 0, &vars).expect("valid settings");
    let clock = Clock::manual(NOW_MS);

    // The database as the first schema left it: ann has a save and three older versions (one of
    // them empty, one large enough for overflow pages and TOAST); bob deleted his save, so only
    // his history is left.
    let db = Db::connect(&database.url).await.unwrap();
    claim_ownership(&db, "app-blob", NOW_MS).await.unwrap();
    Migrations::auth().run(&db).await.unwrap();
    first_schema().run(&db).await.unwrap();
    let current = app_blob::spec().migrations;
    assert_eq!(current.applied_version(&db).await.unwrap(), Some(1));
    let auth = Auth::new(db.clone(), settings.auth.clone(), clock.clone(), Vec::new()).unwrap();
    let ann = auth
        .signup("ann@example.com", &TEST_PASSWORD.into(), None)
        .await
        .unwrap();
    let bob = auth
        .signup("bob@example.com", &TEST_PASSWORD.into(), None)
        .await
        .unwrap();
    let ann_saves = OldSaves {
        counter: 5,
        current: Some(OldVersion::new(5, random_bytes(300_000), Some("old phone"))),
        history: vec![
            OldVersion::new(4, Vec::new(), None),
            OldVersion::new(2, b"second".to_vec(), Some("old phone")),
            OldVersion::new(1, random_bytes(70_000), Some("tablet")),
        ],
    };
    let bob_saves = OldSaves {
        counter: 3,
        current: None,
        history: vec![
            OldVersion::new(2, random_bytes(9_000), None),
            OldVersion::new(1, b"bob's first".to_vec(), None),
        ],
    };
    write_old(&db, &ann.user.id, &ann_saves).await;
    write_old(&db, &bob.user.id, &bob_saves).await;
    drop(auth);
    db.close().await;

    // The upgrade, as the service runs it at start.
    let spec = app_blob::spec();
    let db = service::open(&spec, &settings, &clock)
        .await
        .expect("the upgrade applies");
    let latest = current.sqlite.iter().map(|m| m.version).max();
    assert!(latest > Some(1), "the app has migrations past 0001");
    assert_eq!(current.applied_version(&db).await.unwrap(), latest);
    assert_no_data_column(&db, "blob_saves").await;
    assert_no_data_column(&db, "blob_history").await;
    assert_eq!(orphaned_data_rows(&db).await, 0);

    let running = service::start(
        &spec,
        &settings,
        db.clone(),
        clock.clone(),
        vars,
        app_blob::engine(),
    )
    .await
    .expect("the service starts");
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    let base = format!("http://{}", running.addr);

    for (signed_in, saves) in [(&ann, &ann_saves), (&bob, &bob_saves)] {
        let token = signed_in.token.as_str();
        let (status, etag, bytes) = get(&base, token, "/v1/save").await;
        match &saves.current {
            Some(v) => {
                assert_eq!(status, 200);
                assert_eq!(etag, Some(Meta::from(&v.row).version));
                assert!(bytes == v.bytes, "the current save changed");
                let (status, _, meta) = get(&base, token, "/v1/save/meta").await;
                assert_eq!(status, 200);
                assert_eq!(json(&meta), v.meta());
            }
            None => assert_eq!(status, 404),
        }
        let (status, _, history) = get(&base, token, "/v1/save/history").await;
        assert_eq!(status, 200);
        let expected: Vec<Value> = saves.history.iter().map(OldVersion::meta).collect();
        assert_eq!(json(&history)["versions"], Value::Array(expected));
        for v in &saves.history {
            let path = format!("/v1/save/history/{}", v.row.tag);
            let (status, etag, bytes) = get(&base, token, &path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(etag, Some(Meta::from(&v.row).version));
            assert!(bytes == v.bytes, "history version {} changed", v.row.tag);
        }
    }

    // Writing on after the upgrade: the counter goes on, and the replaced save keeps its bytes.
    let old_current = ann_saves.current.as_ref().unwrap();
    let reply = reqwest::Client::new()
        .put(format!("{base}/v1/save"))
        .bearer_auth(&ann.token)
        .header("If-Match", Meta::from(&old_current.row).version)
        .body(b"after the upgrade".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("\"g6-"), "{etag}");
    let path = format!("/v1/save/history/{}", old_current.row.tag);
    assert!(get(&base, &ann.token, &path).await.2 == old_current.bytes);
    assert_eq!(
        get(&base, &ann.token, "/v1/save").await.2,
        b"after the upgrade"
    );
    assert_eq!(orphaned_data_rows(&db).await, 0);

    handle.stop(true).await;
    db.close().await;
}

auth_skeleton::both_backends!(saves_and_history_survive_the_move_of_the_bytes);
