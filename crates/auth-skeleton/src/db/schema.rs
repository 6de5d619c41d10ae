//! Schema management: the database ownership check and the migrations.
//!
//! The library's migrations and each app's are separate sets tracked in separate tables
//! (`_auth_skeleton_migrations` and `_app_migrations`), so an app can add, squash or renumber its
//! own without ever colliding with a library release. Every statement is idempotent
//! (`IF NOT EXISTS`), and on PostgreSQL the migrator holds an advisory lock, so several
//! instances starting at once apply each migration exactly once.

use sqlx::migrate::Migrator;

use crate::db::Db;

/// The table that tracks this crate's own migrations.
pub const AUTH_MIGRATIONS_TABLE: &str = "_auth_skeleton_migrations";
/// The table that tracks the app's migrations.
pub const APP_MIGRATIONS_TABLE: &str = "_app_migrations";

/// One set of migrations, written for each backend.
#[derive(Debug)]
pub struct Migrations {
    /// Migrations for SQLite.
    pub sqlite: Migrator,
    /// Migrations for PostgreSQL.
    pub postgres: Migrator,
}

impl Migrations {
    /// An app's migrations, usually built with `sqlx::migrate!` from `migrations/APP/{sqlite,postgres}`.
    ///
    /// ```ignore
    /// let migrations = Migrations::app(
    ///     sqlx::migrate!("../../migrations/app-rows/sqlite"),
    ///     sqlx::migrate!("../../migrations/app-rows/postgres"),
    /// );
    /// ```
    pub fn app(sqlite: Migrator, postgres: Migrator) -> Self {
        Self::tracked_in(sqlite, postgres, APP_MIGRATIONS_TABLE)
    }

    /// An app with no tables of its own.
    pub fn none() -> Self {
        Self::app(Migrator::DEFAULT, Migrator::DEFAULT)
    }

    /// This crate's own migrations (accounts, sessions, tokens, mail outbox).
    pub fn auth() -> Self {
        Self::tracked_in(
            sqlx::migrate!("./migrations/sqlite"),
            sqlx::migrate!("./migrations/postgres"),
            AUTH_MIGRATIONS_TABLE,
        )
    }

    fn tracked_in(mut sqlite: Migrator, mut postgres: Migrator, table: &'static str) -> Self {
        sqlite.dangerous_set_table_name(table);
        postgres.dangerous_set_table_name(table);
        Self { sqlite, postgres }
    }

    /// Applies every pending migration.
    pub async fn run(&self, db: &Db) -> Result<(), sqlx::migrate::MigrateError> {
        match db {
            Db::Sqlite(s) => self.sqlite.run(&s.writer).await,
            Db::Postgres(p) => self.postgres.run(p).await,
        }
    }

    /// The highest version of this set that has been applied, if any.
    pub async fn applied_version(&self, db: &Db) -> Result<Option<i64>, sqlx::Error> {
        let table = match db {
            Db::Sqlite(_) => self.sqlite.table_name.as_ref(),
            Db::Postgres(_) => self.postgres.table_name.as_ref(),
        };
        // The table name is one of this module's constants, never user input.
        let sql = format!("SELECT MAX(version) FROM {table} WHERE success");
        let result = crate::read_db!(db, |pool| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
        });
        match result {
            Ok(v) => Ok(v),
            Err(e) if is_missing_table(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn is_missing_table(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| {
        let msg = e.message();
        msg.contains("no such table") || e.code().as_deref() == Some("42P01")
    })
}

/// Why a service may not use a database.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// The database was created by another app.
    #[error(
        "this database belongs to the app `{owner}`, not `{me}`: each app runs on its own database; \
         point DATABASE_URL at {me}'s database"
    )]
    OwnedByAnotherApp {
        /// The app that created the database.
        owner: String,
        /// The app that tried to open it.
        me: String,
    },
    /// The database failed.
    #[error("database error during the ownership check: {0}")]
    Db(#[from] sqlx::Error),
}

/// Records `app` as the owner of a new database, or checks that an existing one belongs to it.
///
/// Runs before any migration, so an app never alters another app's database.
pub async fn claim_ownership(db: &Db, app: &str, now_ms: i64) -> Result<(), OwnershipError> {
    crate::execute_db!(
        db,
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS _app_owner (
                singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
                app_name   TEXT   NOT NULL,
                claimed_at BIGINT NOT NULL
            )",
        )
    )?;
    crate::execute_db!(
        db,
        sqlx::query(
            "INSERT INTO _app_owner (singleton, app_name, claimed_at) VALUES (1, $1, $2)
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(app)
        .bind(now_ms)
    )?;
    let owner = owner(db).await?.unwrap_or_default();
    if owner == app {
        Ok(())
    } else {
        Err(OwnershipError::OwnedByAnotherApp {
            owner,
            me: app.to_owned(),
        })
    }
}

/// The app recorded as the database's owner, if any.
pub async fn owner(db: &Db) -> Result<Option<String>, sqlx::Error> {
    let result = crate::write_db!(db, |pool| {
        sqlx::query_scalar("SELECT app_name FROM _app_owner WHERE singleton = 1")
            .fetch_optional(pool)
            .await
    });
    match result {
        Err(e) if is_missing_table(&e) => Ok(None),
        other => other,
    }
}
