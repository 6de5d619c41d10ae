//! The engine's configuration: the limits a push is held to and how long tombstones live.

use std::time::Duration;

use auth_skeleton::config::{ConfigError, Vars};

/// At most this many changes in one push.
pub const MAX_CHANGES_PER_PUSH: usize = 1_000;
/// The body limit of a push.
pub const PUSH_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// A row's `data`, serialized compactly, may take at most this many bytes.
pub const MAX_ROW_DATA_BYTES: usize = 64 * 1024;
/// A pull returns this many changes when the client does not say.
pub const DEFAULT_PULL_LIMIT: u32 = 500;
/// A pull returns at most this many changes; a greater `limit` is lowered to it.
pub const MAX_PULL_LIMIT: u32 = 1_000;

/// What `MAX_CLOCK_SKEW`, `TOMBSTONE_RETENTION` and `ROWS_QUOTA` say.
///
/// ```
/// use auth_skeleton::config::Vars;
/// use app_rows::limits::Limits;
///
/// let limits = Limits::from_vars(&Vars::from_pairs([("ROWS_QUOTA", "50")])).unwrap();
/// assert_eq!(limits.quota, 50);
/// assert_eq!(limits.max_clock_skew_ms, 5 * 60 * 1_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A change whose `ts` is further ahead of the server's clock is rejected (`clock_skew`).
    pub max_clock_skew_ms: i64,
    /// Tombstones are purged once both their version's `ts` and the server's applying them
    /// are this old; a change whose `ts` is older is rejected (`too_old`).
    pub tombstone_retention_ms: i64,
    /// How many rows a user may keep, tombstones included until they are purged.
    pub quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: 5 * 60 * 1_000,
            tombstone_retention_ms: 30 * 86_400 * 1_000,
            quota: 100_000,
        }
    }
}

impl Limits {
    /// Reads the limits, with the defaults of the HTTP contract for unset variables.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let skew = vars.duration_or("MAX_CLOCK_SKEW", millis(defaults.max_clock_skew_ms))?;
        let retention = vars.duration_or(
            "TOMBSTONE_RETENTION",
            millis(defaults.tombstone_retention_ms),
        )?;
        // Purging tombstones as soon as they are written would send every client that missed
        // one into a full resync on its next pull.
        if retention.is_zero() {
            return Err(ConfigError::new(
                "TOMBSTONE_RETENTION",
                "must be longer than 0s; write e.g. 30d",
            ));
        }
        Ok(Self {
            max_clock_skew_ms: as_millis(skew),
            tombstone_retention_ms: as_millis(retention),
            quota: vars.u64_or("ROWS_QUOTA", defaults.quota)?,
        })
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.unsigned_abs())
}

fn as_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_and_the_quota() {
        let vars = Vars::from_pairs([
            ("MAX_CLOCK_SKEW", "90s"),
            ("TOMBSTONE_RETENTION", "2d"),
            ("ROWS_QUOTA", "7"),
        ]);
        assert_eq!(
            Limits::from_vars(&vars).unwrap(),
            Limits {
                max_clock_skew_ms: 90_000,
                tombstone_retention_ms: 2 * 86_400_000,
                quota: 7,
            }
        );
        assert_eq!(
            Limits::from_vars(&Vars::from_pairs([])).unwrap(),
            Limits::default()
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("MAX_CLOCK_SKEW", "5"),
            ("TOMBSTONE_RETENTION", "0d"),
            ("TOMBSTONE_RETENTION", "a week"),
            ("ROWS_QUOTA", "-1"),
        ] {
            let err = Limits::from_vars(&Vars::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }
}
