//! Limits counted in the app's database, so that every instance on it shares them.
//!
//! Each `(limit, key)` is one row holding its GCRA state: the theoretical arrival time (`tat`)
//! of the next attempt. An attempt is allowed when, after adding one emission interval `T`
//! (`per / burst`), `tat` stays within `burst * T` of now; the check and the update are one
//! `INSERT .. ON CONFLICT DO UPDATE .. WHERE` statement, which the database applies atomically
//! however many instances count the same key at once. A row whose `tat` has passed limits
//! nothing (its burst is whole again) and is pruned.
//!
//! On PostgreSQL the table is `UNLOGGED`: a crash of the database empties it, which only forgives
//! attempts, and no write-ahead log is written per login. Time is the database's clock there, so
//! instances whose clocks differ still agree. Keys are stored as a SHA-256 of the limit and the
//! key, so the table holds no email addresses or IPs.

use sha2::{Digest, Sha256};

use super::{InMemoryRateLimiter, Limit, LimitFuture, RateLimitConfig, RateLimiter, RetryAfter};
use crate::db::Db;
use crate::store::{self, Counted};
use std::time::Duration;

/// Counts limits in the `auth_rate_limits` table of the app's database
/// (`RATE_LIMIT_STORE=database`).
///
/// The services count through [`RateLimiter::check_async`]. The synchronous
/// [`RateLimiter::check`] cannot wait for the database, so it counts in this process only.
pub struct DatabaseRateLimiter {
    db: Db,
    config: RateLimitConfig,
    local: InMemoryRateLimiter,
}

impl std::fmt::Debug for DatabaseRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseRateLimiter")
            .field("backend", &self.db.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DatabaseRateLimiter {
    /// Limits per `config`, counted in `db` (whose auth migrations have run).
    pub fn new(db: Db, config: RateLimitConfig) -> Self {
        Self {
            db,
            local: InMemoryRateLimiter::new(config.clone()),
            config,
        }
    }

    /// One attempt; `Ok(Err(..))` when over the limit.
    async fn count(&self, limit: Limit, key: &str) -> Result<Result<(), RetryAfter>, sqlx::Error> {
        let Some(rate) = self.config.rate(limit) else {
            return Ok(Ok(()));
        };
        let interval = micros(rate.per) / i64::from(rate.burst.get());
        let interval = interval.max(1);
        let window = interval * i64::from(rate.burst.get());
        let bucket = bucket(limit, key);
        let Counted {
            allowed,
            previous,
            now,
        } = store::count_rate_limit(&self.db, &bucket, interval, window).await?;
        if allowed {
            return Ok(Ok(()));
        }
        // The attempt would be allowed once `tat + T - now <= window`.
        let wait = previous.map_or(interval, |tat| tat + interval - window - now);
        Ok(Err(RetryAfter(Duration::from_micros(
            u64::try_from(wait).unwrap_or(0).max(1),
        ))))
    }
}

impl RateLimiter for DatabaseRateLimiter {
    fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        self.local.check(limit, key)
    }

    fn clear(&self, limit: Limit, key: &str) {
        self.local.clear(limit, key);
    }

    fn prune(&self) {
        self.local.prune();
    }

    fn check_async<'a>(
        &'a self,
        limit: Limit,
        key: &'a str,
    ) -> LimitFuture<'a, Result<(), RetryAfter>> {
        Box::pin(async move {
            match self.count(limit, key).await {
                Ok(verdict) => verdict,
                // The database is what every other request needs too; counting in this
                // process meanwhile keeps a limit in force rather than none.
                Err(e) => {
                    tracing::warn!(error = %e, limit = %limit, "rate limit store unavailable; counting in this process");
                    self.local.check(limit, key)
                }
            }
        })
    }

    fn clear_async<'a>(&'a self, limit: Limit, key: &'a str) -> LimitFuture<'a, ()> {
        Box::pin(async move {
            self.local.clear(limit, key);
            let bucket = bucket(limit, key);
            let cleared = store::clear_rate_limit(&self.db, &bucket).await;
            if let Err(e) = cleared {
                tracing::warn!(error = %e, limit = %limit, "rate limit not cleared");
            }
        })
    }

    fn prune_async(&self) -> LimitFuture<'_, ()> {
        Box::pin(async move {
            self.local.prune();
            let pruned = store::prune_rate_limits(&self.db).await;
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "idle rate-limit rows pruned"),
                Err(e) => tracing::warn!(error = %e, "rate-limit rows not pruned"),
            }
        })
    }
}

/// The row of `(limit, key)`: a digest, so that no address or IP is stored.
fn bucket(limit: Limit, key: &str) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(limit.name().as_bytes());
    digest.update([0]);
    digest.update(key.as_bytes());
    digest.finalize()[..16].to_vec()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
