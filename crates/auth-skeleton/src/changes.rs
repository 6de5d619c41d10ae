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
//! a bound the longest-waiting request of that user (or of all) answers at once
//! ([`Woken::Superseded`]) and the new one waits in its place. A request whose client hung up
//! keeps its place until its wait ends (the server cannot tell), so refusing the newcomer would
//! let a client that reconnects, or one that abandons requests on purpose, lock long-polls out
//! for the whole wait. At shutdown every waiter is woken ([`ChangeFeed::shut_down`]), so that a
//! stopping instance answers at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Every waiter by the order it came in (ids only grow).
    waiters: BTreeMap<u64, Waiter>,
    next_id: u64,
}

struct Slot {
    /// Moves on every change of the user's data.
    version: watch::Sender<u64>,
    /// The user's waiters, oldest first.
    waiters: BTreeSet<u64>,
}

struct Waiter {
    user_id: String,
    /// Set when a newer request takes the waiter's place.
    superseded: watch::Sender<bool>,
}

impl State {
    /// Removes waiter `id` (answered, or superseded); `true` if it was there.
    fn remove(&mut self, id: u64) -> bool {
        let Some(waiter) = self.waiters.remove(&id) else {
            return false;
        };
        if let Some(slot) = self.users.get_mut(&waiter.user_id) {
            slot.waiters.remove(&id);
            if slot.waiters.is_empty() {
                self.users.remove(&waiter.user_id);
            }
        }
        waiter.superseded.send_replace(true);
        true
    }
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("waiters", &self.state().waiters.len())
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
    /// Past the bound on waiters, a newer request took this one's place: answer now.
    Superseded,
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

    /// A subscription to `user_id`'s changes, taken before reading; `None` while shutting down
    /// (answer at once then). Past the bounds on waiters the longest-waiting request of the user,
    /// or of all, is superseded.
    pub fn subscribe(&self, user_id: &str) -> Option<Subscription> {
        let shutdown = self.inner.shutdown.subscribe();
        if *shutdown.borrow() {
            return None;
        }
        let mut state = self.state();
        let oldest_of_user = state
            .users
            .get(user_id)
            .filter(|slot| slot.waiters.len() >= MAX_WAITERS_PER_USER)
            .and_then(|slot| slot.waiters.first().copied());
        if let Some(oldest) = oldest_of_user {
            state.remove(oldest);
        }
        if state.waiters.len() >= MAX_WAITERS
            && let Some(oldest) = state.waiters.keys().next().copied()
        {
            state.remove(oldest);
        }
        let id = state.next_id;
        state.next_id += 1;
        let slot = state
            .users
            .entry(user_id.to_owned())
            .or_insert_with(|| Slot {
                version: watch::Sender::new(0),
                waiters: BTreeSet::new(),
            });
        slot.waiters.insert(id);
        let version = slot.version.subscribe();
        let superseded = watch::Sender::new(false);
        let superseded_rx = superseded.subscribe();
        state.waiters.insert(
            id,
            Waiter {
                user_id: user_id.to_owned(),
                superseded,
            },
        );
        Some(Subscription {
            feed: self.clone(),
            id,
            user_id: user_id.to_owned(),
            version,
            superseded: superseded_rx,
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
        self.state().waiters.len()
    }

    fn release(&self, id: u64) {
        self.state().remove(id);
    }
}

/// One request's claim to be woken by a change of its user's data; released when dropped.
pub struct Subscription {
    feed: ChangeFeed,
    id: u64,
    user_id: String,
    version: watch::Receiver<u64>,
    superseded: watch::Receiver<bool>,
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
        if *self.superseded.borrow() {
            return Woken::Superseded;
        }
        tokio::select! {
            changed = self.version.changed() => match changed {
                Ok(()) => Woken::Changed,
                // The user's slot went with this waiter's place: it was superseded.
                Err(_) => Woken::Superseded,
            },
            _ = self.superseded.changed() => Woken::Superseded,
            _ = self.shutdown.changed() => Woken::ShuttingDown,
            () = tokio::time::sleep(timeout) => Woken::TimedOut,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.release(self.id);
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
    async fn past_the_bound_the_longest_waiting_request_of_the_user_answers() {
        let feed = feed().await;
        let mut subs: Vec<_> = (0..MAX_WAITERS_PER_USER)
            .map(|_| feed.subscribe("u1").unwrap())
            .collect();
        let other = feed.subscribe("u2").unwrap();
        let newest = feed.subscribe("u1").unwrap();
        assert_eq!(feed.waiters(), MAX_WAITERS_PER_USER + 1, "u1's bound holds");
        assert_eq!(
            subs[0].wait(Duration::from_secs(5)).await,
            Woken::Superseded,
            "the oldest answers at once"
        );
        assert_eq!(
            subs[1].wait(Duration::from_millis(10)).await,
            Woken::TimedOut
        );
        feed.wake("u1");
        assert_eq!(subs[1].wait(Duration::from_secs(5)).await, Woken::Changed);
        drop((subs, other, newest));
        assert_eq!(feed.waiters(), 0);
        assert!(feed.state().users.is_empty(), "released slots are dropped");
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
