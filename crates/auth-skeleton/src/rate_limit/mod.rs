//! Rate limits that stop credential stuffing and mail abuse without locking real users out.
//!
//! Each [`Limit`] is a GCRA quota (governor): `N/minute` allows a burst of `N` refilled evenly
//! over the minute. Limits are checked before any password hashing or mail work, so a refused
//! attempt costs a map lookup. Every login attempt counts against its limits (the outcome is not
//! known before the hash), successful ones included; the defaults leave ample room for a person.
//!
//! Where the counts live is [`RateLimitStore`] (`RATE_LIMIT_STORE`): [`InMemoryRateLimiter`]
//! counts in this process, so several instances behind a balancer would each keep their own
//! counts; [`DatabaseRateLimiter`] keeps them in the app's database, one statement per check,
//! shared by every instance (the default on PostgreSQL). The [`RateLimiter`] trait is the seam for
//! any other store.
//!
//! A lockout cannot be turned against its victim: password reset has limits of its own, and a
//! successful reset clears the account's login limit.

mod database;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter as Gcra};

pub use database::DatabaseRateLimiter;

/// The limits, one per thing an attacker could repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// Sign-ups per client IP (`RATE_LIMIT_SIGNUP_IP`).
    SignupIp,
    /// Login attempts per client IP (`RATE_LIMIT_LOGIN_IP`).
    LoginIp,
    /// Login attempts per normalised email (`RATE_LIMIT_LOGIN_EMAIL`).
    LoginEmail,
    /// Login attempts that present a device token, per account (`RATE_LIMIT_LOGIN_DEVICE_USER`):
    /// whoever once held the password and kept device tokens gets few guesses from all of them
    /// together, not five from each.
    LoginDeviceUser,
    /// Password-reset requests per client IP (`RATE_LIMIT_FORGOT_IP`).
    ForgotIp,
    /// Password-reset requests per normalised email (`RATE_LIMIT_FORGOT_EMAIL`).
    ForgotEmail,
    /// Verification mails per user (`RATE_LIMIT_VERIFY_USER`).
    VerifyUser,
    /// Email-change requests per user (`RATE_LIMIT_EMAIL_CHANGE_USER`).
    EmailChangeUser,
    /// Password checks of a signed-in user: password change, email change, account deletion
    /// (`RATE_LIMIT_PASSWORD_USER`), so a stolen session cannot guess the password.
    PasswordUser,
    /// Row pushes per user in `app-rows` (`RATE_LIMIT_PUSH_USER`).
    PushUser,
    /// Save writes (`PUT` and `DELETE /v1/save`) per user in `app-blob` (`RATE_LIMIT_SAVE_USER`).
    SaveUser,
}

impl Limit {
    /// Every limit.
    pub const ALL: [Limit; 11] = [
        Limit::SignupIp,
        Limit::LoginIp,
        Limit::LoginEmail,
        Limit::LoginDeviceUser,
        Limit::ForgotIp,
        Limit::ForgotEmail,
        Limit::VerifyUser,
        Limit::EmailChangeUser,
        Limit::PasswordUser,
        Limit::PushUser,
        Limit::SaveUser,
    ];

