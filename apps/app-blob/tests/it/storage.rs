//! A version's bytes are written once, when it is created: never copied into the history, never
//! updated, and deleted once neither the save nor the history refers to them.

use auth_skeleton::db::{Backend as DbBackend, Db};
use auth_skeleton::testing::{Backend, TestServer};
use auth_skeleton::{execute_db, read_db};

use crate::support::*;

/// Logs every insert and update of a `blob_data` row into `test_data_writes`, so that a test can
/// tell how often each version's bytes were written.
async fn log_data_writes(db: &Db) {
    let sql = match db.backend() {
        DbBackend::Sqlite => {
            "CREATE TABLE test_data_writes (user_id TEXT NOT NULL, generation BIGINT NOT NULL, op TEXT NOT NULL);
             CREATE TRIGGER test_data_inserted AFTER INSERT ON blob_data BEGIN
                 INSERT INTO test_data_writes VALUES (NEW.user_id, NEW.generation, 'INSERT');
             END;
             CREATE TRIGGER test_data_updated AFTER UPDATE ON blob_data BEGIN
                 INSERT INTO test_data_writes VALUES (NEW.user_id, NEW.generation, 'UPDATE');
             END;"
        }
        DbBackend::Postgres => {
            "CREATE TABLE test_data_writes (user_id TEXT NOT NULL, generation BIGINT NOT NULL, op TEXT NOT NULL);
             CREATE FUNCTION test_log_data_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO test_data_writes VALUES (NEW.user_id, NEW.generation, TG_OP);
                 RETURN NULL;
             END $$;
             CREATE TRIGGER test_data_written AFTER INSERT OR UPDATE ON blob_data
                 FOR EACH ROW EXECUTE FUNCTION test_log_data_write();"
        }
    };
    execute_db!(db, sqlx::raw_sql(sql)).expect("the write log");
}

/// The logged writes of `user_id`'s bytes, as `(generation, "INSERT" | "UPDATE")`, in order.
async fn data_writes(db: &Db, user_id: &str) -> Vec<(i64, String)> {
    read_db!(db, |pool| {
        sqlx::query_as(
            "SELECT generation, op FROM test_data_writes WHERE user_id = $1
             ORDER BY generation, op",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await
    })
    .expect("the write log")
}

/// The generation of a version, from its ETag `"g<generation>-<random>"`.
fn generation(etag: &str) -> i64 {
    let tag = etag.trim_matches('"');
    tag[1..tag.find('-').expect("a dash")]
        .parse()
        .expect("a generation")
}

fn history_path(etag: &str) -> String {
    format!("/v1/save/history/{}", etag.trim_matches('"'))
}

/// The bytes are checked on the database as well as through HTTP: the routes alone cannot tell
/// a kept copy from a dropped one.
async fn assert_kept(server: &TestServer, user_id: &str, current: usize, history: usize) {
    assert_eq!(rows_of(server, "blob_saves", user_id).await, current as i64);
    assert_eq!(
        rows_of(server, "blob_history", user_id).await,
        history as i64
    );
    assert_eq!(
        rows_of(server, "blob_data", user_id).await,
        (current + history) as i64,
        "blob_data holds the current and the kept versions, nothing else"
    );
    assert_eq!(orphaned_data_rows(&server.db).await, 0);
}

async fn each_version_is_written_once_and_kept_while_referenced(backend: Backend) {
    let server = start_with(backend, &[("SAVE_HISTORY", "2")]).await;
    log_data_writes(&server.db).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let bob = User::signup(&server, "bob@example.com").await;
    // Large enough to need overflow pages on SQLite and TOAST on PostgreSQL.
    let bobs = random_bytes(100_000);
    bob.create(&bobs).await;

    let mut bodies = vec![random_bytes(200_000)];
    let mut etags = vec![ann.create(&bodies[0]).await];
    assert_kept(&server, &ann.id, 1, 0).await;
    for i in 1..6 {
        bodies.push(random_bytes(200_000 + i));
        let next = ann.replace(etags.last().unwrap(), &bodies[i]).await;
        etags.push(next);
        assert_kept(&server, &ann.id, 1, i.min(2)).await;
    }

    // v5 is current; v4 and v3 are the kept history, and read back after the later writes.
    assert!(ann.get("/v1/save").await.bytes == bodies[5]);
    for i in [3, 4] {
        let reply = ann.get(&history_path(&etags[i])).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("etag"), Some(etags[i].as_str()));
        assert!(reply.bytes == bodies[i], "history version {i}");
    }
    for pruned in &etags[..3] {
        assert_problem(&ann.get(&history_path(pruned)).await, 404, "not_found");
    }

    // A delete moves v5 into the history and pushes v3 out, with its bytes.
    assert_eq!(ann.delete(&[("If-Match", &etags[5])]).await.status, 204);
    assert_kept(&server, &ann.id, 0, 2).await;
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    for i in [4, 5] {
        assert!(ann.get(&history_path(&etags[i])).await.bytes == bodies[i]);
    }
    assert_problem(&ann.get(&history_path(&etags[3])).await, 404, "not_found");

    // Six versions, six inserts, each generation once; no update of any bytes ever ran.
    let expected: Vec<(i64, String)> = etags
        .iter()
        .map(|e| (generation(e), "INSERT".to_owned()))
        .collect();
    assert_eq!(data_writes(&server.db, &ann.id).await, expected);

    // The other user's save was never touched by ann's pruning.
    assert_kept(&server, &bob.id, 1, 0).await;
    assert!(bob.get("/v1/save").await.bytes == bobs);
    assert_eq!(data_writes(&server.db, &bob.id).await.len(), 1);
}

async fn without_history_only_the_current_bytes_are_kept(backend: Backend) {
    let server = start_with(backend, &[("SAVE_HISTORY", "0")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let mut current = ann.create(&random_bytes(50_000)).await;
    for _ in 0..3 {
        current = ann.replace(&current, &random_bytes(50_000)).await;
        assert_kept(&server, &ann.id, 1, 0).await;
    }
    assert_eq!(ann.delete(&[("If-Match", &current)]).await.status, 204);
    assert_kept(&server, &ann.id, 0, 0).await;
    let body = random_bytes(50_000);
    ann.create(&body).await;
    assert_kept(&server, &ann.id, 1, 0).await;
    assert!(ann.get("/v1/save").await.bytes == body);
}

/// The schema itself refuses to drop bytes that a version still refers to.
async fn bytes_in_use_cannot_be_deleted(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"first").await;
    let v2 = ann.replace(&v1, b"second").await;
    for (etag, referred_by) in [(&v1, "the history"), (&v2, "the save")] {
        let deleted = execute_db!(
            server.db,
            sqlx::query("DELETE FROM blob_data WHERE user_id = $1 AND generation = $2")
                .bind(&ann.id)
                .bind(generation(etag))
        );
        assert!(
            deleted.is_err(),
            "bytes referred to by {referred_by} were deleted"
        );
    }
    assert_eq!(ann.get("/v1/save").await.bytes, b"second");
    assert_eq!(ann.get(&history_path(&v1)).await.bytes, b"first");
}

auth_skeleton::both_backends!(
    each_version_is_written_once_and_kept_while_referenced,
    without_history_only_the_current_bytes_are_kept,
    bytes_in_use_cannot_be_deleted,
);
