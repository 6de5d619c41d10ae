//! `ROWS_BYTES_QUOTA`: the bytes of `data` a user keeps (tombstones count 0). A change that would
//! take the total above the quota is `rejected` (`quota_exceeded`, with `current`) while the
//! rest of its batch applies; a change that shrinks or keeps a row's size applies at the quota;
//! the per-user counter stays exact through writes, deletes, the purge and the upgrade that
//! adds it.

use std::time::Duration;

use auth_skeleton::clock::Clock;
use auth_skeleton::config::{Settings, Vars};
use auth_skeleton::db::Db;
use auth_skeleton::db::{APP_MIGRATIONS_TABLE, Migrations, claim_ownership};
use auth_skeleton::testing::{Backend, TEST_PASSWORD, TestDatabase, TestServer};
use auth_skeleton::{Auth, execute_db, read_db};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;

use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);

/// `{"v":"..."}` with a string that makes it exactly `bytes` bytes long.
fn sized(bytes: usize) -> Value {
    json!({"v": "x".repeat(bytes - 8)})
}

/// The byte length of `data` in the dialect of `db`.
fn data_bytes_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "COALESCE(length(CAST(data AS BLOB)), 0)",
        Db::Postgres(_) => "CAST(COALESCE(octet_length(data), 0) AS BIGINT)",
    }
}

/// The user's byte counter, after checking that it equals the bytes of the stored rows.
async fn counted_bytes(db: &Db, user_id: &str) -> i64 {
    let counter: i64 = read_db!(db, |pool| {
        sqlx::query_scalar("SELECT data_bytes FROM rows_users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
    })
    .expect("the user's counters");
    let sql = format!(
        "SELECT CAST(COALESCE(SUM({}), 0) AS BIGINT) FROM rows_items WHERE user_id = $1",
        data_bytes_sql(db)
    );
    let stored: i64 = read_db!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(user_id)
            .fetch_one(pool)
            .await
    })
    .expect("the user's rows");
    assert_eq!(counter, stored, "the counter drifted from the stored rows");
    counter
}

async fn signed_in(backend: Backend, vars: &[(&str, &str)]) -> (TestServer, String, String) {
    let server = start(backend, vars).await;
    let (token, user_id) = server.signup_bearer("ann@example.com").await;
    (server, token, user_id)
}

async fn a_change_past_the_byte_quota_is_rejected_and_the_rest_applies(backend: Backend) {
    let (server, token, user_id) = signed_in(backend, &[("ROWS_BYTES_QUOTA", "100")]).await;
    let reply = push(
        &server,
        &token,
        &[
            row("c", "a", 1, 0, "n", sized(60)),
            // 60 + 50 > 100.
            row("c", "b", 1, 0, "n", sized(50)),
            row("c", "c", 1, 0, "n", sized(30)),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply), ["applied", "rejected", "applied"]);
    assert_eq!(
        reply.body["results"][1],
        json!({"collection": "c", "id": "b", "status": "rejected", "reason": "quota_exceeded", "current": null})
    );
    assert_eq!(counted_bytes(&server.db, &user_id).await, 90);

    // Bytes, not characters: {"v":"é"} is 10 bytes and fits; {"v":"éé"} is 12 and does not,
    // nor does a row that grows past the quota, which answers with the row as it stands.
    let reply = push(
        &server,
        &token,
        &[
            row("c", "d", 1, 0, "n", json!({"v": "éé"})),
            row("c", "a", 2, 0, "n", sized(71)),
            row("c", "d", 2, 0, "n", json!({"v": "é"})),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), ["rejected", "rejected", "applied"]);
    assert_eq!(reply.body["results"][0]["reason"], "quota_exceeded");
    // `current` is the row as the batch left it.
    assert_eq!(
        reply.body["results"][0]["current"],
        row("c", "d", 2, 0, "n", json!({"v": "é"}))
    );
    assert_eq!(reply.body["results"][1]["reason"], "quota_exceeded");
    assert_eq!(
        reply.body["results"][1]["current"],
        row("c", "a", 1, 0, "n", sized(60))
    );
    assert_eq!(counted_bytes(&server.db, &user_id).await, 100);
    let rows = pull_all(&server, &token).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
}

