//! Long-polls woken by a change of the user's data, made through this instance or another.
//!
//! A request that may wait (`Prefer: wait=S`) takes a [`Subscription`] *before* it reads, so
//! that a change committed between its read and its wait still wakes it; it then waits with
//! [`Subscription::wait`]. Whoever commits a change of a user's data calls
//! [`ChangeFeed::announce`] after the commit: it wakes the waiters of this process at once and,
//! on PostgreSQL, sends `NOTIFY auth_skeleton_changes` so that every other instance on the
//! database wakes its own (their listener calls [`ChangeFeed::wake`]).
//!
//! Waiters are bounded per user ([`MAX_WAITERS_PER_USER`]) and in all ([`MAX_WAITERS`]): past
//! a bound there is no subscription and the request answers at once, so that a client cannot
//! pin an unbounded number of requests. At shutdown every waiter is woken
//! ([`ChangeFeed::shut_down`]), so that a stopping instance answers at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::db::Db;

/// The PostgreSQL channel on which committed changes are announced (payload: the user id).
pub const CHANNEL: &str = "auth_skeleton_changes";
/// Waiting requests of one user at most (several devices, a few tabs each).
pub const MAX_WAITERS_PER_USER: usize = 16;
/// Waiting requests of all users at most, per instance.
pub const MAX_WAITERS: usize = 10_000;

/// Where changes are announced and awaited; one per service, shared by its clones.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    users: HashMap<String, Slot>,
    waiters: usize,
}

struct Slot {
    /// Moves on every change of the user's data.
    version: watch::Sender<u64>,
    waiters: usize,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("waiters", &self.state().waiters)
            .finish_non_exhaustive()
    }
}

/// Why [`Subscription::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// A change of the user's data was announced: read again.
    Changed,
    /// The time given passed with no change.
    TimedOut,
    /// The service is stopping: answer now.
    ShuttingDown,
}

impl ChangeFeed {
    /// A feed whose announcements reach the other instances on `db` (PostgreSQL).
    pub fn new(db: Db) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                state: Mutex::new(State::default()),
                shutdown: watch::Sender::new(false),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A subscription to `user_id`'s changes, taken before reading; `None` past the bounds on
    /// waiters or while shutting down (answer at once then).
    pub fn subscribe(&self, user_id: &str) -> Option<Subscription> {
        let shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return None;
        }
        let mut state = self.state();
        if state.waiters >= MAX_WAITERS {
            return None;
        }
        let slot = state
            .users
            .entry(user_id.to_owned())
            .or_insert_with(|| Slot {
                version: watch::Sender::new(0),
                waiters: 0,
            });
        if slot.waiters >= MAX_WAITERS_PER_USER {
            return None;
        }
        slot.waiters += 1;
        let version = slot.version.subscribe();
        state.waiters += 1;
        Some(Subscription {
            feed: self.clone(),
            user_id: user_id.to_owned(),
            version,
            shutdown,
        })
    }

    /// Announces a committed change of `user_id`'s data: wakes this process's waiters, and on
    /// PostgreSQL notifies the other instances. Call it after the commit, never before.
    pub async fn announce(&self, user_id: &str) {
        self.wake(user_id);
        if let Db::Postgres(pool) = &self.inner.db {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(user_id)
                .execute(pool)
                .await;
            if let Err(e) = sent {
                // The change is committed; other instances' waiters answer at their timeout.
                tracing::warn!(error = %e, "change not announced to the other instances");
            }
        }
    }

    /// Wakes this process's waiters on `user_id` (a change announced by another instance).
    pub fn wake(&self, user_id: &str) {
        if let Some(slot) = self.state().users.get(user_id) {
            slot.version.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Wakes every waiter: announcements may have been missed (a lost connection to the
    /// database), so each reads again.
    pub fn wake_all(&self) {
        for slot in self.state().users.values() {
            slot.version.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Answers every waiter now and refuses new ones: the service is stopping.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Requests waiting now.
    pub fn waiters(&self) -> usize {
        self.state().waiters
    }

    fn release(&self, user_id: &str) {
        let mut state = self.state();
        state.waiters = state.waiters.saturating_sub(1);
        if let Some(slot) = state.users.get_mut(user_id) {
            slot.waiters = slot.waiters.saturating_sub(1);
            if slot.waiters == 0 {
                state.users.remove(user_id);
            }
        }
    }
}

/// One request's claim to be woken by a change of its user's data; released when dropped.
pub struct Subscription {
    feed: ChangeFeed,
    user_id: String,
    version: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Waits at most `timeout` for a change announced since the subscription was taken (or
    /// since the previous wait returned [`Woken::Changed`]).
    pub async fn wait(&mut self, timeout: Duration) -> Woken {
        if *self.shutdown.borrow() {
            return Woken::ShuttingDown;
        }
        tokio::select! {
            changed = self.version.changed() => match changed {
                Ok(()) => Woken::Changed,
                // The slot outlives its subscriptions; this cannot happen, and waiting on would
                // be wrong if it did.
                Err(_) => Woken::ShuttingDown,
            },
            _ = self.shutdown.changed() => Woken::ShuttingDown,
            () = tokio::time::sleep(timeout) => Woken::TimedOut,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.release(&self.user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn feed() -> ChangeFeed {
        ChangeFeed::new(Db::connect("sqlite::memory:").await.unwrap())
    }

    #[tokio::test]
    async fn a_change_after_subscribing_wakes_even_before_the_wait() {
        let feed = feed().await;
        let mut sub = feed.subscribe("u1").unwrap();
        feed.wake("u2");
        assert_eq!(
            sub.wait(Duration::from_millis(20)).await,
            Woken::TimedOut,
            "another user's change does not wake"
        );
        feed.announce("u1").await;
        assert_eq!(sub.wait(Duration::from_secs(5)).await, Woken::Changed);
        assert_eq!(sub.wait(Duration::from_millis(20)).await, Woken::TimedOut);
    }

    #[tokio::test]
    async fn waiters_are_bounded_per_user_and_released_when_dropped() {
        let feed = feed().await;
        let subs: Vec<_> = (0..MAX_WAITERS_PER_USER)
            .map(|_| feed.subscribe("u1").unwrap())
            .collect();
        assert!(feed.subscribe("u1").is_none());
        assert!(
            feed.subscribe("u2").is_some(),
            "other users are not held up"
        );
        drop(subs);
        assert_eq!(feed.waiters(), 0);
        assert!(feed.subscribe("u1").is_some());
        assert!(feed.state().users.len() <= 1, "released slots are dropped");
    }

    #[tokio::test]
    async fn shutting_down_answers_every_waiter_and_refuses_new_ones() {
        let feed = feed().await;
        let mut sub = feed.subscribe("u1").unwrap();
        let waiting = tokio::spawn(async move { sub.wait(Duration::from_secs(60)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        feed.shut_down();
        let woken = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(woken.unwrap().unwrap(), Woken::ShuttingDown);
        assert!(feed.subscribe("u1").is_none());
    }
}
