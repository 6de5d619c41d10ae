//! Large saves in files beside the SQLite database: what is written, shared, collected and
//! served, and the ranges of a download (on both storages and both databases).

use std::path::PathBuf;

use auth_skeleton::read_db;
use auth_skeleton::testing::{Backend, TEST_PASSWORD, TestServer};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// The directory of the save files beside a SQLite test server's database.
fn files_dir(server: &TestServer) -> PathBuf {
    files_dir_of(&server.database.url)
}

/// `(rows naming a file, rows holding their bytes)` of `blob_data`.
async fn data_rows(server: &TestServer) -> (i64, i64) {
    read_db!(&server.db, |pool| {
        sqlx::query_as(
            "SELECT COUNT(file), COUNT(*) - COUNT(file) FROM blob_data WHERE length(data) > 0 OR file IS NOT NULL",
        )
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// The app on SQLite with saves of 128 KiB and more in files (so that the tests' saves of a few
/// hundred KiB are files), unless `vars` set another threshold.
async fn files_server(vars: &[(&str, &str)]) -> TestServer {
    let mut all = vars.to_vec();
    if !vars.iter().any(|(name, _)| *name == "SAVE_FILE_THRESHOLD") {
        all.push(("SAVE_FILE_THRESHOLD", "128KiB"));
    }
    start_with(Backend::Sqlite, &all).await
}

#[actix_web::test]
async fn a_large_save_is_a_file_and_versions_with_the_same_bytes_share_it() {
    let server = files_server(&[]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let (a, b) = (random_bytes(200 * 1024), random_bytes(300 * 1024));

    let v1 = ann.create(&a).await;
    let v2 = ann.replace(&v1, &b).await;
    let v3 = ann.replace(&v2, &a).await;
    // Three versions (A current, B and A in the history), two distinct contents: two files.
    assert_eq!(stored_files(&dir).len(), 2);
    assert_eq!(
        data_rows(&server).await,
        (3, 0),
        "every version names a file"
    );
    assert_eq!(temporary_files(&dir), 0);

    let current = ann.get("/v1/save").await;
    assert_eq!(current.status, 200);
    assert_eq!(current.bytes, a);
    assert_eq!(etag(&current), v3);
    for (version, bytes) in [(&v1, &a), (&v2, &b)] {
        let path = format!("/v1/save/history/{}", version.trim_matches('"'));
        let old = ann.get(&path).await;
        assert_eq!(old.status, 200, "{path}");
        assert_eq!(&old.bytes, bytes, "{path}");
    }
    // Another account's identical bytes get a file of their own: nothing is shared between
    // accounts.
    let bob = User::signup(&server, "bob@example.com").await;
    bob.create(&a).await;
    assert_eq!(stored_files(&dir).len(), 3);
    // The files are private to the service.
    #[cfg(unix)]
    for file in stored_files(&dir) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[actix_web::test]
async fn a_small_save_stays_in_its_row() {
    // The default threshold (256 KiB): a save below it is a row, one of it a file.
    let server = start_with(Backend::Sqlite, &[]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let small = random_bytes(64 * 1024);
    ann.create(&small).await;
    assert!(stored_files(&files_dir(&server)).is_empty());
    assert_eq!(data_rows(&server).await, (0, 1));
    assert_eq!(ann.get("/v1/save").await.bytes, small);
    let large = random_bytes(256 * 1024);
    let bob = User::signup(&server, "bob@example.com").await;
    bob.create(&large).await;
    assert_eq!(stored_files(&files_dir(&server)).len(), 1);
    assert_eq!(bob.get("/v1/save").await.bytes, large);

    // The threshold is the operator's: at 0 every save is a file, `off` keeps them all in rows.
    let all_files = files_server(&[("SAVE_FILE_THRESHOLD", "0")]).await;
    let cat = User::signup(&all_files, "cat@example.com").await;
    cat.create(b"tiny").await;
    assert_eq!(stored_files(&files_dir(&all_files)).len(), 1);
    assert_eq!(cat.get("/v1/save").await.bytes, b"tiny");
    let no_files = files_server(&[("SAVE_FILE_THRESHOLD", "off")]).await;
    let dan = User::signup(&no_files, "dan@example.com").await;
    dan.create(&random_bytes(900 * 1024)).await;
    assert!(stored_files(&files_dir(&no_files)).is_empty());
}

#[actix_web::test]
async fn a_file_goes_once_no_version_names_it() {
    let server = files_server(&[("SAVE_HISTORY", "0")]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(&random_bytes(200 * 1024)).await;
    let old = stored_files(&dir);
    let b = random_bytes(200 * 1024);
    let v2 = ann.replace(&v1, &b).await;
    let now = stored_files(&dir);
    assert_eq!(now.len(), 1, "no history: the replaced version's file went");
    assert_ne!(now, old);
    let reply = ann.delete(&[("If-Match", &v2)]).await;
    assert_eq!(reply.status, 204);
    assert!(stored_files(&dir).is_empty());
    assert_eq!(data_rows(&server).await, (0, 0));
}

#[actix_web::test]
async fn a_refused_upload_leaves_no_file_behind() {
    let server = files_server(&[]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(&random_bytes(200 * 1024)).await;
    let before = stored_files(&dir);
    let body = random_bytes(400 * 1024);

    let stale = ann.put(&body, &[("If-Match", "\"g999-stale\"")]).await;
    assert_problem(&stale, 412, "version_conflict");
    let digest = content_digest(b"something else");
    let wrong = ann
        .put(&body, &[("If-Match", &v1), ("Content-Digest", &digest)])
        .await;
    assert_problem(&wrong, 400, "digest_mismatch");
    let too_large = ann
        .put(&random_bytes(1024 * 1024 + 1), &[("If-Match", &v1)])
        .await;
    assert_problem(&too_large, 413, "payload_too_large");

    assert_eq!(stored_files(&dir), before);
    assert_eq!(temporary_files(&dir), 0);
    // Nor does the same bytes' file of the current version go when a write of them fails.
    let same = ann.get("/v1/save").await.bytes;
    let stale = ann.put(&same, &[("If-Match", "\"g999-stale\"")]).await;
    assert_eq!(stale.status, 412);
    assert_eq!(stored_files(&dir), before);
    assert_eq!(ann.get("/v1/save").await.bytes, same);
}

#[actix_web::test]
async fn files_no_row_names_are_swept_at_start() {
    let server = files_server(&[]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let bob = User::signup(&server, "bob@example.com").await;
    let kept = random_bytes(200 * 1024);
    ann.create(&kept).await;
    bob.create(&random_bytes(200 * 1024)).await;
    let anns = stored_files(&dir);
    assert_eq!(anns.len(), 2);
    // Bob's account goes, and its files with it, by the time the deletion is answered.
    let reply = bob
        .send(
            bob.request(Method::DELETE, "/v1/auth/account")
                .json(&json!({"password": TEST_PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204);
    let left = stored_files(&dir);
    assert_eq!(left.len(), 1, "bob's file went with his account");
    assert!(anns.contains(&left[0]));
    // A crash leaves a placed file whose row never committed and an unfinished upload.
    let stray = dir.join("ab").join("ab".repeat(32));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"placed, never committed").unwrap();
    let partial = dir.join("tmp").join("0123.part");
    std::fs::write(&partial, b"half an upload").unwrap();
    assert_eq!(stored_files(&dir).len(), 2);

    let again = server
        .start_another(
            app_blob::spec(),
            &[("MAX_SAVE_BYTES", TEST_MAX_BYTES)],
            app_blob::engine(),
        )
        .await;
    settle(|| stored_files(&dir).len() == 1 && temporary_files(&dir) == 0).await;
    let left = stored_files(&dir);
    assert_eq!(left.len(), 1, "only ann's file is named: {left:?}");
    assert!(anns.contains(&left[0]));
    assert_eq!(temporary_files(&dir), 0);
    let ann_again = User {
        server: &again,
        token: ann.token.clone(),
        id: ann.id.clone(),
    };
    assert_eq!(ann_again.get("/v1/save").await.bytes, kept);
}

async fn a_download_can_be_resumed_with_a_range(backend: Backend, vars: &[(&str, &str)]) {
    let server = start_with(backend, vars).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let body = random_bytes(300 * 1024 + 7);
    let size = body.len();
    let v1 = ann.create(&body).await;
    let range = |value: &str, if_range: Option<&str>| {
        let mut request = ann.request(Method::GET, "/v1/save").header("Range", value);
        if let Some(tag) = if_range {
            request = request.header("If-Range", tag);
        }
        ann.send(request)
    };

    let whole = ann.get("/v1/save").await;
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    for (value, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=300000-", 300_000, size - 1),
        ("bytes=-5", size - 5, size - 1),
        ("bytes=0-", 0, size - 1),
        ("bytes=100-99999999", 100, size - 1),
    ] {
        let part = range(value, None).await;
        assert_eq!(part.status, 206, "{value}");
        assert_eq!(part.bytes, body[first..=last], "{value}");
        let content_range = format!("bytes {first}-{last}/{size}");
        assert_eq!(part.header("content-range"), Some(content_range.as_str()));
        assert_eq!(part.header("etag"), Some(v1.as_str()));
        let length = (last - first + 1).to_string();
        assert_eq!(part.header("content-length"), Some(length.as_str()));
    }
    let resumed = range("bytes=1000-", Some(&v1)).await;
    assert_eq!(resumed.status, 206);
    assert_eq!(resumed.bytes, body[1000..]);

    let past = range(&format!("bytes={size}-"), None).await;
    assert_problem(&past, 416, "range_not_satisfiable");
    let unsatisfied = format!("bytes */{size}");
    assert_eq!(past.header("content-range"), Some(unsatisfied.as_str()));
    assert_eq!(past.header("accept-ranges"), Some("bytes"));
    let far = range("bytes=99999999999999999999-", None).await;
    assert_problem(&far, 416, "range_not_satisfiable");

    // Anything else is the whole save: several ranges, nonsense, and a part of a version that
    // is not current any more (a resumed download must not splice two versions).
    // Two Range lines are two ranges: the whole save.
    let two = ann
        .send(
            ann.request(Method::GET, "/v1/save")
                .header("Range", "bytes=0-1")
                .header("Range", "bytes=5-6"),
        )
        .await;
    assert_eq!(two.status, 200);
    assert_eq!(two.bytes, body);
    let v2_body = random_bytes(200 * 1024);
    let v2 = ann.replace(&v1, &v2_body).await;
    for (value, if_range) in [
        ("bytes=0-1,5-6", None),
        ("bytes=5-1", None),
        ("pages=1-2", None),
        ("bytes=0-9", Some(v1.as_str())),
    ] {
        let reply = range(value, if_range).await;
        assert_eq!(reply.status, 200, "{value} {if_range:?}");
        assert_eq!(reply.bytes, v2_body, "{value}");
        assert_eq!(reply.header("etag"), Some(v2.as_str()));
    }
    // The history's versions take ranges too.
    let old = format!("/v1/save/history/{}", v1.trim_matches('"'));
    let part = ann
        .send(ann.request(Method::GET, &old).header("Range", "bytes=-3"))
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, body[size - 3..]);
}

async fn ranges_of_a_save_kept_in_its_row(backend: Backend) {
    a_download_can_be_resumed_with_a_range(backend, &[("SAVE_FILE_THRESHOLD", "off")]).await;
}

#[actix_web::test]
async fn ranges_of_a_save_kept_in_a_file() {
    a_download_can_be_resumed_with_a_range(Backend::Sqlite, &[]).await;
}

auth_skeleton::both_backends!(ranges_of_a_save_kept_in_its_row);

#[actix_web::test]
async fn concurrent_writes_of_files_keep_exactly_the_files_rows_name() {
    let vars = [
        ("SAVE_FILE_THRESHOLD", "0"),
        ("SAVE_HISTORY", "0"),
        ("RATE_LIMIT_SAVE_USER", "off"),
    ];
    let server = files_server(&vars).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let a = random_bytes(200 * 1024);
    let base = ann.create(&a).await;

    // Writers of different bytes race on one version: one wins, and only its file stays (no
    // history is kept).
    let bodies: Vec<Vec<u8>> = (0..16).map(|_| random_bytes(150 * 1024)).collect();
    let guard = [("If-Match", base.as_str())];
    let replies = join_all(bodies.iter().map(|b| ann.put(b, &guard))).await;
    let winners: Vec<usize> = (0..bodies.len())
        .filter(|&i| replies[i].status == 200)
        .collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(stored_files(&dir).len(), 1);
    assert_eq!(temporary_files(&dir), 0);
    let current = etag(&replies[winners[0]]);
    assert_eq!(ann.get("/v1/save").await.bytes, bodies[winners[0]]);

    // Writers of the bytes that are already current race: the losers placed the very file the
    // winner names, and their clean-up must leave it.
    let same = bodies[winners[0]].clone();
    let guard = [("If-Match", current.as_str())];
    let replies = join_all((0..16).map(|_| ann.put(&same, &guard))).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1);
    assert_eq!(stored_files(&dir).len(), 1);
    let read = ann.get("/v1/save").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.bytes, same);

    // Reads racing writes that replace the save (and delete the replaced file) get one whole
    // version each, never a part or an error.
    let mut tag = etag(&read);
    let bodies = [random_bytes(300 * 1024), random_bytes(250 * 1024)];
    for round in 0..6 {
        let body = &bodies[round % 2];
        let guard = [("If-Match", tag.as_str())];
        let (written, reads) = tokio::join!(
            ann.put(body, &guard),
            join_all((0..4).map(|_| ann.get("/v1/save"))),
        );
        assert_eq!(written.status, 200, "{:?}", written.body);
        tag = etag(&written);
        for read in reads {
            assert_eq!(read.status, 200, "round {round}");
            assert!(
                read.bytes == bodies[0] || read.bytes == bodies[1] || read.bytes == same,
                "round {round}: a read got {} bytes of no version",
                read.bytes.len()
            );
        }
    }
    assert_eq!(stored_files(&dir).len(), 1);
}

/// A second instance started on the same database (an operator's mistake: SQLite is served by
/// one process) sweeps at start; it must leave the first one's upload in progress alone.
#[actix_web::test]
async fn a_second_instance_leaves_an_upload_in_progress_alone() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let server = files_server(&[]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    let body = random_bytes(600 * 1024);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut upload = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "PUT /v1/save HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         If-None-Match: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ann.token,
        body.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&body[..400 * 1024]).await.unwrap();
    settle(|| temporary_files(&dir) == 1).await;
    assert_eq!(
        temporary_files(&dir),
        1,
        "the upload is being written to its temporary file"
    );

    // A file no row names shows when the second instance's sweep has run.
    let stray = dir.join("cd").join("cd".repeat(32));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"stray").unwrap();
    let _second = server
        .start_another(
            app_blob::spec(),
            &[("MAX_SAVE_BYTES", TEST_MAX_BYTES)],
            app_blob::engine(),
        )
        .await;
    settle(|| !stray.exists()).await;
    assert!(!stray.exists(), "the second instance swept");
    assert_eq!(temporary_files(&dir), 1, "the upload's file is still there");

    upload.write_all(&body[400 * 1024..]).await.unwrap();
    let mut answer = String::new();
    upload.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(ann.get("/v1/save").await.bytes, body);
}

/// A file damaged outside the service (cut short on disk) is not sent as the version its ETag
/// names: the read fails as the server's fault.
#[actix_web::test]
async fn a_file_of_the_wrong_size_is_not_sent() {
    let server = files_server(&[]).await;
    let dir = files_dir(&server);
    let ann = User::signup(&server, "ann@example.com").await;
    ann.create(&random_bytes(200 * 1024)).await;
    let file = stored_files(&dir).pop().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let read = ann.get("/v1/save").await;
    assert_problem(&read, 500, "internal");
}
