//! The helper of `bench/run.sh`: it prepares a running service for the load generator (accounts,
//! sessions, rows, a save) and measures each hot path's floor in process, on the same database
//! file and pragmas as the service ([`Db::connect`]), printing one number per run.
//!
//! Every subcommand prints its result on standard output as a single number (or, for the set-up
//! steps, nothing: they write files into `--dir`; `wake-latency` prints one `BENCH` line of
//! fields, as the wrk scripts do), so that the script can collect medians.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app_rows::change::Change;
use app_rows::lww::Version;
use app_rows::store;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, Block, Params};
use auth_skeleton::db::{Db, Migrations};
use auth_skeleton::rate_limit::{
    DatabaseRateLimiter, InMemoryRateLimiter, Limit, Rate, RateLimitConfig, RateLimiter,
};
use auth_skeleton::{execute_db, execute_tx, read_db};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// The password of every benchmark account.
const PASSWORD: &str = "bench-password-2718";
/// About 100 bytes of row data, the same the load generator pushes.
const ROW_DATA: &str = r#"{"t":"the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy"}"#;

#[derive(Parser)]
#[command(about = "Set-up steps and in-process floors for bench/run.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accounts and sessions on an app-rows service; writes tokens and cursors into `dir`.
    SetupRows {
        #[arg(long)]
        url: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        #[arg(long, default_value_t = 10_000)]
        pull_rows: usize,
    },
    /// An account with a save of `kib` KiB on an app-blob service; writes its token, user id and
    /// ETag into `dir` as `NAME.token`, `NAME.user` and `NAME.etag`; with `--many N`, also N
    /// accounts without a save, their tokens in `many.tokens`.
    SetupBlob {
        #[arg(long)]
        url: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4096)]
        kib: usize,
        #[arg(long, default_value = "blob")]
        name: String,
        #[arg(long, default_value_t = 0)]
        many: usize,
    },
    /// One `PUT /v1/save` of `kib` KiB from memory on each account of `many.tokens` in `dir`, all
    /// at once (`If-None-Match: *` the first time, then `If-Match` with the ETag of the last,
    /// kept in `many.etags`); the bytes differ from one call to the next. Prints the seconds the
    /// slowest took.
    BlobUploads {
        #[arg(long)]
        url: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 16 * 1024)]
        kib: usize,
    },
    /// Raw argon2id verifications per second of the account's stored PHC string.
    Argon2 {
        #[arg(long)]
        db: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value_t = 4)]
        threads: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Rows per second of the push upserts, one transaction per batch.
    RowsPush {
        #[arg(long)]
        db: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        batch: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Rows per second of the pull `SELECT`, page after page.
    RowsPull {
        #[arg(long)]
        db: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 1000)]
        page: i64,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// MiB per second of the service's own `INSERT` of a version's bytes into `blob_data`, one
    /// transaction per version, replacing the previous one (as the history pruning does).
    BlobPut {
        #[arg(long)]
        db: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 4096)]
        kib: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// MiB per second of storing `kib` KiB durably as a new file in `dir`, one file per round, as
    /// the service stores a save in a file: written to a temporary file, fsynced, renamed to its
    /// name and the directory fsynced; the previous round's file is deleted.
    DiskWrite {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4096)]
        kib: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// MiB per second of reading the user's current save: with the service's `SELECT` when its
    /// bytes are in the row, by reading its file (found with the same query) when they are in one.
    BlobGet {
        #[arg(long)]
        db: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Login-limit checks per second (`LoginIp`) through the database store, on the service's
    /// database, or in memory; at a rate no run reaches, so every check is counted and allowed.
    RateLimit {
        #[arg(long)]
        db: String,
        #[arg(long, value_enum)]
        store: Store,
        #[arg(long, value_enum)]
        keys: Keys,
        /// Concurrent tasks, each checking one key after another.
        #[arg(long, default_value_t = 1)]
        tasks: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// The wake-up of a long-poll: `tries` times, a pull for an account's next change waits
    /// (`Prefer: wait=30`) on `wait_url`, and one row of that account is pushed through
    /// `push_url`. Prints `BENCH p50_us=.. p99_us=.. max_us=.. early=..`: the time from the push's
    /// answer to the waiting pull's answer (`early`: pulls answered first, counted as 0).
    WakeLatency {
        #[arg(long)]
        push_url: String,
        #[arg(long)]
        wait_url: String,
        #[arg(long, default_value_t = 200)]
        tries: usize,
        /// How long the pull is given to be waiting before the push.
        #[arg(long, default_value_t = 30)]
        settle_ms: u64,
    },
    /// Milliseconds from spawning `bin serve` on an existing database to `200` from `/readyz`
    /// (the median of `times` starts); the environment is passed on.
    ColdStart {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 5)]
        times: usize,
        /// A CPU list for `taskset`, to pin the service.
        #[arg(long)]
        cpus: Option<String>,
    },
}

