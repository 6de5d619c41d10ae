//! Live sessions kept in memory, so that a request that changes nothing can be authenticated
//! without a database round trip.
//!
//! Two rules keep it from answering with a session that has ended:
//!
//! - In this process, every service method that ends a session or changes an account calls
//!   [`SessionCache::invalidate`] after its commit. A lookup that read the database before that
//!   commit cannot put its stale copy back afterwards: it may only insert under the `generation`
//!   it saw before reading, and `invalidate` moves the generation on.
//! - For other processes (other instances, the admin CLI), the database keeps a counter that
//!   triggers move on every such change (`auth_change_counter`). A hit is only served when the
//!   counter was read less than `refresh` ago and all entries older than its last move were
//!   dropped; so a change committed elsewhere stops being served here within `refresh`.
//! - On PostgreSQL, triggers also announce each ended session and changed account at commit
//!   (`NOTIFY auth_skeleton_sessions`, migration 0006), and a listener drops the entries named
//!   ([`SessionCache::forget_session`], [`SessionCache::forget_user`]): a change made elsewhere
//!   stops being served within the notification's delay. Such a cache serves hits only while its
//!   listener is connected ([`SessionCache::set_listening`]); the counter stays as the bound for a
//!   connection that died without a word.
//!
//! Decisions about expiry and secrets stay with the caller: the cache holds database rows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::store::{self, SessionWithUser};

/// Entries kept at most; past that an arbitrary entry makes room (its next request reloads it).
const MAX_ENTRIES: usize = 100_000;

/// Live sessions by id, as last read from the database.
pub(crate) struct SessionCache {
    refresh: Duration,
    /// Whether hits need a connected listener of the database's announcements.
    notified: bool,
    state: Mutex<State>,
    /// Held by the one request that re-reads the counter; the others meanwhile miss.
    counter_check: tokio::sync::Mutex<()>,
}

struct State {
    /// Moves on every invalidation; an insert is refused if it moved since its read began.
    generation: u64,
    entries: HashMap<String, SessionWithUser>,
    /// The change counter as last read, and when that read began.
    counter: Option<(i64, Instant)>,
    /// Whether the announcements of other processes are heard now.
    listening: bool,
}

