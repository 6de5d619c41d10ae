//! The database handle: SQLite or PostgreSQL, chosen at run time from the URL.
//!
//! Every query in this crate (and in the apps built on it) is written once, with `$1`-style
//! placeholders that both backends accept, and run through [`read_db!`](crate::read_db),
//! [`write_db!`](crate::write_db), [`with_tx!`](crate::with_tx) or, for a statement whose rows
//! affected are its result, [`execute_db!`](crate::execute_db) and
//! [`execute_tx!`](crate::execute_tx), which expand the same code once per backend. The rest of the
//! code never matches on the backend itself. See `docs/adr/0002-one-binary-two-backends.md`.
//!
//! SQLite gets one writer connection and a pool of readers: SQLite allows one writer at a time
//! anyway, and a single writer turns lock contention into a queue instead of `SQLITE_BUSY`
//! errors. Writes use `BEGIN IMMEDIATE` so a transaction never has to upgrade a read lock.

mod schema;
mod url;

pub use schema::{
    APP_MIGRATIONS_TABLE, AUTH_MIGRATIONS_TABLE, Migrations, OwnershipError, claim_ownership, owner,
};

pub use url::{DatabaseUrl, mask_url_password};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// How long a SQLite connection waits for a lock held by another process (the admin CLI, a
/// backup) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool to the service's database.
///
/// Cheap to clone. Run queries on it with [`read_db!`](crate::read_db),
/// [`write_db!`](crate::write_db) and [`execute_db!`](crate::execute_db):
///
/// ```no_run
/// # async fn demo(db: auth_skeleton::db::Db) -> Result<(), sqlx::Error> {
/// use auth_skeleton::{execute_db, read_db};
/// let notes: i64 = read_db!(db, |pool| {
///     sqlx::query_scalar("SELECT COUNT(*) FROM notes")
///         .fetch_one(pool)
///         .await
/// })?;
/// let stale: u64 = execute_db!(
///     db,
///     sqlx::query("DELETE FROM notes WHERE updated_at < $1").bind(0_i64)
/// )?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite: a single writer connection and a pool of readers on one file.
    Sqlite(SqliteDb),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// The two SQLite pools behind [`Db::Sqlite`].
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// Exactly one connection: every write goes through it.
    pub writer: SqlitePool,
    /// Read-only work (lookups, listings) runs here, concurrently with the writer (WAL).
    pub reader: SqlitePool,
}

/// A transaction on either backend; see [`with_tx!`](crate::with_tx).
#[derive(Debug)]
pub enum Tx {
    /// A SQLite transaction (begun with `BEGIN IMMEDIATE` on the writer).
    Sqlite(Transaction<'static, Sqlite>),
    /// A PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedScheme,
    /// The URL does not parse for its backend.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The directory for a SQLite file could not be created.
    #[error("cannot create the directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database did not answer.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
}

impl Db {
    /// Opens a pool for `url`: `sqlite://PATH` (the file and its directory are created on first
    /// use, mode `0600` and `0700` whatever the umask, and so are the file's `-wal` and `-shm`),
    /// `sqlite::memory:`, or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Db, ConnectError> {
        match DatabaseUrl::parse(url).map_err(|_| ConnectError::UnsupportedScheme)? {
            DatabaseUrl::Sqlite(url) => Self::connect_sqlite(&url).await,
            DatabaseUrl::Postgres(url) => Self::connect_postgres(&url).await,
        }
    }

    async fn connect_sqlite(url: &str) -> Result<Db, ConnectError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction acknowledged to a client survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows (accounts, sessions, tokens, mail) are zeroed in their pages instead
            // of lingering in the file; FAST skips only what would cost extra I/O (whole
            // pages moved to the free list, which a later write reuses).
            .pragma("secure_delete", "FAST")
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_private_sqlite_file(Path::new(options.get_filename()), url.contains("mode=ro"))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(ConnectError::Connect)?;
        // An in-memory database exists once per connection, so readers must share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(reader_pool_size())
                .connect_with(options)
                .await
                .map_err(ConnectError::Connect)?
        };
        Ok(Db::Sqlite(SqliteDb { writer, reader }))
    }

    async fn connect_postgres(url: &str) -> Result<Db, ConnectError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
            // Statements outside a transaction too (a session touch, a logout) are written for
            // READ COMMITTED; under a stricter database default a concurrent update of the same
            // row would fail with a serialization error instead of waiting.
            .options([("default_transaction_isolation", "read committed")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(ConnectError::Connect)?;
        Ok(Db::Postgres(pool))
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(s) => Tx::Sqlite(s.writer.begin_with("BEGIN IMMEDIATE").await?),
            // The isolation every statement of this crate and of the apps is written for,
            // whatever `default_transaction_isolation` the database was given: under
            // REPEATABLE READ or SERIALIZABLE a concurrent write would be a serialization
            // failure, a `500`, instead of waiting for the row.
            Db::Postgres(p) => {
                Tx::Postgres(p.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?)
            }
        })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let _: i32 = crate::read_db!(self, |pool| {
            sqlx::query_scalar("SELECT 1").fetch_one(pool).await
        })?;
        Ok(())
    }

    /// Closes every connection, waiting for checked-out ones to come back.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => {
                s.reader.close().await;
                s.writer.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    /// Rolls the transaction back (dropping it does the same).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// Creates a SQLite database's missing directories (`0700`) and, unless it exists or is opened
