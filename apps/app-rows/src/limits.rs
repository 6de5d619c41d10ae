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

/// What `MAX_CLOCK_SKEW`, `TOMBSTONE_RETENTION`, `ROWS_QUOTA` and `ROWS_BYTES_QUOTA` say.
///
/// ```
/// use auth_skeleton::config::Vars;
/// use app_rows::limits::Limits;
///
/// let limits = Limits::from_vars(&Vars::from_pairs([("ROWS_QUOTA", "50")])).unwrap();
/// assert_eq!(limits.quota, 50);
/// assert_eq!(limits.bytes_quota, 64 * 1024 * 1024);
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
    /// How many bytes of `data` a user may keep (tombstones count 0): a change that would take
    /// the user's total above it is rejected (`quota_exceeded`).
    pub bytes_quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clock_skew_ms: 5 * 60 * 1_000,
            tombstone_retention_ms: 30 * 86_400 * 1_000,
            quota: 100_000,
            bytes_quota: 64 * 1024 * 1024,
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
            bytes_quota: vars.parse_or("ROWS_BYTES_QUOTA", defaults.bytes_quota, parse_bytes)?,
        })
    }
}

/// A byte count with an optional unit: `1048576`, `512B`, `64KiB`, `64MiB`, `1GiB` (or the
/// decimal `kB`, `MB`, `GB`, `TB`); units are not case-sensitive and may follow a space.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let expected = || format!("expected a byte count such as 1048576 or 64MiB, got {s:?}");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(expected()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{s:?} is too large"))
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
            ("ROWS_BYTES_QUOTA", "3MiB"),
        ]);
        assert_eq!(
            Limits::from_vars(&vars).unwrap(),
            Limits {
                max_clock_skew_ms: 90_000,
                tombstone_retention_ms: 2 * 86_400_000,
                quota: 7,
                bytes_quota: 3 * 1024 * 1024,
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
            ("ROWS_BYTES_QUOTA", "64 megs"),
            ("ROWS_BYTES_QUOTA", "MiB"),
            ("ROWS_BYTES_QUOTA", "-1"),
            ("ROWS_BYTES_QUOTA", "1.5MiB"),
            ("ROWS_BYTES_QUOTA", "99999999999TiB"),
        ] {
            let err = Limits::from_vars(&Vars::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn byte_counts_take_an_optional_unit() {
        for (text, bytes) in [
            ("1048576", 1_048_576),
            ("0", 0),
            ("512B", 512),
            ("64KiB", 64 * 1024),
            ("64MiB", 64 * 1024 * 1024),
            ("64 mib", 64 * 1024 * 1024),
            ("2GiB", 2 << 30),
            ("5MB", 5_000_000),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }
}
