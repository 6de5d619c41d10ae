//! `app-blob backup PATH` of the real binary, while it serves: the database and the save files
//! it names, which restore by copying both back.

use std::path::Path;

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};

use crate::support::*;

const EXE: &str = env!("CARGO_BIN_EXE_app-blob");
/// The same key for the service and the restored copy (on SQLite it is otherwise generated
/// beside the database, and kept out of backups on purpose).
const KEY: &str = "bWFueSByYW5kb20gYnl0ZXMgZm9yIHRoZSB0ZXN0IGtleSEhISEhIQ==";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn put(base_url: &str, token: &str, condition: (&str, &str), body: &[u8]) -> String {
    let reply = reqwest::Client::new()
        .put(format!("{base_url}/v1/save"))
        .bearer_auth(token)
        .header(condition.0, condition.1)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
    reply.headers()["etag"].to_str().unwrap().to_owned()
}

async fn get(base_url: &str, token: &str, path: &str) -> (u16, Vec<u8>) {
    let reply = reqwest::Client::new()
        .get(format!("{base_url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        reply.status().as_u16(),
        reply.bytes().await.unwrap().to_vec(),
    )
}

#[actix_web::test]
async fn a_backup_taken_while_serving_restores_every_version() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let vars = [("DATABASE_URL", database.url.as_str()), ("SECRET_KEY", KEY)];
    let mut service = ServiceProcess::start(EXE, &vars);
    let token = bearer_session(&service.base_url, "ann@example.com", false).await;
    let (a, b, c) = (
        random_bytes(400 * 1024),
        random_bytes(300 * 1024),
        random_bytes(200 * 1024),
    );
    let va = put(&service.base_url, &token, ("If-None-Match", "*"), &a).await;
    let vb = put(&service.base_url, &token, ("If-Match", &va), &b).await;

    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("backup.db");
    let (status, stderr) = ServiceProcess::run(EXE, &["backup", backup.to_str().unwrap()], &vars);
    assert!(status.success(), "{stderr}");
    // The service goes on: a write after the backup is not in it.
    put(&service.base_url, &token, ("If-Match", &vb), &c).await;
    // A second backup under the same name is refused, files and all.
    let (status, stderr) = ServiceProcess::run(EXE, &["backup", backup.to_str().unwrap()], &vars);
    assert!(!status.success());
    assert!(stderr.contains("exists already"), "{stderr}");
    assert!(service.terminate().success());

    // Restore: the two copied back where a service looks for them.
    let restored_dir = scratch.path().join("restored");
    std::fs::create_dir(&restored_dir).unwrap();
    let restored = restored_dir.join("app-blob.db");
    std::fs::copy(&backup, &restored).unwrap();
    copy_dir(&beside(&backup), &beside(&restored));
    let url = format!("sqlite://{}", restored.display());
    let service = ServiceProcess::start(EXE, &[("DATABASE_URL", &url), ("SECRET_KEY", KEY)]);
    let token = bearer_session(&service.base_url, "ann@example.com", true).await;
    let (status, current) = get(&service.base_url, &token, "/v1/save").await;
    assert_eq!(status, 200, "{}", service.logs());
    assert!(current == b, "the backup's current version is b");
    let old = format!("/v1/save/history/{}", va.trim_matches('"'));
    let (status, kept) = get(&service.base_url, &token, &old).await;
    assert_eq!(status, 200);
    assert!(kept == a, "the backup's history holds a");
}

/// A database whose saves are all in rows (or that has none) backs up too: its `PATH.blobs` is
/// empty.
#[actix_web::test]
async fn a_backup_of_saves_kept_in_rows_alone_succeeds() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let vars = [("DATABASE_URL", database.url.as_str()), ("SECRET_KEY", KEY)];
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty.db");
    let (status, stderr) = ServiceProcess::run(EXE, &["migrate"], &vars);
    assert!(status.success(), "{stderr}");
    let (status, stderr) = ServiceProcess::run(EXE, &["backup", empty.to_str().unwrap()], &vars);
    assert!(status.success(), "no save at all: {stderr}");
    assert!(empty.exists() && beside(&empty).is_dir());

    let mut service = ServiceProcess::start(EXE, &vars);
    let token = bearer_session(&service.base_url, "ann@example.com", false).await;
    let small = random_bytes(10 * 1024);
    put(&service.base_url, &token, ("If-None-Match", "*"), &small).await;
    let backup = scratch.path().join("rows.db");
    let (status, stderr) = ServiceProcess::run(EXE, &["backup", backup.to_str().unwrap()], &vars);
    assert!(status.success(), "saves in rows only: {stderr}");
    assert_eq!(std::fs::read_dir(beside(&backup)).unwrap().count(), 0);
    assert!(service.terminate().success());
}