    /// The `NAME` of its `RATE_LIMIT_NAME` variable.
    pub fn name(self) -> &'static str {
        match self {
            Limit::SignupIp => "SIGNUP_IP",
            Limit::LoginIp => "LOGIN_IP",
            Limit::LoginEmail => "LOGIN_EMAIL",
            Limit::LoginDeviceUser => "LOGIN_DEVICE_USER",
            Limit::ForgotIp => "FORGOT_IP",
            Limit::ForgotEmail => "FORGOT_EMAIL",
            Limit::VerifyUser => "VERIFY_USER",
            Limit::EmailChangeUser => "EMAIL_CHANGE_USER",
            Limit::PasswordUser => "PASSWORD_USER",
            Limit::PushUser => "PUSH_USER",
            Limit::SaveUser => "SAVE_USER",
        }
    }

    /// The default, as it would be written in `RATE_LIMIT_NAME` (see the README for sources).
    pub fn default_rate(self) -> &'static str {
        match self {
            // OWASP and NIST SP 800-63B: throttle per IP and per account; at most 20 attempts
            // per IP and 10 per account in any 10 minutes (17 + 17/6 <= 20, 8 + 8/6 <= 10).
            Limit::LoginIp => "17/hour",
            Limit::LoginEmail => "8/hour",
            // A device signs in rarely (sessions last weeks); an attacker's kept tokens share it.
            Limit::LoginDeviceUser => "10/hour",
            Limit::SignupIp => "20/hour",
            // Every mail-sending route is strictly limited: at most 5 reset mails per address
            // in an hour (2 + 2 refills), a few per IP and per user.
            Limit::ForgotIp => "10/hour",
            Limit::ForgotEmail => "2/hour",
            Limit::VerifyUser => "3/hour",
            Limit::EmailChangeUser => "3/hour",
            // At most 10 password checks per signed-in user in any hour (5 + 5 refills).
            Limit::PasswordUser => "5/hour",
            // Writes of one account: generous for a syncing device (a push a second, a save
            // every other second, with bursts), not for a loop that fills the disk.
            Limit::PushUser => "60/minute",
            Limit::SaveUser => "30/minute",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A quota: a burst of `burst` refilled evenly over `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The burst, and how many cells refill per `per`.
    pub burst: NonZeroU32,
    /// The refill period.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/second`, `N/minute`, `N/hour`, or `off` (`None`).
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (n, unit) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a rate; write e.g. 10/minute, 5/hour, 2/second or off")
        })?;
        let burst = n
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| format!("{s:?}: N must be a whole number of at least 1"))?;
        let per = match unit.trim() {
            "second" => Duration::from_secs(1),
            "minute" => Duration::from_secs(60),
            "hour" => Duration::from_secs(3_600),
            other => {
                return Err(format!(
                    "{s:?}: unknown unit {other:?}; write e.g. 10/minute, 5/hour, 2/second or off"
                ));
            }
        };
        Ok(Some(Rate { burst, per }))
    }

    fn quota(self) -> Quota {
        Quota::with_period(self.per / self.burst.get())
            .unwrap_or_else(|| Quota::per_second(self.burst))
            .allow_burst(self.burst)
    }
}

/// Where the counts are kept (`RATE_LIMIT_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitStore {
    /// In this process ([`InMemoryRateLimiter`]): each instance counts on its own.
    Memory,
    /// In the app's database ([`DatabaseRateLimiter`]): every instance on that database shares
    /// the counts.
    Database,
}

impl RateLimitStore {
    /// Parses `memory` or `database`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Self::Memory),
            "database" => Ok(Self::Database),
            other => Err(format!("expected memory or database, got {other:?}")),
        }
    }

    /// The contract's default: `database` on PostgreSQL (where several instances may serve one
    /// database), `memory` on SQLite (one process).
    pub fn default_for(backend: crate::db::Backend) -> Self {
        match backend {
            crate::db::Backend::Postgres => Self::Database,
            crate::db::Backend::Sqlite => Self::Memory,
        }
    }
}

/// The configured rate of every limit (`None`: off), and where they are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    rates: HashMap<Limit, Option<Rate>>,
    /// `None`: the default for the database ([`RateLimitStore::default_for`]).
    store: Option<RateLimitStore>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rates: Limit::ALL
                .iter()
                .map(|l| (*l, Rate::parse(l.default_rate()).expect("valid default")))
                .collect(),
            store: None,
        }
    }
}

impl RateLimitConfig {
    /// Sets the rate of `limit` (`None` turns it off).
    pub fn set(&mut self, limit: Limit, rate: Option<Rate>) {
        self.rates.insert(limit, rate);
    }

    /// Every limit off (for tests and trusted embeddings).
    pub fn off() -> Self {
        Self {
            rates: Limit::ALL.iter().map(|l| (*l, None)).collect(),
            store: None,
        }
    }

    /// The rate of `limit`, `None` when off.
    pub fn rate(&self, limit: Limit) -> Option<Rate> {
        self.rates.get(&limit).copied().flatten()
    }

    /// Chooses where the counts are kept (unset: [`RateLimitStore::default_for`] the database).
    pub fn set_store(&mut self, store: RateLimitStore) {
        self.store = Some(store);
    }

    /// Where the counts are kept on `backend`.
    pub fn store(&self, backend: crate::db::Backend) -> RateLimitStore {
        self.store
            .unwrap_or_else(|| RateLimitStore::default_for(backend))
    }
}

