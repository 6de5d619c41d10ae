//! The app on a fresh database, signed-in users, and helpers for the save routes.

use auth_skeleton::db::{Backend as DbBackend, Db};
use auth_skeleton::read_db;
use auth_skeleton::testing::{Backend, Reply, TestServer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::TryRng as _;
use reqwest::Method;
use sha2::{Digest, Sha256};

/// The limit the tests run with unless they set their own.
pub const TEST_MAX_BYTES: &str = "1048576";

/// The app with `MAX_SAVE_BYTES` at 1 MiB and `vars` on top.
pub async fn start_with(backend: Backend, vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("MAX_SAVE_BYTES", TEST_MAX_BYTES)];
    all.extend_from_slice(vars);
    TestServer::start(backend, app_blob::spec(), &all, app_blob::engine()).await
}

/// The app with the test defaults.
pub async fn start(backend: Backend) -> TestServer {
    start_with(backend, &[]).await
}

/// A signed-in user (bearer session).
pub struct User<'a> {
    pub server: &'a TestServer,
    pub token: String,
    pub id: String,
}

impl<'a> User<'a> {
    pub async fn signup(server: &'a TestServer, email: &str) -> Self {
        let (token, id) = server.signup_bearer(email).await;
        Self { server, token, id }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server.request(method, path).bearer_auth(&self.token)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.server.send(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// `PUT /v1/save` with `body` and `headers`.
    pub async fn put(&self, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut request = self.request(Method::PUT, "/v1/save").body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// `DELETE /v1/save` with `headers`.
    pub async fn delete(&self, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.request(Method::DELETE, "/v1/save");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Creates the save; returns its ETag.
    pub async fn create(&self, body: &[u8]) -> String {
        let reply = self.put(body, &[("If-None-Match", "*")]).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        etag(&reply)
    }

    /// Replaces the save at `current`; returns the new ETag.
    pub async fn replace(&self, current: &str, body: &[u8]) -> String {
        let reply = self.put(body, &[("If-Match", current)]).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        etag(&reply)
    }
}

/// A reply's `ETag`, which must be there.
pub fn etag(reply: &Reply) -> String {
    reply.header("etag").expect("an ETag header").to_owned()
}

/// Asserts that `reply` is a problem+json error with `status` and `code`.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.code(), code, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

/// `n` bytes from the OS's random generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rngs::SysRng
        .try_fill_bytes(&mut buf)
        .expect("random bytes");
    buf
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `Content-Digest` value of `bytes`.
pub fn content_digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(bytes)))
}

/// How many rows of `table` belong to `user_id`.
pub async fn rows_of(server: &TestServer, table: &str, user_id: &str) -> i64 {
    // The table name is one of the tests' own literals.
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1");
    read_db!(server.db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_one(pool)
            .await
    })
    .expect("a count")
}

/// The engine's tables (`blob_*`) as the database's catalog lists them, sorted.
pub async fn blob_tables(db: &Db) -> Vec<String> {
    let sql = match db.backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name LIKE 'blob\\_%' ESCAPE '\\'"
        }
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name LIKE 'blob\\_%' ESCAPE '\\'"
        }
    };
    let mut names: Vec<String> = read_db!(db, |pool| sqlx::query_scalar(sql).fetch_all(pool).await)
        .expect("the table names");
    names.sort();
    names
}

/// How many rows of `blob_data` hold the bytes of no version (neither current nor in the
/// history) of any user: always 0 after a write committed.
pub async fn orphaned_data_rows(db: &Db) -> i64 {
    read_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM blob_data d
             WHERE NOT EXISTS (SELECT 1 FROM blob_saves s
                 WHERE s.user_id = d.user_id AND s.generation = d.generation)
             AND NOT EXISTS (SELECT 1 FROM blob_history h
                 WHERE h.user_id = d.user_id AND h.generation = d.generation)",
        )
        .fetch_one(pool)
        .await
    })
    .expect("a count")
}

/// Signs `email` up (or, with `login`, in) on a service process at `base_url` with a bearer
/// session; returns the token.
pub async fn bearer_session(base_url: &str, email: &str, login: bool) -> String {
    let route = if login { "login" } else { "signup" };
    let reply = reqwest::Client::new()
        .post(format!("{base_url}/v1/auth/{route}"))
        .json(&serde_json::json!({
            "email": email,
            "password": auth_skeleton::testing::TEST_PASSWORD,
            "session": "bearer",
        }))
        .send()
        .await
        .expect("the service answers");
    let body: serde_json::Value = reply.json().await.expect("a JSON answer");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token from {route}: {body}"))
        .to_owned()
}

/// The directory of the save files beside the SQLite database of `database_url`.
pub fn files_dir_of(database_url: &str) -> std::path::PathBuf {
    let database = auth_skeleton::db::sqlite_file(database_url).expect("a SQLite database file");
    beside(&database)
}

/// `PATH.blobs`: where the save files of the database (or backup) at `path` are.
pub fn beside(path: &std::path::Path) -> std::path::PathBuf {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".blobs");
    std::path::PathBuf::from(dir)
}

/// The save files in the store directory `dir` (not the temporary ones), sorted.
pub fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the files directory") {
        let entry = entry.unwrap();
        if entry.file_name() == "tmp" || !entry.file_type().unwrap().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files.sort();
    files
}

/// How many temporary files (uploads in progress or left over) the store directory `dir` holds.
pub fn temporary_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("tmp")).unwrap().count()
}

/// Waits up to five seconds for `done` (a background sweep, a request in flight); the caller
/// asserts what it expects afterwards.
pub async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
