//! Test support for apps built on this crate (feature `testing`): a fresh database per test on
//! SQLite or PostgreSQL, and the real service on a real port.
//!
//! ```ignore
//! use auth_skeleton::testing::{Backend, TestServer};
//!
//! async fn signup_works(backend: Backend) {
//!     let server = TestServer::start(backend, my_spec(), &[], MyEngine::new).await;
//!     let (token, _user) = server.signup_bearer("ann@example.com").await;
//!     let reply = server.send(server.get("/v1/auth/me").bearer_auth(&token)).await;
//!     assert_eq!(reply.status, 200);
//! }
//! auth_skeleton::both_backends!(signup_works);
//! ```
//!
//! PostgreSQL tests connect to `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), create a database of their own and drop it
//! afterwards. They fail, never skip, when the server cannot be reached.

mod document_check;

pub use document_check::{check_document, route_patterns};

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{Settings, Vars};
use crate::db::Db;
use crate::service::{AppSpec, EngineBuilder};

/// The server the PostgreSQL tests use unless `TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database.
    ///
    /// # Panics
    /// When the database cannot be created (PostgreSQL unreachable, say): a test must not pass
    /// without having run.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                // The owner's only, as a deployment keeps it: `serve` warns about anything else.
                #[cfg(unix)]
                std::fs::set_permissions(
                    dir.path(),
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )
                .expect("a private directory");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Self {
                    url,
                    dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
                let name = format!("t_{}", crate::token::new_id());
                let admin = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin_url} is needed for this test: {e}")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("CREATE DATABASE");
                admin.close().await;
                let mut url = url::Url::parse(&admin_url).expect("TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    dir: None,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }

    /// The directory of a SQLite database.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A reply, with its body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
    /// Body as bytes.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// A header's value as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The problem `code` of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// The service under test, running in-process on `127.0.0.1:0`.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The account services the server runs (for checks behind the HTTP face).
    pub auth: crate::accounts::Auth,
    /// The database.
    pub db: Db,
    /// The server's clock (manual: move it with `advance`).
    pub clock: Clock,
    /// The database's files, kept alive as long as the server.
    pub database: TestDatabase,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    /// Starts the app on a fresh database. `vars` set configuration variables
    /// (`BIND` is always `127.0.0.1:0`; `PUBLIC_URL` defaults to `http://app.test`).
    pub async fn start(
        backend: Backend,
        spec: AppSpec,
        vars: &[(&str, &str)],
        engine: EngineBuilder,
    ) -> Self {
        let database = TestDatabase::new(backend).await;
        Self::start_on(database, spec, vars, engine).await
    }

    /// Starts another instance of an app on this server's database, as a second process behind
    /// a balancer would be (the database stays this server's: it goes when this one is dropped).
    pub async fn start_another(
        &self,
        spec: AppSpec,
        vars: &[(&str, &str)],
        engine: EngineBuilder,
    ) -> Self {
        let database = TestDatabase {
            url: self.database.url.clone(),
            dir: None,
            postgres: None,
        };
        Self::start_on(database, spec, vars, engine).await
    }

    async fn start_on(
        database: TestDatabase,
        spec: AppSpec,
        vars: &[(&str, &str)],
        engine: EngineBuilder,
    ) -> Self {
        let mut pairs = vec![
            ("DATABASE_URL", database.url.as_str()),
            ("BIND", "127.0.0.1:0"),
            ("PUBLIC_URL", "http://app.test"),
            ("SECRET_KEY", TEST_SECRET_KEY),
        ];
        pairs.extend_from_slice(vars);
        let vars = Vars::from_pairs(pairs);
        let settings = Settings::from_vars(spec.name, 0, &vars).expect("valid test settings");
        let clock = Clock::manual(1_764_307_200_000); // 2025-11-28T05:20:00Z
        let db = crate::service::open(&spec, &settings, &clock)
            .await
            .expect("database opens");
        let running =
            crate::service::start(&spec, &settings, db.clone(), clock.clone(), vars, engine)
                .await
                .expect("server starts");
        let handle = running.server.handle();
        actix_web::rt::spawn(running.server);
        Self {
            base_url: format!("http://{}", running.addr),
            auth: running.auth,
            db,
            clock,
            database,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            handle,
        }
    }

    /// A request to `path`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    /// A `GET`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A `POST` of a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.request(Method::POST, path).json(body)
    }

    /// Sends a request and reads the whole reply.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            bytes,
        }
    }

    /// Signs up `email` with a bearer session and returns `(token, user_id)`.
    pub async fn signup_bearer(&self, email: &str) -> (String, String) {
        let reply = self
            .send(self.post(
                "/v1/auth/signup",
                &serde_json::json!({"email": email, "password": TEST_PASSWORD, "session": "bearer"}),
            ))
            .await;
        assert_eq!(reply.status, 201, "signup failed: {:?}", reply.body);
        (
            reply.body["token"].as_str().expect("a token").to_owned(),
            reply.body["user"]["id"]
                .as_str()
                .expect("a user id")
                .to_owned(),
        )
    }

    /// Stops the server (dropping it does too, less gracefully).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Waits until `n` processes listen for the announcements of other instances on the PostgreSQL