/// A refusal: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header (at least 1).
    pub fn secs(self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// What the asynchronous methods of [`RateLimiter`] return.
pub type LimitFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where limits are counted: [`InMemoryRateLimiter`], [`DatabaseRateLimiter`], or a store of
/// your own.
///
/// The services call the asynchronous methods (`check_async`, `clear_async`, `prune_async`); a
/// store that answers from memory implements only the synchronous ones, whose results the
/// asynchronous defaults hand back. A store behind a network call overrides the asynchronous
/// ones.
pub trait RateLimiter: Send + Sync + fmt::Debug + 'static {
    /// Counts one attempt of `limit` for `key`; `Err` when it is over the limit.
    fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter>;
    /// Forgets `key`'s count for `limit` (a successful reset clears the login limit).
    fn clear(&self, limit: Limit, key: &str);
    /// Drops state that no longer limits anything; called periodically.
    fn prune(&self) {}

    /// [`RateLimiter::check`] for a store that must be asked over the network.
    fn check_async<'a>(
        &'a self,
        limit: Limit,
        key: &'a str,
    ) -> LimitFuture<'a, Result<(), RetryAfter>> {
        Box::pin(std::future::ready(self.check(limit, key)))
    }
    /// [`RateLimiter::clear`] for a store that must be asked over the network.
    fn clear_async<'a>(&'a self, limit: Limit, key: &'a str) -> LimitFuture<'a, ()> {
        self.clear(limit, key);
        Box::pin(std::future::ready(()))
    }
    /// [`RateLimiter::prune`] for a store that must be asked over the network.
    fn prune_async(&self) -> LimitFuture<'_, ()> {
        self.prune();
        Box::pin(std::future::ready(()))
    }
}

type Cell = Gcra<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// Per-process limits: a governor GCRA cell per `(limit, key)`, pruned once fully refilled.
///
/// Cells are keyed by a keyed SipHash of `(limit, key)` rather than the key itself: no
/// allocation per key, so a flood of distinct emails or IPs lives in one table whose memory goes
/// back to the system when pruned. The hash key is random per process, so nobody can make two
/// keys share a cell on purpose.
///
/// The table holds at most [`MAX_CELLS`] cells:
/// past that, the oldest cell goes first, so a flood of distinct keys within one period costs a
/// bounded amount of memory and forgives only the longest-standing keys. Measured in a release
/// build, a million cells took 186 MiB of RSS (about 190 bytes a cell with the table's slack), so
/// the default cap holds under 50 MiB.
pub struct InMemoryRateLimiter {
    config: RateLimitConfig,
    clock: DefaultClock,
    hasher: std::hash::RandomState,
    max_cells: usize,
    cells: Mutex<Cells>,
}

/// The most cells an [`InMemoryRateLimiter`] holds by default.
pub const MAX_CELLS: usize = 250_000;

#[derive(Default)]
struct Cells {
    by_id: HashMap<u64, Entry>,
    /// Cell ids in the order they were created (ids of cells gone since are skipped).
    created: VecDeque<u64>,
}

impl Cells {
    /// Makes room for one more cell: drops the oldest while the table is full.
    fn make_room(&mut self, max_cells: usize) {
        while self.by_id.len() >= max_cells {
            match self.created.pop_front() {
                Some(id) => {
                    self.by_id.remove(&id);
                }
                None => break,
            }
        }
    }

    /// Forgets the order of cells that are gone, once it holds mostly those.
    fn compact(&mut self) {
        if self.created.len() > 2 * self.by_id.len().max(1024) {
            let by_id = &self.by_id;
            self.created.retain(|id| by_id.contains_key(id));
            self.created.shrink_to_fit();
        }
    }
}

struct Entry {
    cell: Cell,
    /// When the cell is back to a full burst if unused (after which it limits nothing).
    idle_after: governor::clock::QuantaInstant,
}

impl fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("config", &self.config)
            .field("keys", &self.len())
            .finish()
    }
}

