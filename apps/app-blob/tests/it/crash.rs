//! The real binary: a save acknowledged with 2xx survives kill -9; bad settings stop it.

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};

use crate::support::*;

const EXE: &str = env!("CARGO_BIN_EXE_app-blob");

async fn an_acknowledged_save_survives_kill_9(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let vars = [("DATABASE_URL", database.url.as_str())];
    let client = reqwest::Client::new();
    let mut service = ServiceProcess::start(EXE, &vars);

    let token = bearer_session(&service.base_url, "ann@example.com", false).await;
    let body = random_bytes(2 * 1024 * 1024 + 3);
    let reply = client
        .put(format!("{}/v1/save", service.base_url))
        .bearer_auth(&token)
        .header("If-None-Match", "*")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let version = reply.headers()["etag"].to_str().unwrap().to_owned();

    service.kill();
    let service = ServiceProcess::start(EXE, &vars);
    let reply = client
        .get(format!("{}/v1/save", service.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", service.logs());
    assert_eq!(reply.headers()["etag"].to_str().unwrap(), version);
    let bytes = reply.bytes().await.unwrap();
    assert!(bytes == body, "the save came back different after kill -9");
}

async fn an_invalid_setting_stops_the_service_naming_it(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    // Files are kept beside a SQLite database file only: PostgreSQL refuses a threshold.
    let threshold = match backend {
        Backend::Sqlite => "lots",
        Backend::Postgres => "1MiB",
    };
    for (var, value) in [
        ("MAX_SAVE_BYTES", "0"),
        ("SAVE_HISTORY", "many"),
        ("SAVE_FILE_THRESHOLD", threshold),
    ] {
        let (status, stderr) = ServiceProcess::run(
            EXE,
            &["serve"],
            &[
                ("DATABASE_URL", &database.url),
                ("BIND", "127.0.0.1:0"),
                (var, value),
            ],
        );
        assert!(!status.success());
        assert!(stderr.contains(var), "{stderr}");
        // `check-config` runs the same checks.
        let (status, stderr) = ServiceProcess::run(
            EXE,
            &["check-config"],
            &[("DATABASE_URL", &database.url), (var, value)],
        );
        assert!(!status.success(), "check-config passed {var}={value}");
        assert!(stderr.contains(var), "{stderr}");
    }
    // And both accept a threshold beside a SQLite file.
    if backend == Backend::Sqlite {
        let vars = [
            ("DATABASE_URL", database.url.as_str()),
            ("SAVE_FILE_THRESHOLD", "1MiB"),
        ];
        let (status, stderr) = ServiceProcess::run(EXE, &["check-config"], &vars);
        assert!(status.success(), "{stderr}");
    }
}

/// What the service answers for ann's save: `(status, ETag, bytes)`.
async fn current_save(base_url: &str, token: &str) -> (u16, String, Vec<u8>) {
    let reply = reqwest::Client::new()
        .get(format!("{base_url}/v1/save"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let tag = reply
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, tag, reply.bytes().await.unwrap().to_vec())
}

/// The service killed at each step of a write that goes to a file (the body synced to its
/// temporary file; renamed into place; the directory synced; the row committed) comes back with
/// one whole version, the old one unless the row had committed, and no file that no row names.
#[actix_web::test]
async fn a_crash_at_any_step_of_a_file_write_leaves_one_whole_version() {
    let client = reqwest::Client::new();
    for (point, committed) in [
        ("save-file-synced", false),
        ("save-file-renamed", false),
        ("save-file-placed", false),
        ("save-committed", true),
    ] {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let dir = files_dir_of(&database.url);
        let vars = [("DATABASE_URL", database.url.as_str())];
        let mut service = ServiceProcess::start(EXE, &vars);
        let token = bearer_session(&service.base_url, "ann@example.com", false).await;
        let old = random_bytes(300 * 1024);
        let reply = client
            .put(format!("{}/v1/save", service.base_url))
            .bearer_auth(&token)
            .header("If-None-Match", "*")
            .body(old.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        let old_tag = reply.headers()["etag"].to_str().unwrap().to_owned();
        assert!(service.terminate().success());

        let crashing = [
            ("DATABASE_URL", database.url.as_str()),
            ("APP_BLOB_CRASH_AT", point),
        ];
        let mut service = ServiceProcess::start(EXE, &crashing);
        let new = random_bytes(500 * 1024);
        let reply = client
            .put(format!("{}/v1/save", service.base_url))
            .bearer_auth(&token)
            .header("If-Match", &old_tag)
            .body(new.clone())
            .send()
            .await;
        assert!(reply.is_err(), "{point}: the service answered: {reply:?}");
        service.kill();
        assert!(
            service.logs().contains(point),
            "{point}: {}",
            service.logs()
        );

        let service = ServiceProcess::start(EXE, &vars);
        let (status, tag, bytes) = current_save(&service.base_url, &token).await;
        assert_eq!(status, 200, "{point}: {}", service.logs());
        if committed {
            assert_ne!(tag, old_tag, "{point}");
            assert!(
                bytes == new,
                "{point}: the committed version came back different"
            );
        } else {
            assert_eq!(tag, old_tag, "{point}");
            assert!(bytes == old, "{point}: the old version came back different");
        }
        // The start-up sweep leaves exactly the files the rows name: the current version's, and
        // the old one's in the history once the new one committed.
        let expected = if committed { 2 } else { 1 };
        settle(|| stored_files(&dir).len() == expected && temporary_files(&dir) == 0).await;
        let left = (stored_files(&dir), temporary_files(&dir));
        assert_eq!((left.0.len(), left.1), (expected, 0), "{point}: {left:?}");
    }
}

auth_skeleton::both_backends!(
    an_acknowledged_save_survives_kill_9,
    an_invalid_setting_stops_the_service_naming_it,
);
