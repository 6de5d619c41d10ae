//! Whatever `default_transaction_isolation` a PostgreSQL database was given, racing writers get
//! the answers of the contract, never a `500` from a serialization failure: of several blob
//! writers holding one ETag exactly one wins and the rest get `412`, and an account deleted
//! while its devices push is gone with its rows.

use auth_skeleton::db::Db;
use auth_skeleton::testing::{Backend, ServiceProcess, TEST_PASSWORD, TestDatabase};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use system_tests::binary;

use crate::http::{call, signup};

const RACERS: usize = 12;

/// The levels to run under: the database's own on SQLite, each PostgreSQL level otherwise.
fn levels(backend: Backend) -> Vec<Option<&'static str>> {
    match backend {
        Backend::Sqlite => vec![None],
        Backend::Postgres => vec![
            Some("read committed"),
            Some("repeatable read"),
            Some("serializable"),
        ],
    }
}

async fn database_at(backend: Backend, level: Option<&str>) -> TestDatabase {
    let database = TestDatabase::new(backend).await;
    if let (Some(level), Db::Postgres(pool)) = (level, Db::connect(&database.url).await.unwrap()) {
        let name = database.url.rsplit('/').next().unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} SET default_transaction_isolation = '{level}'"
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    database
}

/// `RACERS` concurrent `PUT /v1/save` with `header: value`; the statuses, sorted.
async fn racing_puts(base: &str, token: &str, header: &str, value: &str) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = join_all((0..RACERS).map(|i| {
        client
            .put(format!("{base}/v1/save"))
            .bearer_auth(token)
            .header(header, value)
            .body(format!("save of racer {i}"))
            .send()
    }))
    .await
    .into_iter()
    .map(|r| r.expect("the service answers").status().as_u16())
    .collect::<Vec<_>>();
    statuses.sort_unstable();
    statuses
}

async fn one_blob_writer_wins_under_every_isolation_level(backend: Backend) {
    for level in levels(backend) {
        let database = database_at(backend, level).await;
        let service =
            ServiceProcess::start(&binary("app-blob"), &[("DATABASE_URL", &database.url)]);
        let base = service.base_url.as_str();
        let (token, _) = signup(base, "ann@example.com").await;

        let created = racing_puts(base, &token, "If-None-Match", "*").await;
        let mut expected = vec![412; RACERS - 1];
        expected.insert(0, 201);
        assert_eq!(created, expected, "{level:?}: create\n{}", service.logs());

        let etag = reqwest::Client::new()
            .get(format!("{base}/v1/save/meta"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .headers()["etag"]
            .to_str()
            .unwrap()
            .to_owned();
        let replaced = racing_puts(base, &token, "If-Match", &etag).await;
        let mut expected = vec![412; RACERS - 1];
        expected.insert(0, 200);
        assert_eq!(replaced, expected, "{level:?}: replace\n{}", service.logs());
    }
}

async fn an_account_deleted_while_it_pushes_is_gone_under_every_isolation_level(backend: Backend) {
    for level in levels(backend) {
        let database = database_at(backend, level).await;
        let service =
            ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
        let base = service.base_url.as_str();
        let (token, _) = signup(base, "ann@example.com").await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let pushes = (0..RACERS).map(|i| {
            let change = json!({"collection": "notes", "id": format!("n{i}"), "ts": now,
                "counter": 0, "node": "d1", "deleted": false, "data": {"i": i}});
            call(
                base,
                Method::POST,
                "/v1/rows/push",
                Some(&token),
                Some(json!({"changes": [change]})),
            )
        });
        let deletion = call(
            base,
            Method::DELETE,
            "/v1/auth/account",
            Some(&token),
            Some(json!({"password": TEST_PASSWORD})),
        );
        let (pushed, deleted) = tokio::join!(join_all(pushes), deletion);
        assert_eq!(
            deleted.status,
            204,
            "{level:?}: {:?}\n{}",
            deleted.body,
            service.logs()
        );
        for reply in pushed {
            assert!(
                matches!(reply.status, 200 | 401),
                "{level:?}: a push racing the deletion got {} {:?}",
                reply.status,
                reply.body
            );
        }
        let db = Db::connect(&database.url).await.unwrap();
        let rows: i64 = auth_skeleton::read_db!(db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM rows_items")
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(rows, 0, "{level:?}: rows outlived their account");
        db.close().await;
    }
}

auth_skeleton::both_backends!(
    one_blob_writer_wins_under_every_isolation_level,
    an_account_deleted_while_it_pushes_is_gone_under_every_isolation_level,
);