async fn a_row_that_shrinks_or_keeps_its_size_applies_at_the_quota(backend: Backend) {
    let (server, token, user_id) = signed_in(backend, &[("ROWS_BYTES_QUOTA", "100")]).await;
    let full = [
        row("c", "a", 1, 0, "n", sized(60)),
        row("c", "b", 1, 0, "n", sized(40)),
    ];
    assert_eq!(
        statuses(&push(&server, &token, &full).await),
        ["applied", "applied"]
    );
    assert_eq!(counted_bytes(&server.db, &user_id).await, 100);
    let grow = [row("c", "a", 2, 0, "n", sized(61))];
    assert_eq!(statuses(&push(&server, &token, &grow).await), ["rejected"]);
    // The same size with other content, then smaller.
    let same = [row("c", "a", 3, 0, "n", json!({"v": "y".repeat(52)}))];
    assert_eq!(statuses(&push(&server, &token, &same).await), ["applied"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 100);
    let shrink = [row("c", "a", 4, 0, "n", sized(50))];
    assert_eq!(statuses(&push(&server, &token, &shrink).await), ["applied"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 90);
    // A smaller stale change changes nothing.
    let stale = [row("c", "a", 0, 0, "n", sized(10))];
    assert_eq!(statuses(&push(&server, &token, &stale).await), ["stale"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 90);
}

async fn deleting_rows_frees_room(backend: Backend) {
    let (server, token, user_id) = signed_in(backend, &[("ROWS_BYTES_QUOTA", "100")]).await;
    let full = [
        row("c", "a", 1, 0, "n", sized(60)),
        row("c", "b", 1, 0, "n", sized(40)),
    ];
    push(&server, &token, &full).await;
    let more = [row("c", "c", 1, 0, "n", sized(30))];
    assert_eq!(statuses(&push(&server, &token, &more).await), ["rejected"]);
    // A delete applies at the quota and frees the row's bytes for the next change of the batch.
    let reply = push(
        &server,
        &token,
        &[tombstone("c", "b", 2, 0, "n"), more[0].clone()],
    )
    .await;
    assert_eq!(statuses(&reply), ["applied", "applied"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 90);
    // A deleted row written again counts again.
    let again = [row("c", "b", 3, 0, "n", sized(11))];
    assert_eq!(statuses(&push(&server, &token, &again).await), ["rejected"]);
    let again = [row("c", "b", 3, 0, "n", sized(10))];
    assert_eq!(statuses(&push(&server, &token, &again).await), ["applied"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 100);
}

async fn the_counter_survives_the_purge(backend: Backend) {
    let vars = [("TOMBSTONE_RETENTION", "1d"), ("ROWS_BYTES_QUOTA", "100")];
    let (server, token, user_id) = signed_in(backend, &vars).await;
    let now = server.clock.now_ms();
    let changes = [
        row("c", "a", now, 0, "n", sized(60)),
        row("c", "b", now, 0, "n", sized(40)),
    ];
    push(&server, &token, &changes).await;
    push(&server, &token, &[tombstone("c", "b", now + 1, 0, "n")]).await;
    assert_eq!(counted_bytes(&server.db, &user_id).await, 60);
    server.clock.advance(DAY * 2);
    let report = engine(&server, &vars).purge_tombstones().await.unwrap();
    assert_eq!(report.tombstones, 1);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 60);
    let now = server.clock.now_ms();
    let over = [row("c", "c", now, 0, "n", sized(41))];
    assert_eq!(statuses(&push(&server, &token, &over).await), ["rejected"]);
    let fits = [row("c", "c", now, 0, "n", sized(40))];
    assert_eq!(statuses(&push(&server, &token, &fits).await), ["applied"]);
    assert_eq!(counted_bytes(&server.db, &user_id).await, 100);
}

/// The app's migrations before the byte counter: 0001 and 0002, tracked where the app's are.
fn before_the_byte_counter() -> Migrations {
    let current = app_rows::spec().migrations;
    let upto_0002 = |all: &Migrator| {
        let mut older =
            Migrator::with_migrations(all.iter().filter(|m| m.version <= 2).cloned().collect());
        older.dangerous_set_table_name(APP_MIGRATIONS_TABLE);
        older
    };
    Migrations {
        sqlite: upto_0002(&current.sqlite),
        postgres: upto_0002(&current.postgres),
    }
}

async fn write_old_row(db: &Db, user_id: &str, id: &str, seq: i64, data: Option<&str>) {
    execute_db!(
        db,
        sqlx::query(
            "INSERT INTO rows_items
                 (user_id, collection, id, ts, counter, node, deleted, data, seq, applied_at)
             VALUES ($1, 'c', $2, 1, 0, 'n', $3, $4, $5, 1)",
        )
        .bind(user_id)
        .bind(id)
        .bind(data.is_none())
        .bind(data)
        .bind(seq)
    )
    .expect("an old row");
}

async fn the_upgrade_fills_the_counter_from_the_stored_rows(backend: Backend) {
    const NOW_MS: i64 = 1_764_307_200_000;
    let database = TestDatabase::new(backend).await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", database.url.as_str()),
        ("BIND", "127.0.0.1:0"),
        ("PUBLIC_URL", "http://app.test"),
        ("SECRET_KEY", auth_skeleton::testing::TEST_SECRET_KEY),
    ]);
    let settings = Settings::from_vars("app-rows", 0, &vars).expect("valid settings");
    let db = Db::connect(&database.url).await.unwrap();
    claim_ownership(&db, "app-rows", NOW_MS).await.unwrap();
    Migrations::auth().run(&db).await.unwrap();
    before_the_byte_counter().run(&db).await.unwrap();
    let current = app_rows::spec().migrations;
    assert_eq!(current.applied_version(&db).await.unwrap(), Some(2));
    let auth = Auth::new(db.clone(), settings.auth, Clock::manual(NOW_MS), Vec::new()).unwrap();
    let mut users = Vec::new();
    for email in ["ann@example.com", "bob@example.com", "cy@example.com"] {
        let signed_up = auth
            .signup(email, &TEST_PASSWORD.into(), None)
            .await
            .unwrap();
        users.push(signed_up.user.id);
    }
    let (ann, bob, cy) = (&users[0], &users[1], &users[2]);
    // ann: ASCII, multi-byte text (2 and 4 bytes a character) and a tombstone; bob: only a
    // tombstone; cy: counters but no rows.
    for (user_id, last_seq, rows) in [(ann, 4, 4), (bob, 1, 1), (cy, 0, 0)] {
        execute_db!(
            db,
            sqlx::query(
                "INSERT INTO rows_users (user_id, last_seq, row_count, horizon, purge_epoch)
                 VALUES ($1, $2, $3, 0, 0)",
            )
            .bind(user_id)
            .bind(last_seq)
            .bind(rows)
        )
        .expect("old counters");
    }
    write_old_row(&db, ann, "a", 1, Some(r#"{"v":"abc"}"#)).await;
    write_old_row(&db, ann, "b", 2, Some(r#"{"v":"éé"}"#)).await;
    write_old_row(&db, ann, "c", 3, Some(r#"{"v":"😀"}"#)).await;
    write_old_row(&db, ann, "d", 4, None).await;
    write_old_row(&db, bob, "a", 1, None).await;
    drop(auth);

    current.run(&db).await.expect("the upgrade applies");
    let latest = current.sqlite.iter().map(|m| m.version).max();
    assert!(latest > Some(2));
    assert_eq!(current.applied_version(&db).await.unwrap(), latest);
    assert_eq!(counted_bytes(&db, ann).await, 11 + 12 + 12);
    assert_eq!(counted_bytes(&db, bob).await, 0);
    assert_eq!(counted_bytes(&db, cy).await, 0);
    db.close().await;
}

auth_skeleton::both_backends!(
    a_change_past_the_byte_quota_is_rejected_and_the_rest_applies,
    a_row_that_shrinks_or_keeps_its_size_applies_at_the_quota,
    deleting_rows_frees_room,
    the_counter_survives_the_purge,
    the_upgrade_fills_the_counter_from_the_stored_rows,
);
