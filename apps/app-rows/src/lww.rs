//! Which write wins: the `(ts, counter, node)` version order and what a push does to a row.
//!
//! Pure decisions, kept apart from the SQL so that they are property-tested on their own.
//! The store runs [`decide`] while it holds the user's lock, so the comparison and the write that
//! follows it are never interleaved with another push of the same user.

use std::cmp::Ordering;

/// A writer's hybrid logical clock reading: the version of a row.
///
/// Versions compare as the tuple `(ts, counter, node)`, lexicographically; `node` compares by
/// its UTF-8 bytes (which is Unicode code point order), never by a locale's collation, so that
/// every client and both databases agree on the winner.
///
/// ```
/// use app_rows::lww::Version;
///
/// let a = Version::new(1_000, 0, "device-b");
/// let b = Version::new(1_000, 1, "device-a");
/// assert!(a < b, "the counter breaks a tie of ts");
/// assert!(Version::new(1_000, 1, "device-b") > b, "the node breaks a tie of both");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Milliseconds since the Unix epoch, as the writer's clock read them.
    pub ts: i64,
    /// Orders writes with the same `ts`.
    pub counter: i64,
    /// The writing device; orders writes with the same `ts` and `counter`.
    pub node: String,
}

impl Version {
    /// A version from its three parts.
    pub fn new(ts: i64, counter: i64, node: impl Into<String>) -> Self {
        Self {
            ts,
            counter,
            node: node.into(),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ts
            .cmp(&other.ts)
            .then(self.counter.cmp(&other.counter))
            .then_with(|| self.node.as_bytes().cmp(other.node.as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a pushed change does to the row it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No such row yet: the change becomes the row.
    Insert,
    /// The change's version is greater: it replaces the whole row (data and tombstone flag).
    Replace,
    /// The stored version is equal or greater: nothing changes. This is what makes a retried
    /// push harmless.
    Stale,
    /// No such row yet, and the user has no room left for a new one.
    OverQuota,
}

/// Decides what a change with version `incoming` does to a row stored at `stored` (`None`: no
/// such row, not even a tombstone). `room_for_new_row` says whether the user's quota allows one
/// more row; it matters only when the row is new.
///
/// A tombstone is a row like any other: it is replaced only by a greater version, so an older
/// write never brings a deleted row back.
///
/// ```
/// use app_rows::lww::{Outcome, Version, decide};
///
/// let stored = Version::new(2_000, 0, "a");
/// assert_eq!(decide(Some(&stored), &Version::new(1_999, 9, "z"), true), Outcome::Stale);
/// assert_eq!(decide(Some(&stored), &stored, true), Outcome::Stale);
/// assert_eq!(decide(Some(&stored), &Version::new(2_000, 1, "a"), false), Outcome::Replace);
/// assert_eq!(decide(None, &stored, true), Outcome::Insert);
/// assert_eq!(decide(None, &stored, false), Outcome::OverQuota);
/// ```
pub fn decide(stored: Option<&Version>, incoming: &Version, room_for_new_row: bool) -> Outcome {
    match stored {
        Some(stored) if incoming > stored => Outcome::Replace,
        Some(_) => Outcome::Stale,
        None if room_for_new_row => Outcome::Insert,
        None => Outcome::OverQuota,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A write as the server sees it: which row, at which version, tombstone or not.
    #[derive(Debug, Clone)]
    struct Write {
        key: u8,
        version: Version,
        deleted: bool,
    }

    fn version() -> impl Strategy<Value = Version> {
        // Small ranges so that ties of ts and of (ts, counter) are common.
        (
            0i64..4,
            0i64..3,
            prop::sample::select(vec!["a", "b", "é", "B", "aa"]),
        )
            .prop_map(|(ts, counter, node)| Version::new(ts, counter, node))
    }

    fn write() -> impl Strategy<Value = Write> {
        (0u8..4, version(), any::<bool>()).prop_map(|(key, version, deleted)| Write {
            key,
            version,
            deleted,
        })
    }

    /// Writes with distinct versions per row (as distinct devices' clocks give), and a delivery
    /// of them: every write at least once, some twice or more, in any order.
    fn deliveries() -> impl Strategy<Value = (Vec<Write>, Vec<Write>)> {
        prop::collection::vec(write(), 1..40)
            .prop_map(|writes| {
                let mut seen = std::collections::BTreeSet::new();
                writes
                    .into_iter()
                    .filter(|w| seen.insert((w.key, w.version.clone())))
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(|writes| {
                let extra = prop::collection::vec(prop::sample::select(writes.clone()), 0..40);
                (Just(writes), extra)
            })
            .prop_flat_map(|(writes, extra)| {
                let all: Vec<Write> = writes.iter().cloned().chain(extra).collect();
                (Just(writes), Just(all).prop_shuffle())
            })
    }

    /// The server's rows, driven by `decide` exactly as the store drives the database.
    fn apply(state: &mut BTreeMap<u8, (Version, bool)>, w: &Write) -> Outcome {
        let outcome = decide(state.get(&w.key).map(|(v, _)| v), &w.version, true);
        if matches!(outcome, Outcome::Insert | Outcome::Replace) {
            state.insert(w.key, (w.version.clone(), w.deleted));
        }
        outcome
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn order_is_the_lexicographic_tuple_order(a in version(), b in version()) {
            let tuple = (a.ts, a.counter, a.node.as_bytes()).cmp(&(b.ts, b.counter, b.node.as_bytes()));
            prop_assert_eq!(a.cmp(&b), tuple);
            prop_assert_eq!(a == b, tuple == Ordering::Equal);
        }

        /// Any delivery order, with duplicates, ends in the greatest version of every row.
        #[test]
        fn any_order_with_duplicates_converges_to_the_greatest_version(
            (writes, deliveries) in deliveries()
        ) {
            let mut state = BTreeMap::new();
            for w in &deliveries {
                apply(&mut state, w);
            }
            let keys: std::collections::BTreeSet<u8> = writes.iter().map(|w| w.key).collect();
            prop_assert_eq!(state.len(), keys.len());
            for (key, (version, deleted)) in &state {
                let greatest = writes.iter().filter(|w| w.key == *key).max_by(|a, b| a.version.cmp(&b.version));
                prop_assert_eq!(Some(version), greatest.map(|w| &w.version));
                prop_assert_eq!(Some(*deleted), greatest.map(|w| w.deleted));
            }
        }

        /// Delivering a write again changes nothing.
        #[test]
        fn a_retried_write_is_stale(writes in prop::collection::vec(write(), 1..20)) {
            let mut state = BTreeMap::new();
            for w in &writes {
                apply(&mut state, w);
            }
            let before = state.clone();
            for w in &writes {
                prop_assert_eq!(apply(&mut state, w), Outcome::Stale);
            }
            prop_assert_eq!(state, before);
        }

        /// A tombstone is replaced only by a greater version.
        #[test]
        fn an_older_write_never_resurrects_a_tombstone(tombstone in version(), later in version()) {
            let mut state = BTreeMap::new();
            apply(&mut state, &Write { key: 0, version: tombstone.clone(), deleted: true });
            apply(&mut state, &Write { key: 0, version: later.clone(), deleted: false });
            let (version, deleted) = &state[&0];
            if later > tombstone {
                prop_assert!(!*deleted);
                prop_assert_eq!(version, &later);
            } else {
                prop_assert!(*deleted);
                prop_assert_eq!(version, &tombstone);
            }
        }

        /// The quota stops only new rows; existing rows, tombstones included, still change.
        #[test]
        fn the_quota_stops_only_new_rows(stored in prop::option::of(version()), incoming in version()) {
            let outcome = decide(stored.as_ref(), &incoming, false);
            match &stored {
                None => prop_assert_eq!(outcome, Outcome::OverQuota),
                Some(s) if incoming > *s => prop_assert_eq!(outcome, Outcome::Replace),
                Some(_) => prop_assert_eq!(outcome, Outcome::Stale),
            }
        }
    }
}