/// The generation a miss saw before reading the database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl SessionCache {
    /// A cache whose copies may lag changes made by other processes by at most `refresh`.
    pub(crate) fn new(refresh: Duration) -> Self {
        Self::with_announcements(refresh, false)
    }

    /// A cache that also needs its listener of announcements connected to serve hits.
    pub(crate) fn notified(refresh: Duration) -> Self {
        Self::with_announcements(refresh, true)
    }

    fn with_announcements(refresh: Duration, notified: bool) -> Self {
        Self {
            refresh,
            notified,
            state: Mutex::new(State {
                generation: 0,
                entries: HashMap::new(),
                counter: None,
                listening: false,
            }),
            counter_check: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing can panic while the lock is held, but a poisoned cache is still just data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached rows of session `id`, if present and not possibly stale; otherwise a ticket to
    /// [`SessionCache::insert`] what the caller then reads from the database.
    pub(crate) async fn get(&self, db: &Db, id: &str) -> Result<SessionWithUser, Ticket> {
        self.refresh_counter(db).await;
        self.lookup(id)
    }

    fn lookup(&self, id: &str) -> Result<SessionWithUser, Ticket> {
        let state = self.state();
        let fresh = state
            .counter
            .is_some_and(|(_, read_at)| read_at.elapsed() < self.refresh)
            && (state.listening || !self.notified);
        match state.entries.get(id) {
            Some(found) if fresh => Ok(found.clone()),
            _ => Err(Ticket(state.generation)),
        }
    }

    /// A ticket for a database read that was not preceded by [`SessionCache::get`].
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps `found` unless something was invalidated since `ticket` was issued.
    pub(crate) fn insert(&self, ticket: Ticket, found: SessionWithUser) {
        let mut state = self.state();
        if state.generation != ticket.0 {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES
            && let Some(victim) = state.entries.keys().next().cloned()
        {
            state.entries.remove(&victim);
        }
        state.entries.insert(found.session.id.clone(), found);
    }

    /// Forgets every entry; call after committing anything that ends a session or changes an
    /// account, before answering.
    pub(crate) fn invalidate(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }

    /// Records whether announcements are heard. Either way every entry goes: before listening,
    /// announcements may have been missed; after losing the connection, they will be.
    pub(crate) fn set_listening(&self, listening: bool) {
        let mut state = self.state();
        state.listening = listening;
        state.generation += 1;
        state.entries.clear();
    }

    /// Drops session `id` (announced as ended by another process).
    pub(crate) fn forget_session(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(id);
    }

    /// Drops every session of `user_id` (its account changed or is gone).
    pub(crate) fn forget_user(&self, user_id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|_, e| e.session.user_id != user_id);
    }

    /// Re-reads the change counter when the last read is older than `refresh`, dropping every
    /// entry if it moved. A failed read leaves the cache stale, so it answers nothing.
    async fn refresh_counter(&self, db: &Db) {
        let due = self
            .state()
            .counter
            .is_none_or(|(_, read_at)| read_at.elapsed() >= self.refresh);
        if !due {
            return;
        }
        let Ok(_checking) = self.counter_check.try_lock() else {
            return;
        };
        let started = Instant::now();
        match store::change_counter(db).await {
            Ok(now) => {
                let mut state = self.state();
                if state.counter.is_none_or(|(seen, _)| seen != now) {
                    state.generation += 1;
                    state.entries.clear();
                }
                state.counter = Some((now, started));
            }
            Err(e) => tracing::warn!(error = %e, "session cache: change counter unreadable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionRow;

    fn row(id: &str) -> SessionWithUser {
        SessionWithUser {
            session: SessionRow {
                id: id.to_owned(),
                user_id: "u".into(),
                secret_hash: vec![0; 32],
                created_at: 0,
                last_seen_at: 0,
                expires_at: i64::MAX,
                device_name: None,
            },
            email: "a@example.com".to_owned(),
            email_verified: false,
            user_created_at: 0,
        }
    }

    fn warm(cache: &SessionCache) {
        cache.state().counter = Some((0, Instant::now()));
    }

    #[test]
    fn nothing_is_served_before_the_counter_was_read() {
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.insert(Ticket(0), row("s1"));
        assert!(cache.lookup("s1").is_err());
        warm(&cache);
        assert!(cache.lookup("s1").is_ok());
    }

    #[test]
    fn an_insert_after_an_invalidation_is_refused() {
        let cache = SessionCache::new(Duration::from_secs(60));
        warm(&cache);
        // A lookup misses and reads the database; meanwhile the session is revoked.
        let ticket = Ticket(cache.state().generation);
        cache.invalidate();
        cache.insert(ticket, row("s1"));
        assert!(cache.state().entries.is_empty());
        // A lookup that began after the invalidation may fill the cache.
        let ticket = Ticket(cache.state().generation);
        cache.insert(ticket, row("s1"));
        assert_eq!(cache.state().entries.len(), 1);
    }

    #[test]
    fn an_entry_is_not_served_once_the_counter_read_is_older_than_refresh() {
        let cache = SessionCache::new(Duration::from_millis(50));
        warm(&cache);
        cache.insert(Ticket(0), row("s1"));
        assert!(cache.lookup("s1").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.lookup("s1").is_err());
    }

    #[test]
    fn a_notified_cache_serves_only_while_listening_and_forgets_what_is_announced() {
        let cache = SessionCache::notified(Duration::from_secs(60));
        warm(&cache);
        cache.insert(cache.ticket(), row("s1"));
        assert!(cache.lookup("s1").is_err(), "not listening yet");
        cache.set_listening(true);
        cache.insert(cache.ticket(), row("s1"));
        cache.insert(cache.ticket(), row("s2"));
        assert!(cache.lookup("s1").is_ok());
        let in_flight = cache.ticket();
        cache.forget_session("s1");
        assert!(cache.lookup("s1").is_err());
        assert!(
            cache.lookup("s2").is_ok(),
            "only the announced session goes"
        );
        cache.insert(in_flight, row("s1"));
        assert!(
            cache.lookup("s1").is_err(),
            "a read begun before the announcement is not kept"
        );
        cache.forget_user("u");
        assert!(cache.lookup("s2").is_err());
        cache.insert(cache.ticket(), row("s2"));
        cache.set_listening(false);
        assert!(cache.state().entries.is_empty());
        cache.insert(cache.ticket(), row("s2"));
        assert!(cache.lookup("s2").is_err(), "not served without a listener");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = SessionCache::new(Duration::from_secs(60));
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(Ticket(0), row(&i.to_string()));
        }
        assert_eq!(cache.state().entries.len(), MAX_ENTRIES);
    }
}