/// database at `url` (a session cache serves nothing from memory before, and long-polls hear
/// only their own instance); on SQLite, returns at once.
///
/// # Panics
/// When they do not within 20 seconds.
pub async fn wait_for_listeners(url: &str, n: i64) {
    if !url.starts_with("postgres") {
        return;
    }
    let pool = sqlx::PgPool::connect(url).await.expect("the test database");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity");
        if listening >= n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{listening} of {n} instances listen for announcements"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.close().await;
}

/// The password [`TestServer::signup_bearer`] uses.
pub const TEST_PASSWORD: &str = "tangerine-orbit-41";

/// The `SECRET_KEY` of [`TestServer`] and of a [`ServiceProcess`] on PostgreSQL (32 bytes in
/// base64). A test key: never use it anywhere else.
pub const TEST_SECRET_KEY: &str = "dGVzdC1vbmx5LXNlY3JldC1rZXktMzItYnl0ZXMtbG9uZyE=";

/// Generates `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::testing::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::testing::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A real app binary running as a separate process on a real port.
#[derive(Debug)]
pub struct ServiceProcess {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

/// Whether a service with `vars` would refuse to start without `SECRET_KEY`.
fn key_required(vars: &[(&str, &str)]) -> bool {
    let get = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let Ok(database_url) = crate::db::DatabaseUrl::parse(get("DATABASE_URL").unwrap_or("sqlite:"))
    else {
        return false;
    };
    let public_url = get("PUBLIC_URL")
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| "http://127.0.0.1".parse().expect("a URL"));
    let vars = Vars::from_pairs(vars.iter().copied());
    matches!(
        crate::config::KeySource::from_vars(&vars, &database_url, &public_url),
        Ok(crate::config::KeySource::Missing(_))
    )
}

