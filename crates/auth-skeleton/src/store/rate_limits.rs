//! `auth_rate_limits`: the GCRA state of limits counted in the database
//! ([`crate::rate_limit::DatabaseRateLimiter`]), one row per limit and key.

use crate::db::Db;

/// What one counted attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Whether the attempt was within the limit (and so counted).
    pub allowed: bool,
    /// A refused attempt's row: its theoretical arrival time, µs since the epoch.
    pub previous: Option<i64>,
    /// The time the statement ran at, µs since the epoch.
    pub now: i64,
}

/// Counts an attempt on `bucket` if `max(tat, now) + interval` stays within `window` of now,
/// atomically, all in µs. PostgreSQL reads its own clock, so that instances whose clocks
/// differ agree; SQLite, one host's file, reads this process's.
pub async fn count_rate_limit(
    db: &Db,
    bucket: &[u8],
    interval: i64,
    window: i64,
) -> Result<Counted, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            let (allowed, previous, now) = sqlx::query_as(
                "WITH clock AS (
                     SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now
                 ),
                 previous AS (SELECT tat FROM auth_rate_limits WHERE bucket = $1),
                 counted AS (
                     INSERT INTO auth_rate_limits AS r (bucket, tat)
                     SELECT $1, clock.now + $2 FROM clock
                     ON CONFLICT (bucket) DO UPDATE
                         SET tat = GREATEST(r.tat, (SELECT now FROM clock)) + $2
                         WHERE GREATEST(r.tat, (SELECT now FROM clock)) + $2
                               - (SELECT now FROM clock) <= $3
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM counted),
                        (SELECT tat FROM previous),
                        (SELECT now FROM clock)",
            )
            .bind(bucket)
            .bind(interval)
            .bind(window)
            .fetch_one(pool)
            .await?;
            Ok(Counted {
                allowed,
                previous,
                now,
            })
        }
        Db::Sqlite(s) => {
            // One writer: the statement and the read after it see the same row.
            let now = wall_clock_micros();
            let counted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO auth_rate_limits AS r (bucket, tat) VALUES ($1, $2 + $3)
                 ON CONFLICT (bucket) DO UPDATE SET tat = MAX(r.tat, $2) + $3
                     WHERE MAX(r.tat, $2) + $3 - $2 <= $4
                 RETURNING tat",
            )
            .bind(bucket)
            .bind(now)
            .bind(interval)
            .bind(window)
            .fetch_optional(&s.writer)
            .await?;
            let previous = match counted {
                Some(_) => None,
                None => {
                    sqlx::query_scalar("SELECT tat FROM auth_rate_limits WHERE bucket = $1")
                        .bind(bucket)
                        .fetch_optional(&s.writer)
                        .await?
                }
            };
            Ok(Counted {
                allowed: counted.is_some(),
                previous,
                now,
            })
        }
    }
}

/// Forgets `bucket`'s count.
pub async fn clear_rate_limit(db: &Db, bucket: &[u8]) -> Result<u64, sqlx::Error> {
    crate::execute_db!(
        db,
        sqlx::query("DELETE FROM auth_rate_limits WHERE bucket = $1").bind(bucket)
    )
}

/// Deletes the rows whose burst is whole again (they limit nothing).
pub async fn prune_rate_limits(db: &Db) -> Result<u64, sqlx::Error> {
    match db {
        Db::Postgres(pool) => sqlx::query(
            "DELETE FROM auth_rate_limits
             WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .execute(pool)
        .await
        .map(|done| done.rows_affected()),
        Db::Sqlite(s) => sqlx::query("DELETE FROM auth_rate_limits WHERE tat < $1")
            .bind(wall_clock_micros())
            .execute(&s.writer)
            .await
            .map(|done| done.rows_affected()),
    }
}

/// Now, in µs since the Unix epoch (limits follow real time, as the in-memory store's do).
fn wall_clock_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