/// Where `rate-limit` counts.
#[derive(Clone, Copy, ValueEnum)]
enum Store {
    /// [`DatabaseRateLimiter`]: one statement per check.
    Database,
    /// [`InMemoryRateLimiter`]: a map in this process.
    Memory,
}

/// Which keys `rate-limit` checks.
#[derive(Clone, Copy, ValueEnum)]
enum Keys {
    /// A new IP-like key for every check (a flood from many addresses: a new row each).
    Distinct,
    /// One key for every check of every task (one row, updated by all).
    Hot,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::SetupRows {
            url,
            dir,
            sessions,
            pull_rows,
        } => setup_rows(&url, &dir, sessions, pull_rows).await,
        Command::SetupBlob {
            url,
            dir,
            kib,
            name,
            many,
        } => setup_blob(&url, &dir, kib, &name, many).await,
        Command::BlobUploads { url, dir, kib } => {
            print_rate(blob_uploads(&url, &dir, kib).await?);
            Ok(())
        }
        Command::Argon2 {
            db,
            email,
            threads,
            secs,
        } => {
            let db = Db::connect(&db).await?;
            let phc: String = read_db!(db, |pool| {
                sqlx::query_scalar("SELECT password_hash FROM auth_users WHERE email = $1")
                    .bind(&email)
                    .fetch_one(pool)
                    .await
            })?;
            db.close().await;
            print_rate(argon2_rate(&phc, threads, secs)?);
            Ok(())
        }
        Command::RowsPush {
            db,
            user,
            batch,
            secs,
        } => {
            let db = Db::connect(&db).await?;
            let rate = rows_push_rate(&db, &user, batch, secs).await?;
            db.close().await;
            print_rate(rate);
            Ok(())
        }
        Command::RowsPull {
            db,
            user,
            page,
            secs,
        } => {
            let db = Db::connect(&db).await?;
            let rate = rows_pull_rate(&db, &user, page, secs).await?;
            db.close().await;
            print_rate(rate);
            Ok(())
        }
        Command::BlobPut {
            db,
            user,
            kib,
            secs,
        } => {
            let db = Db::connect(&db).await?;
            let rate = blob_put_rate(&db, &user, kib, secs).await?;
            db.close().await;
            print_rate(rate);
            Ok(())
        }
        Command::DiskWrite { dir, kib, secs } => {
            print_rate(disk_write_rate(&dir, kib, secs)?);
            Ok(())
        }
        Command::BlobGet { db, user, secs } => {
            let db = Db::connect(&db).await?;
            let rate = blob_get_rate(&db, &user, secs).await?;
            db.close().await;
            print_rate(rate);
            Ok(())
        }
        Command::RateLimit {
            db,
            store,
            keys,
            tasks,
            secs,
        } => {
            let db = Db::connect(&db).await?;
            Migrations::auth().run(&db).await?;
            let rate = rate_limit_rate(&db, store, keys, tasks, secs).await;
            db.close().await;
            print_rate(rate?);
            Ok(())
        }
        Command::WakeLatency {
            push_url,
            wait_url,
            tries,
            settle_ms,
        } => {
            wake_latency(
                &push_url,
                &wait_url,
                tries,
                Duration::from_millis(settle_ms),
            )
            .await
        }
        Command::ColdStart {
            bin,
            url,
            times,
            cpus,
        } => cold_start(&bin, &url, times, cpus.as_deref()).await,
    }
}

fn print_rate(rate: f64) {
    println!("{rate:.1}");
}