impl ServiceProcess {
    /// Starts `exe` (e.g. `env!("CARGO_BIN_EXE_app-rows")`) with `vars` added to the environment
    /// (`BIND` defaults to `127.0.0.1:0`), and waits for its `listening on` line.
    ///
    /// # Panics
    /// When the process exits or prints nothing within 60 seconds; the panic shows its log.
    pub fn start(exe: &str, vars: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};

        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut command = Command::new(exe);
        command
            .env("BIND", "127.0.0.1:0")
            .env("LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("the log file"));
        // Where a key is required (PostgreSQL, a public PUBLIC_URL) it is the test key; on
        // SQLite otherwise the service generates one beside the database, as it does on a
        // developer's machine.
        if key_required(vars) {
            command.env("SECRET_KEY", TEST_SECRET_KEY);
        }
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base_url) => Self {
                base_url,
                child,
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{exe} did not start listening; its log:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
            }
        }
    }

    /// Runs `exe` with `args` and `vars` to completion (e.g. `migrate`), returning its exit
    /// status and its standard error.
    pub fn run(
        exe: &str,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> (std::process::ExitStatus, String) {
        let mut command = std::process::Command::new(exe);
        command.args(args);
        if key_required(vars) {
            command.env("SECRET_KEY", TEST_SECRET_KEY);
        }
        for (k, v) in vars {
            command.env(k, v);
        }
        let output = command.output().expect("the binary runs");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The process id, e.g. to read its memory use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's log (standard error) so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash or power cut would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("the process exits")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message received by [`SmtpSink`].
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`, in order.
    pub to: Vec<String>,
    /// The message as sent (RFC 5322), dot-stuffing removed.
    pub data: Vec<u8>,
}

impl ReceivedMail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("an RFC 5322 message")
    }

    /// The subject.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// The text/plain part, decoded.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    /// The text/html part, decoded.
    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    /// The first link in the text part that starts with `prefix`, e.g.
    /// `http://app.test/verify-email?token=`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(prefix)?;
        Some(
            text[start..]
                .split(char::is_whitespace)
                .next()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// The `token` of the first link starting with `prefix`.
    pub fn token(&self, prefix: &str) -> Option<String> {
        let link = self.link(prefix)?;
        Some(link.split_once("token=")?.1.to_owned())
    }
}

/// A real SMTP server on loopback that accepts every message and keeps it, for tests.
///
/// It speaks enough of RFC 5321 for a real client (`EHLO`, `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`,
/// `QUIT`). [`SmtpSink::stop`] closes the listener and every open connection, as an outage would.
#[derive(Debug)]
pub struct SmtpSink {
    /// The port it listens on.
    pub port: u16,
    mails: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl SmtpSink {
    /// Listens on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (to come back on the same port after [`SmtpSink::stop`]).
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("a port for the SMTP sink");
        let port = listener.local_addr().expect("an address").port();
        let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accept_mails, accept_tasks) = (mails.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mails = accept_mails.clone();
                let handle = tokio::spawn(async move {
                    let _ = smtp_session(stream, mails).await;
                });
                accept_tasks
                    .lock()
                    .expect("tasks")
                    .push(handle.abort_handle());
            }
        });
        tasks.lock().expect("tasks").push(accept.abort_handle());
        Self { port, mails, tasks }
    }

    /// `smtp://127.0.0.1:PORT`, for `MAIL_TRANSPORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().expect("mails").clone()
    }

    /// Waits until a message for `recipient` arrives after the first `skip` ones for it, and
    /// returns it.
    ///
    /// # Panics
    /// After 30 seconds without it.
    pub async fn wait_for(&self, recipient: &str, skip: usize) -> ReceivedMail {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .mails()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == recipient))
                .nth(skip);
            if let Some(mail) = found {
                return mail;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail #{} for {recipient} within 30 s; received: {:?}",
                skip + 1,
                self.mails()
                    .iter()
                    .map(|m| (&m.to, m.subject()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many messages went to `recipient`.
    pub fn count_for(&self, recipient: &str) -> usize {
        self.mails()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == recipient))
            .count()
    }

    /// Closes the listener and every connection.
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    mails: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = angle_address(&command["MAIL FROM:".len()..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(angle_address(&command["RCPT TO:".len()..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if lines.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                let unstuffed = if raw.starts_with(b"..") {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(unstuffed);
            }
            mails.lock().expect("mails").push(ReceivedMail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn angle_address(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or(s);
    s.trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// The schema `name` of an OpenAPI document, and the members of its `allOf` (a schema that
/// adds rules to an object, such as `oneOf` alternatives, is written as one).
fn schema_parts<'a>(doc: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    let schema = &doc["components"]["schemas"][name];
    let mut parts = vec![schema];
    if let Some(all_of) = schema["allOf"].as_array() {
        parts.extend(all_of);
    }
    parts
}

/// The names of the properties of the schema `name` in an OpenAPI document (its own or those
/// of the first member of its `allOf` that has some), sorted.
///
/// # Panics
/// When the document has no such schema with properties.
pub fn schema_properties(doc: &serde_json::Value, name: &str) -> Vec<String> {
    let mut names: Vec<String> = schema_parts(doc, name)
        .into_iter()
        .find_map(|part| part["properties"].as_object())
        .unwrap_or_else(|| panic!("schema {name} has no properties"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// The names of the required properties of the schema `name` in an OpenAPI document (its own
/// or those of the first member of its `allOf` that lists some), sorted.
///
/// # Panics
/// When the schema lists no required properties.
pub fn schema_required(doc: &serde_json::Value, name: &str) -> Vec<String> {
    let mut names: Vec<String> = schema_parts(doc, name)
        .into_iter()
        .find_map(|part| part["required"].as_array())
        .unwrap_or_else(|| panic!("schema {name} lists no required properties"))
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The names of a JSON object's fields, sorted (to compare a real answer with its schema).
///
/// # Panics
/// When `value` is not an object.
pub fn sorted_keys(value: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}