impl InMemoryRateLimiter {
    /// Limits per `config`, holding at most [`MAX_CELLS`] cells.
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_max_cells(config, MAX_CELLS)
    }

    /// Limits per `config`, holding at most `max_cells` cells (the oldest go first).
    pub(crate) fn with_max_cells(config: RateLimitConfig, max_cells: usize) -> Self {
        Self {
            config,
            clock: DefaultClock::default(),
            hasher: std::hash::RandomState::new(),
            max_cells: max_cells.max(1),
            cells: Mutex::new(Cells::default()),
        }
    }

    /// How many `(limit, key)` cells are held.
    pub fn len(&self) -> usize {
        self.cells.lock().map_or(0, |c| c.by_id.len())
    }

    /// Whether no cell is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cell_id(&self, limit: Limit, key: &str) -> u64 {
        use std::hash::BuildHasher as _;
        self.hasher.hash_one((limit, key))
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn check(&self, limit: Limit, key: &str) -> Result<(), RetryAfter> {
        let Some(rate) = self.config.rate(limit) else {
            return Ok(());
        };
        let now = self.clock.now();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.cell_id(limit, key);
        if !cells.by_id.contains_key(&id) {
            cells.make_room(self.max_cells);
            cells.created.push_back(id);
        }
        let entry = cells.by_id.entry(id).or_insert_with(|| Entry {
            cell: Gcra::direct_with_clock(rate.quota(), self.clock.clone()),
            idle_after: now,
        });
        match entry.cell.check() {
            Ok(()) => {
                // A burst's worth of refill after the last use, the cell is as good as new.
                entry.idle_after = now + rate.per.into();
                Ok(())
            }
            Err(not_until) => Err(RetryAfter(not_until.wait_time_from(now))),
        }
    }

    fn clear(&self, limit: Limit, key: &str) {
        let id = self.cell_id(limit, key);
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.by_id.remove(&id);
        cells.compact();
    }

    fn prune(&self) {
        let now = self.clock.now();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.by_id.retain(|_, e| e.idle_after > now);
        // Give the memory back after a flood of distinct keys.
        if cells.by_id.capacity() > 4 * cells.by_id.len().max(1024) {
            cells.by_id.shrink_to_fit();
        }
        cells.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    fn limiter(pairs: &[(&str, &str)]) -> InMemoryRateLimiter {
        InMemoryRateLimiter::new(
            RateLimitConfig::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap(),
        )
    }

    #[test]
    fn parses_rates_and_off() {
        assert_eq!(
            Rate::parse("5/minute"),
            Ok(Some(Rate {
                burst: NonZeroU32::new(5).unwrap(),
                per: Duration::from_secs(60)
            }))
        );
        assert_eq!(Rate::parse("off"), Ok(None));
        for bad in ["", "5", "0/minute", "5/day", "x/hour", "-1/second"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        let err = RateLimitConfig::from_vars(&Vars::from_pairs([("RATE_LIMIT_LOGIN_IP", "lots")]))
            .unwrap_err();
        assert_eq!(err.var, "RATE_LIMIT_LOGIN_IP");
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_after() {
        let l = limiter(&[("RATE_LIMIT_LOGIN_EMAIL", "3/hour")]);
        for _ in 0..3 {
            assert!(l.check(Limit::LoginEmail, "ann@example.com").is_ok());
        }
        let refused = l.check(Limit::LoginEmail, "ann@example.com").unwrap_err();
        assert!(
            refused.0 > Duration::from_secs(19 * 60) && refused.0 <= Duration::from_secs(20 * 60),
            "{refused:?}"
        );
        assert!(
            l.check(Limit::LoginEmail, "bob@example.com").is_ok(),
            "keys are separate"
        );
        assert!(
            l.check(Limit::LoginIp, "ann@example.com").is_ok(),
            "limits are separate"
        );
        l.clear(Limit::LoginEmail, "ann@example.com");
        assert!(
            l.check(Limit::LoginEmail, "ann@example.com").is_ok(),
            "clear forgets the count"
        );
    }

    #[test]
    fn the_defaults_meet_the_contract() {
        let l = InMemoryRateLimiter::new(RateLimitConfig::default());
        let allowed = |limit: Limit| (0..100).take_while(|_| l.check(limit, "k").is_ok()).count();
        // Within one burst (well under 10 minutes of refill) the 11th login per email, the 21st
        // per IP and the 6th reset request per email are refused.
        assert!(allowed(Limit::LoginEmail) <= 10);
        assert!(allowed(Limit::LoginIp) <= 20);
        assert!(allowed(Limit::ForgotEmail) <= 5);
        for limit in Limit::ALL {
            let rate = Rate::parse(limit.default_rate()).unwrap().unwrap();
            // Burst plus what refills in the window stays within the contract's bounds.
            let in_window = |window: Duration| {
                rate.burst.get() as f64
                    + window.as_secs_f64() / rate.per.as_secs_f64() * rate.burst.get() as f64
            };
            match limit {
                Limit::LoginEmail => assert!(in_window(Duration::from_secs(600)) < 11.0),
                Limit::LoginIp => assert!(in_window(Duration::from_secs(600)) < 21.0),
                Limit::ForgotEmail => assert!(in_window(Duration::from_secs(3_599)) < 6.0),
                Limit::PasswordUser => assert!(in_window(Duration::from_secs(3_599)) < 11.0),
                _ => {}
            }
        }
    }

    #[test]
    fn a_full_table_drops_its_oldest_cells_first() {
        let config =
            RateLimitConfig::from_vars(&Vars::from_pairs([("RATE_LIMIT_LOGIN_IP", "1/hour")]))
                .unwrap();
        let l = InMemoryRateLimiter::with_max_cells(config, 3);
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            assert!(l.check(Limit::LoginIp, ip).is_ok());
        }
        assert!(l.check(Limit::LoginIp, "10.0.0.3").is_err(), "limited");
        // A fourth key makes room by dropping the oldest: 10.0.0.1 is forgiven, the rest held.
        assert!(l.check(Limit::LoginIp, "10.0.0.4").is_ok());
        assert_eq!(l.len(), 3);
        assert!(l.check(Limit::LoginIp, "10.0.0.2").is_err());
        assert!(l.check(Limit::LoginIp, "10.0.0.3").is_err());
        assert!(l.check(Limit::LoginIp, "10.0.0.4").is_err());
        assert!(
            l.check(Limit::LoginIp, "10.0.0.1").is_ok(),
            "the oldest went first"
        );
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn a_flood_of_distinct_keys_holds_at_most_the_cap() {
        let l = InMemoryRateLimiter::with_max_cells(RateLimitConfig::default(), 1_000);
        for n in 0..10_000 {
            let _ = l.check(
                Limit::LoginIp,
                &format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
            );
        }
        assert_eq!(l.len(), 1_000);
        let created = l.cells.lock().unwrap().created.len();
        assert!(
            created <= 2 * 1_024 + 1,
            "the order list is bounded too: {created}"
        );
    }

    #[test]
    fn off_never_refuses() {
        let l = limiter(&[("RATE_LIMIT_SIGNUP_IP", "off")]);
        assert!((0..1_000).all(|_| l.check(Limit::SignupIp, "10.0.0.1").is_ok()));
        assert!(l.is_empty(), "an unlimited limit keeps no state");
    }

    #[test]
    fn pruning_drops_idle_cells() {
        let l = limiter(&[("RATE_LIMIT_FORGOT_IP", "5/second")]);
        for i in 0..1_000 {
            l.check(Limit::ForgotIp, &format!("10.0.{}.{}", i / 256, i % 256))
                .unwrap();
        }
        assert_eq!(l.len(), 1_000);
        l.prune();
        assert_eq!(l.len(), 1_000, "cells still refilling are kept");
        std::thread::sleep(Duration::from_millis(1_100));
        l.prune();
        assert!(l.is_empty());
    }
}

#[cfg(test)]
mod memory {
    use super::*;
    use crate::config::Vars;

    fn rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4
    }

    /// A measurement, not an assertion on speed: run with
    /// `cargo test -p auth-skeleton --lib rate_limit::memory -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement that takes a few seconds; run it explicitly"]
    fn a_million_distinct_keys_are_given_back_after_pruning() {
        let config =
            RateLimitConfig::from_vars(&Vars::from_pairs([("RATE_LIMIT_LOGIN_EMAIL", "5/second")]))
                .unwrap();
        let limiter = InMemoryRateLimiter::new(config);
        let before = rss_kib();
        for i in 0..1_000_000u32 {
            let _ = limiter.check(Limit::LoginEmail, &format!("attacker-{i}@example.com"));
        }
        let peak = rss_kib();
        assert_eq!(limiter.len(), 1_000_000);
        std::thread::sleep(Duration::from_millis(1_100));
        limiter.prune();
        let after = rss_kib();
        assert!(limiter.is_empty());
        eprintln!(
            "rate-limit state for 1,000,000 distinct keys: RSS before {} MiB, with the keys {} MiB, after pruning {} MiB",
            before / 1024,
            peak / 1024,
            after / 1024
        );
    }
}