/// Runs `step` until `secs` have passed; returns the units it reported per second.
async fn timed<F, Fut>(secs: f64, mut step: F) -> Result<f64, Error>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, Error>>,
{
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut units = 0;
    let mut round = 0;
    while start.elapsed() < limit {
        units += step(round).await?;
        round += 1;
    }
    Ok(units as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Set-up through the service

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(url: &str) -> Result<Self, Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value, Error> {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await?;
        let status = reply.status();
        let text = reply.text().await?;
        if !status.is_success() {
            return Err(format!("POST {path}: {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn get(&self, path: &str, token: &str) -> Result<Value, Error> {
        let reply = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await?;
        let status = reply.status();
        let text = reply.text().await?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Signs `email` up; returns its bearer token and user id.
    async fn signup(&self, email: &str) -> Result<(String, String), Error> {
        let reply = self
            .post(
                "/v1/auth/signup",
                None,
                &json!({"email": email, "password": PASSWORD, "session": "bearer"}),
            )
            .await?;
        Ok((text(&reply["token"])?, text(&reply["user"]["id"])?))
    }

    async fn login(&self, email: &str) -> Result<String, Error> {
        let reply = self
            .post(
                "/v1/auth/login",
                None,
                &json!({"email": email, "password": PASSWORD, "session": "bearer"}),
            )
            .await?;
        text(&reply["token"])
    }
}

fn text(value: &Value) -> Result<String, Error> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {value}").into())
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<(), Error> {
    std::fs::write(dir.join(name), contents)?;
    Ok(())
}

/// `n` rows of about 100 bytes, ids `r0..`, all at version (`ts`, `counter`).
fn rows_body(n: usize, ts: i64, counter: u64) -> Value {
    let data: Value = serde_json::from_str(ROW_DATA).unwrap_or(Value::Null);
    let changes: Vec<Value> = (0..n)
        .map(|i| {
            json!({"collection": "notes", "id": format!("r{i}"), "ts": ts, "counter": counter,
                   "node": "bench", "deleted": false, "data": data})
        })
        .collect();
    json!({ "changes": changes })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn setup_rows(url: &str, dir: &Path, sessions: usize, pull_rows: usize) -> Result<(), Error> {
    let client = Client::new(url)?;
    std::fs::create_dir_all(dir)?;

    // 1,000 live sessions over ten accounts: one from each sign-up, the rest from logins.
    let accounts = 10;
    let mut tokens = Vec::with_capacity(sessions);
    for i in 0..accounts {
        tokens.push(
            client
                .signup(&format!("session-{i}@bench.example"))
                .await?
                .0,
        );
    }
    let mut pending = Vec::new();
    for i in accounts..sessions {
        let email = format!("session-{}@bench.example", i % accounts);
        let client = Client::new(url)?;
        pending.push(tokio::spawn(async move { client.login(&email).await }));
        if pending.len() == 8 {
            for task in pending.drain(..) {
                tokens.push(task.await??);
            }
        }
    }
    for task in pending {
        tokens.push(task.await??);
    }
    write(dir, "tokens.txt", &(tokens.join("\n") + "\n"))?;

    client.signup("login@bench.example").await?;
    write(
        dir,
        "login.json",
        &json!({"email": "login@bench.example", "password": PASSWORD, "session": "bearer"})
            .to_string(),
    )?;

    let (push_token, _) = client.signup("push@bench.example").await?;
    write(dir, "push.token", &push_token)?;

    // The floor's own account, so that the floor's writes never make the service's stale.
    let (_, floor_user) = client.signup("floor@bench.example").await?;
    write(dir, "floor.user", &floor_user)?;

    // A user with `pull_rows` rows, and the cursor of every full page of 1,000.
    let (pull_token, pull_user) = client.signup("pull@bench.example").await?;
    let ts = now_ms();
    for chunk in 0..pull_rows.div_ceil(1000) {
        let n = (pull_rows - chunk * 1000).min(1000);
        let mut body = rows_body(n, ts, 0);
        if let Some(changes) = body["changes"].as_array_mut() {
            for (i, change) in changes.iter_mut().enumerate() {
                change["id"] = json!(format!("p{}", chunk * 1000 + i));
            }
        }
        client
            .post("/v1/rows/push", Some(&pull_token), &body)
            .await?;
    }
    let mut cursors = vec![String::new()];
    loop {
        let since = cursors.last().cloned().unwrap_or_default();
        let page = client
            .get(
                &format!("/v1/rows/pull?limit=1000&since={since}"),
                &pull_token,
            )
            .await?;
        if page["has_more"] != json!(true) {
            break;
        }
        cursors.push(text(&page["cursor"])?);
    }
    write(dir, "pull.token", &pull_token)?;
    write(dir, "pull.user", &pull_user)?;
    write(dir, "cursors.txt", &(cursors.join("\n") + "\n"))?;
    Ok(())
}

/// `kib` KiB of `x`, the first bytes replaced by `variant` so that no two variants are equal.
fn blob_bytes(kib: usize, variant: u64) -> Vec<u8> {
    let mut bytes = vec![b'x'; kib << 10];
    let tag = format!("{variant:016x}");
    let n = tag.len().min(bytes.len());
    bytes[..n].copy_from_slice(&tag.as_bytes()[..n]);
    bytes
}

/// `PUT /v1/save` of `body` with `If-Match: etag`, or `If-None-Match: *` without one; returns the
/// new ETag.
async fn put_save(
    client: &Client,
    token: &str,
    etag: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Result<String, Error> {
    let request = client
        .http
        .put(format!("{}/v1/save", client.url))
        .bearer_auth(token)
        .header("Content-Type", "application/octet-stream");
    let request = match etag {
        Some(etag) => request.header("If-Match", etag),
        None => request.header("If-None-Match", "*"),
    };
    let reply = request.body(body).send().await?;
    let status = reply.status();
    if !status.is_success() {
        let text = reply.text().await.unwrap_or_default();
        return Err(format!("PUT /v1/save: {status}: {text}").into());
    }
    Ok(reply
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .ok_or("no ETag")?
        .to_owned())
}

async fn setup_blob(
    url: &str,
    dir: &Path,
    kib: usize,
    name: &str,
    many: usize,
) -> Result<(), Error> {
    let client = Client::new(url)?;
    std::fs::create_dir_all(dir)?;
    let (token, user) = client.signup(&format!("{name}@bench.example")).await?;
    let etag = put_save(&client, &token, None, blob_bytes(kib, 0)).await?;
    write(dir, &format!("{name}.token"), &token)?;
    write(dir, &format!("{name}.user"), &user)?;
    write(dir, &format!("{name}.etag"), &etag)?;
    if many > 0 {
        let mut tokens = Vec::with_capacity(many);
        for i in 0..many {
            tokens.push(
                client
                    .signup(&format!("{name}-many-{i}@bench.example"))
                    .await?
                    .0,
            );
        }
        write(dir, "many.tokens", &(tokens.join("\n") + "\n"))?;
        let _ = std::fs::remove_file(dir.join("many.etags"));
    }
    Ok(())
}

/// One upload of `kib` KiB on every account of `many.tokens`, all at once; the seconds of the
/// slowest.
async fn blob_uploads(url: &str, dir: &Path, kib: usize) -> Result<f64, Error> {
    let tokens: Vec<String> = std::fs::read_to_string(dir.join("many.tokens"))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let etags: Vec<Option<String>> = match std::fs::read_to_string(dir.join("many.etags")) {
        Ok(text) => text.lines().map(|l| Some(l.to_owned())).collect(),
        Err(_) => vec![None; tokens.len()],
    };
    if etags.len() != tokens.len() {
        return Err("many.etags does not match many.tokens".into());
    }
    // Bytes no earlier call sent, all in memory before the first request starts.
    let round = now_ms() as u64;
    let bodies: Vec<reqwest::Body> = (0..tokens.len())
        .map(|i| reqwest::Body::from(blob_bytes(kib, round.wrapping_add(i as u64))))
        .collect();
    let client = Arc::new(Client::new(url)?);
    let start = Instant::now();
    let uploads: Vec<_> = tokens
        .into_iter()
        .zip(etags)
        .zip(bodies)
        .map(|((token, etag), body)| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { put_save(&client, &token, etag.as_deref(), body).await })
        })
        .collect();
    let mut next = Vec::with_capacity(uploads.len());
    for upload in uploads {
        next.push(upload.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    write(dir, "many.etags", &(next.join("\n") + "\n"))?;
    Ok(secs)
}

// ---------------------------------------------------------------------------------------------
// Floors

/// Verifications per second on `threads` threads, each with its own reusable memory.
fn argon2_rate(phc: &str, threads: usize, secs: f64) -> Result<f64, Error> {
    let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let salt = parsed.salt.ok_or("no salt")?;
    let expected = parsed.hash.ok_or("no hash")?;
    let argon2 = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut memory = vec![Block::new(); argon2.params().block_count()];
                    let mut out = vec![0u8; expected.len()];
                    let mut done = 0u64;
                    while start.elapsed() < limit {
                        let ok = argon2
                            .hash_password_into_with_memory(
                                PASSWORD.as_bytes(),
                                salt.as_ref(),
                                &mut out,
                                &mut memory,
                            )
                            .is_ok()
                            && out == expected.as_bytes();
                        assert!(ok, "the stored hash does not verify");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn rows_push_rate(db: &Db, user: &str, batch: usize, secs: f64) -> Result<f64, Error> {
    let ts = now_ms();
    timed(secs, |round| async move {
        // The service's own statements, so that the floor cannot drift from what a push writes:
        // the user's counters locked, each row upserted with the next sequence number, the
        // counters stored (the decisions between them are the service's cost).
        let mut tx = store::begin_write(db).await?;
        let mut counters = store::lock_counters(&mut tx, user).await?;
        for i in 0..batch {
            let change = Change {
                collection: "notes".to_owned(),
                id: format!("r{i}"),
                version: Version::new(ts, round as i64, "bench"),
                data: Some(ROW_DATA.to_owned()),
            };
            counters.last_seq += 1;
            store::write_row(&mut tx, user, &change, counters.last_seq, ts).await?;
        }
        store::save_counters(&mut tx, user, &counters).await?;
        tx.commit().await?;
        Ok(batch as u64)
    })
    .await
}

async fn rows_pull_rate(db: &Db, user: &str, page: i64, secs: f64) -> Result<f64, Error> {
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut after = 0i64;
    let mut pulled = 0usize;
    while start.elapsed() < limit {
        // The service's own snapshot and page query.
        let mut tx = store::begin_snapshot(db).await?;
        let rows = store::rows_after(&mut tx, user, after, page + 1).await?;
        tx.commit().await?;
        let n = rows.len().min(page as usize);
        pulled += n;
        // Past the last full page, start again, as the load generator cycles through the pages.
        after = if rows.len() > page as usize {
            rows[n - 1].seq
        } else {
            0
        };
    }
    Ok(pulled as f64 / start.elapsed().as_secs_f64())
}

/// The one floor that writes its own SQL: `app_blob::store::write_current` would make each round
/// the account's current save, under the feet of the service that the same run measures on
/// that account. These are its two statements for the bytes (the meta upsert is small).
async fn blob_put_rate(db: &Db, user: &str, kib: usize, secs: f64) -> Result<f64, Error> {
    let bytes = vec![b'x'; kib << 10];
    let bytes = &bytes;
    // Negative generations never meet the service's own (which count up from 1).
    let bytes_per_sec = timed(secs, |round| async move {
        let generation = -1 - round as i64;
        let mut tx = db.begin().await?;
        execute_tx!(
            &mut tx,
            sqlx::query("DELETE FROM blob_data WHERE user_id = $1 AND generation = $2")
                .bind(user)
                .bind(generation + 1)
        )?;
        execute_tx!(
            &mut tx,
            sqlx::query("INSERT INTO blob_data (user_id, generation, data) VALUES ($1, $2, $3)")
                .bind(user)
                .bind(generation)
                .bind(bytes.as_slice())
        )?;
        tx.commit().await?;
        Ok(bytes.len() as u64)
    })
    .await?;
    execute_db!(
        db,
        sqlx::query("DELETE FROM blob_data WHERE user_id = $1 AND generation < 0").bind(user)
    )?;
    Ok(bytes_per_sec / (1 << 20) as f64)
}

/// The write of a save's file by the service, without the HTTP, the hashing and the database.
fn disk_write_rate(dir: &Path, kib: usize, secs: f64) -> Result<f64, Error> {
    use std::io::Write as _;
    let bytes = vec![b'x'; kib << 10];
    let directory = std::fs::File::open(dir)?;
    let temp = dir.join("bench-floor.part");
    let name = |round: u64| dir.join(format!("bench-floor-{round}.bin"));
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut written = 0usize;
    let mut round = 0u64;
    while start.elapsed() < limit {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, name(round))?;
        directory.sync_all()?;
        if round > 0 {
            std::fs::remove_file(name(round - 1))?;
        }
        written += bytes.len();
        round += 1;
    }
    let rate = written as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64();
    if round > 0 {
        std::fs::remove_file(name(round - 1))?;
    }
    Ok(rate)
}

/// Where the service keeps its save files: beside the SQLite database file.
fn files_root(db: &Db) -> Result<PathBuf, Error> {
    app_blob::files::FileStore::beside_database(db)
        .ok_or_else(|| "a save in a file, but the database is no SQLite file".into())
}

async fn blob_get_rate(db: &Db, user: &str, secs: f64) -> Result<f64, Error> {
    use app_blob::store::StoredBytes;
    // The service's own queries, so that the floor cannot drift from what a GET runs.
    let tag = app_blob::store::current(db, user)
        .await?
        .ok_or("the benchmark account has no save")?
        .tag;
    let stored = app_blob::store::current_bytes(db, user, &tag)
        .await?
        .ok_or("the save changed during the measurement")?;
    let bytes_per_sec = match stored {
        // In the row: the query that reads it, each time.
        StoredBytes::Inline(_) => {
            timed(secs, |_| {
                let tag = &tag;
                async move {
                    match app_blob::store::current_bytes(db, user, tag).await? {
                        Some(StoredBytes::Inline(data)) => Ok(data.len() as u64),
                        _ => Err("the save changed during the measurement".into()),
                    }
                }
            })
            .await?
        }
        // In a file: reading that file, each time.
        StoredBytes::File { name, .. } => {
            let path = app_blob::files::FileStore::open(files_root(db)?)?.path(&name);
            timed(secs, |_| {
                let path = &path;
                async move { Ok(std::fs::read(path)?.len() as u64) }
            })
            .await?
        }
    };
    Ok(bytes_per_sec / (1 << 20) as f64)
}

/// Warnings of the library: [`DatabaseRateLimiter`] logs one each time a check could not reach
/// the database and was counted in this process instead, which would measure the wrong store.
static LIBRARY_WARNINGS: AtomicU64 = AtomicU64::new(0);

struct CountLibraryWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountLibraryWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() <= tracing::Level::WARN && meta.target().starts_with("auth_skeleton") {
            LIBRARY_WARNINGS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Checks per second of `LoginIp` on `tasks` tasks, every one allowed.
async fn rate_limit_rate(
    db: &Db,
    store: Store,
    keys: Keys,
    tasks: usize,
    secs: f64,
) -> Result<f64, Error> {
    use tracing_subscriber::layer::SubscriberExt as _;
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CountLibraryWarnings),
    )?;
    let mut config = RateLimitConfig::off();
    // A burst of four billion: a key is refused only after that many checks, far more than a run
    // makes even in memory (a few million a second on one key).
    config.set(Limit::LoginIp, Rate::parse("4000000000/hour")?);
    let limiter: Arc<dyn RateLimiter> = match store {
        Store::Database => Arc::new(DatabaseRateLimiter::new(db.clone(), config)),
        Store::Memory => Arc::new(InMemoryRateLimiter::new(config)),
    };
    // Keys of this run only (IPv6 documentation addresses), so that every distinct key is a new
    // row and the hot key starts with a whole burst.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let prefix = format!("2001:db8:{:x}:{:x}", run >> 16, run & 0xffff);
    // A few checks on every task first, so that the pool's connections are open.
    let warm: Vec<_> = (0..tasks)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            let key = format!("{prefix}::2");
            tokio::spawn(async move {
                for _ in 0..10 {
                    let _ = limiter.check_async(Limit::LoginIp, &key).await;
                }
            })
        })
        .collect();
    for task in warm {
        task.await?;
    }
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let limiter = Arc::clone(&limiter);
            let prefix = prefix.clone();
            tokio::spawn(async move {
                let hot = format!("{prefix}::1");
                let (mut checks, mut refused) = (0u64, 0u64);
                while start.elapsed() < limit {
                    let key = match keys {
                        Keys::Distinct => Cow::Owned(format!("{prefix}:{task:x}::{checks:x}")),
                        Keys::Hot => Cow::Borrowed(hot.as_str()),
                    };
                    if limiter.check_async(Limit::LoginIp, &key).await.is_err() {
                        refused += 1;
                    }
                    checks += 1;
                    // A check in memory never waits: let the other tasks run.
                    if checks.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                (checks, refused)
            })
        })
        .collect();
    let (mut checks, mut refused) = (0, 0);
    for worker in workers {
        let (c, r) = worker.await?;
        checks += c;
        refused += r;
    }
    let rate = checks as f64 / start.elapsed().as_secs_f64();
    if refused > 0 {
        return Err(format!("{refused} of {checks} checks were refused").into());
    }
    let warnings = LIBRARY_WARNINGS.load(Ordering::Relaxed);
    if warnings > 0 {
        return Err(format!(
            "{warnings} warnings from the library: checks fell back to counting in memory?"
        )
        .into());
    }
    Ok(rate)
}

/// Prints the p50, p99 and maximum of the time from a push's answer to the answer of a pull
/// waiting for it on another (or the same) instance.
async fn wake_latency(
    push_url: &str,
    wait_url: &str,
    tries: usize,
    settle: Duration,
) -> Result<(), Error> {
    if tries == 0 {
        return Err("--tries must be at least 1".into());
    }
    let pusher = Client::new(push_url)?;
    let waiter = Client::new(wait_url)?;
    let email = format!("wake-{:x}@bench.example", now_ms());
    let (token, _) = pusher.signup(&email).await?;
    let mut cursor = text(&waiter.get("/v1/rows/pull", &token).await?["cursor"])?;
    let data: Value = serde_json::from_str(ROW_DATA)?;
    let mut samples = Vec::with_capacity(tries);
    let mut early = 0;
    for i in 0..tries {
        let pull = waiter
            .http
            .get(format!("{}/v1/rows/pull?since={cursor}", waiter.url))
            .bearer_auth(&token)
            .header("Prefer", "wait=30");
        let waiting = tokio::spawn(async move {
            let reply = pull.send().await?;
            let status = reply.status();
            let body = reply.text().await?;
            Ok::<_, Error>((Instant::now(), status, body))
        });
        tokio::time::sleep(settle).await;
        let change = json!({"collection": "notes", "id": format!("w{i}"), "ts": now_ms(),
                            "counter": 0, "node": "bench", "deleted": false, "data": data});
        let sent = Instant::now();
        let reply = pusher
            .post(
                "/v1/rows/push",
                Some(&token),
                &json!({ "changes": [change] }),
            )
            .await?;
        let pushed = Instant::now();
        if reply["results"][0]["status"] != "applied" {
            return Err(format!("the push was not applied: {reply}").into());
        }
        let (woken, status, body) = waiting.await??;
        if !status.is_success() {
            return Err(format!("GET /v1/rows/pull: {status}: {body}").into());
        }
        let page: Value = serde_json::from_str(&body)?;
        if page["changes"].as_array().map_or(0, Vec::len) != 1 {
            return Err(format!("the pull answered without the pushed row: {body}").into());
        }
        if woken < sent {
            return Err("the pull answered before the push: raise --settle-ms".into());
        }
        samples.push(woken.checked_duration_since(pushed).unwrap_or_else(|| {
            early += 1;
            Duration::ZERO
        }));
        cursor = text(&page["cursor"])?;
    }
    samples.sort();
    let us = |q: f64| {
        let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_micros()
    };
    println!(
        "BENCH p50_us={} p99_us={} max_us={} early={early}",
        us(0.5),
        us(0.99),
        us(1.0)
    );
    Ok(())
}

async fn cold_start(bin: &Path, url: &str, times: usize, cpus: Option<&str>) -> Result<(), Error> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let mut samples = Vec::with_capacity(times);
    for _ in 0..times {
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = tokio::process::Command::new("taskset");
                c.arg("-c").arg(cpus).arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        command
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let start = Instant::now();
        let mut child = command.spawn()?;
        loop {
            if start.elapsed() > Duration::from_secs(30) {
                return Err("the service did not become ready within 30 s".into());
            }
            let ready = http
                .get(format!("{url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        child.kill().await?;
        child.wait().await?;
    }
    samples.sort_by(f64::total_cmp);
    print_rate(samples[samples.len() / 2]);
    Ok(())
}