/// read-only, the file itself: empty, with mode `0600`. SQLite would create a new file `0644`
/// minus the umask; it opens an existing empty file as it is, and gives the `-wal`, `-shm` and
/// journal files it creates the database file's own mode. An existing file is never changed;
/// `serve` warns about one that others can read ([`crate::config::checks::exposed_files`]).
fn create_private_sqlite_file(file: &Path, read_only: bool) -> Result<(), ConnectError> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private_files::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if read_only || file.exists() {
        return Ok(());
    }
    match crate::private_files::create_file(file) {
        Ok(_) => Ok(()),
        // Another process created it between the check and here: it is theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ConnectError::Connect(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", file.display()),
        )))),
    }
}

/// The file of a `sqlite:` URL; `None` for PostgreSQL and in-memory SQLite databases.
///
/// ```
/// use std::path::{Path, PathBuf};
/// use auth_skeleton::db::sqlite_file;
///
/// assert_eq!(sqlite_file("sqlite://data/app.db").as_deref(), Some(Path::new("data/app.db")));
/// assert_eq!(sqlite_file("sqlite::memory:"), None);
/// assert_eq!(sqlite_file("postgres://db/app"), None);
/// ```
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

fn reader_pool_size() -> u32 {
    std::thread::available_parallelism().map_or(4, |n| (n.get() as u32 * 2).clamp(2, 16))
}

// The macros below take ordinary Rust expressions as arguments (`read_db!(db, |pool| ...)`,
// `execute_tx!(tx, query)`), so rustfmt formats their bodies like any other code: it skips a
// macro call whose arguments do not parse as expressions, as the former `with_db!(read db, ...)`
// did not.

/// Runs `body` with `pool` bound to the pool of a [`Db`] that serves reads: SQLite's reader
/// pool, PostgreSQL's one pool.
///
/// The body is compiled once per backend, so the same query text and the same `FromRow` types
/// serve both; both expansions must have one type (for a statement's rows affected, use
/// [`execute_db!`](crate::execute_db)). The arguments are plain expressions, so rustfmt formats
/// the body.
///
/// ```no_run
/// # async fn demo(db: auth_skeleton::db::Db) -> Result<(), sqlx::Error> {
/// use auth_skeleton::read_db;
/// let notes: i64 = read_db!(db, |pool| {
///     sqlx::query_scalar("SELECT COUNT(*) FROM notes")
///         .fetch_one(pool)
///         .await
/// })?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! read_db {
    ($db:expr, |$pool:ident| $body:expr $(,)?) => {
        match &$db {
            $crate::db::Db::Sqlite(s) => {
                let $pool = &s.reader;
                $body
            }
            $crate::db::Db::Postgres(p) => {
                let $pool = p;
                $body
            }
        }
    };
}

/// Runs `body` with `pool` bound to the pool of a [`Db`] that takes writes: SQLite's single
/// writer, PostgreSQL's one pool.
///
/// As [`read_db!`](crate::read_db), the body is compiled once per backend and both expansions
/// must have one type; a single statement whose rows affected are all that matters is shorter
/// with [`execute_db!`](crate::execute_db).
#[macro_export]
macro_rules! write_db {
    ($db:expr, |$pool:ident| $body:expr $(,)?) => {
        match &$db {
            $crate::db::Db::Sqlite(s) => {
                let $pool = &s.writer;
                $body
            }
            $crate::db::Db::Postgres(p) => {
                let $pool = p;
                $body
            }
        }
    };
}

/// Executes `query` (a `sqlx::query(..)` with its binds, not yet executed) on the writer of a
/// [`Db`] and evaluates to `Result<u64, sqlx::Error>`: the rows it affected.
///
/// Each backend has its own query-result type; this is the one place that turns both into the
/// count, so call sites need no `.map(|r| r.rows_affected())`. Must be used in an `async` context.
///
/// ```no_run
/// # async fn demo(db: auth_skeleton::db::Db) -> Result<(), sqlx::Error> {
/// use auth_skeleton::execute_db;
/// let deleted: u64 = execute_db!(
///     db,
///     sqlx::query("DELETE FROM notes WHERE updated_at < $1").bind(0_i64)
/// )?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! execute_db {
    ($db:expr, $query:expr $(,)?) => {
        match &$db {
            $crate::db::Db::Sqlite(s) => $query
                .execute(&s.writer)
                .await
                .map(|done| done.rows_affected()),
            $crate::db::Db::Postgres(p) => $query.execute(p).await.map(|done| done.rows_affected()),
        }
    };
}

/// Runs `body` with `conn` bound to the connection of a [`Tx`] (a `&mut Tx`).
///
/// As with [`read_db!`](crate::read_db), the body is compiled once per backend and both
/// expansions must have one type; to execute a statement for its rows affected, use
/// [`execute_tx!`](crate::execute_tx).
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr $(,)?) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// Executes `query` (a `sqlx::query(..)` with its binds, not yet executed) inside a [`Tx`] (a
/// `&mut Tx`) and evaluates to `Result<u64, sqlx::Error>`: the rows it affected. See
/// [`execute_db!`](crate::execute_db).
///
/// ```no_run
/// # async fn demo(tx: &mut auth_skeleton::db::Tx) -> Result<(), sqlx::Error> {
/// use auth_skeleton::execute_tx;
/// execute_tx!(tx, sqlx::query("DELETE FROM notes WHERE user_id = $1").bind("u1"))?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! execute_tx {
    ($tx:expr, $query:expr $(,)?) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => $query
                .execute(&mut **t)
                .await
                .map(|done| done.rows_affected()),
            $crate::db::Tx::Postgres(t) => $query
                .execute(&mut **t)
                .await
                .map(|done| done.rows_affected()),
        }
    };
}

/// Whether `err` is PostgreSQL giving up on a transaction to break a deadlock (`40P01`) or a
/// serialization conflict (`40001`): the transaction did nothing and may simply run again.
pub(crate) fn is_retryable_conflict(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// Whether `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
