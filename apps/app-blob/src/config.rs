//! The app's own settings: `MAX_SAVE_BYTES`, `SAVE_HISTORY`, `BLOB_BYTES_QUOTA` and
//! `SAVE_FILE_THRESHOLD`.

use auth_skeleton::config::{ConfigError, Vars};

/// The default `MAX_SAVE_BYTES`: 16 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The default `SAVE_HISTORY`.
pub const DEFAULT_HISTORY: u64 = 10;
/// The largest `MAX_SAVE_BYTES` accepted: a save below the file threshold (and any save on
/// PostgreSQL) is held in memory while it is checked and stored as one database value, so the
/// bound keeps both within reason.
pub const MAX_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The largest `SAVE_HISTORY` accepted; each kept version may be `MAX_SAVE_BYTES` large.
pub const MAX_HISTORY: u64 = 1_000;
/// The default `BLOB_BYTES_QUOTA`: 64 MiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * 1024 * 1024;
/// The largest `BLOB_BYTES_QUOTA` accepted (sizes are summed as SQL `BIGINT`).
pub const MAX_QUOTA_BYTES: u64 = i64::MAX as u64;

/// The default `SAVE_FILE_THRESHOLD` beside a SQLite database: from this size on, a save is
/// kept in a file (measured in BENCHMARKS.md, "Where files beat rows").
pub const DEFAULT_FILE_THRESHOLD: u64 = 256 * 1024;

/// `SAVE_FILE_THRESHOLD`: from which size saves are kept in files beside the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileThreshold {
    /// Not set: [`DEFAULT_FILE_THRESHOLD`] on SQLite, no files on PostgreSQL.
    Default,
    /// `off`: every save in the database.
    Off,
    /// A size in bytes (SQLite only).
    Bytes(u64),
}

/// Limits of the save engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveConfig {
    /// The largest save accepted, in bytes.
    pub max_bytes: usize,
    /// How many replaced or deleted versions are kept per user.
    pub history: u32,
    /// How many bytes a user's versions may hold together, the current one and the history's.
    pub quota_bytes: u64,
    /// From which size saves are kept in files.
    pub file_threshold: FileThreshold,
}

impl SaveConfig {
    /// Reads `MAX_SAVE_BYTES`, `SAVE_HISTORY`, `BLOB_BYTES_QUOTA` and `SAVE_FILE_THRESHOLD`; a malformed or
    /// out-of-range value names its variable.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let max_bytes = byte_count(
            vars,
            "MAX_SAVE_BYTES",
            DEFAULT_MAX_BYTES,
            1..=MAX_MAX_BYTES,
            "16MiB",
        )?;
        let history = vars.u64_or("SAVE_HISTORY", DEFAULT_HISTORY)?;
        if history > MAX_HISTORY {
            return Err(ConfigError::new(
                "SAVE_HISTORY",
                format!("must be at most {MAX_HISTORY}"),
            ));
        }
        let quota_bytes = byte_count(
            vars,
            "BLOB_BYTES_QUOTA",
            DEFAULT_QUOTA_BYTES,
            1..=MAX_QUOTA_BYTES,
            "64MiB",
        )?;
        let file_threshold = match vars.get("SAVE_FILE_THRESHOLD") {
            None => FileThreshold::Default,
            Some(value) if value.trim() == "off" => FileThreshold::Off,
            Some(value) => parse_bytes(&value)
                .map(FileThreshold::Bytes)
                .ok_or_else(|| {
                    ConfigError::new(
                        "SAVE_FILE_THRESHOLD",
                        format!(
                            "must be `off` or a byte count with an optional unit (B, KiB, MiB, \
                             GiB, TiB), such as `256KiB`; got {value:?}"
                        ),
                    )
                })?,
        };
        Ok(Self {
            max_bytes: max_bytes as usize,
            history: history as u32,
            quota_bytes,
            file_threshold,
        })
    }
}

/// The byte count `name` (with an optional unit) within `allowed`, or `default` when unset; a
/// malformed or out-of-range value is refused, naming the variable and showing `example`.
fn byte_count(
    vars: &Vars,
    name: &str,
    default: u64,
    allowed: std::ops::RangeInclusive<u64>,
    example: &str,
) -> Result<u64, ConfigError> {
    let Some(value) = vars.get(name) else {
        return Ok(default);
    };
    parse_bytes(&value)
        .filter(|n| allowed.contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a byte count from {} to {}, with an optional unit (B, KiB, MiB, \
                     GiB, TiB), such as `{example}`; got {value:?}",
                    allowed.start(),
                    allowed.end()
                ),
            )
        })
}

/// A byte count with an optional binary unit: `16777216`, `512 KiB`, `64MiB`, `1GiB`; none for
/// anything else or an overflow.
fn parse_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let c = SaveConfig::from_vars(&Vars::from_pairs([])).unwrap();
        assert_eq!(c.max_bytes, 16_777_216);
        assert_eq!(c.history, 10);
        assert_eq!(c.quota_bytes, 64 * 1024 * 1024);
        assert_eq!(c.file_threshold, FileThreshold::Default);
    }

    #[test]
    fn the_file_threshold_is_off_or_a_byte_count() {
        for (value, threshold) in [
            ("off", FileThreshold::Off),
            ("0", FileThreshold::Bytes(0)),
            ("256KiB", FileThreshold::Bytes(256 << 10)),
        ] {
            let vars = Vars::from_pairs([("SAVE_FILE_THRESHOLD", value)]);
            assert_eq!(
                SaveConfig::from_vars(&vars).unwrap().file_threshold,
                threshold
            );
        }
        for value in ["on", "-1", "1.5MiB"] {
            let vars = Vars::from_pairs([("SAVE_FILE_THRESHOLD", value)]);
            let err = SaveConfig::from_vars(&vars).unwrap_err();
            assert_eq!(err.var, "SAVE_FILE_THRESHOLD", "{value}");
        }
    }

    #[test]
    fn the_quota_takes_a_byte_count_with_an_optional_unit() {
        for (value, bytes) in [
            ("16777216", 16_777_216),
            ("64MiB", 64 << 20),
            ("64 MiB", 64 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("2TiB", 2 << 40),
            ("1000B", 1000),
            ("1", 1),
        ] {
            let c =
                SaveConfig::from_vars(&Vars::from_pairs([("BLOB_BYTES_QUOTA", value)])).unwrap();
            assert_eq!(c.quota_bytes, bytes, "{value}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("MAX_SAVE_BYTES", "0"),
            ("MAX_SAVE_BYTES", "lots"),
            ("MAX_SAVE_BYTES", "268435457"),
            ("SAVE_HISTORY", "-1"),
            ("SAVE_HISTORY", "1001"),
            ("BLOB_BYTES_QUOTA", "0"),
            ("BLOB_BYTES_QUOTA", "0MiB"),
            ("BLOB_BYTES_QUOTA", "MiB"),
            ("BLOB_BYTES_QUOTA", "-1"),
            ("BLOB_BYTES_QUOTA", "64 MB"),
            ("BLOB_BYTES_QUOTA", "1.5GiB"),
            ("BLOB_BYTES_QUOTA", "lots"),
            ("BLOB_BYTES_QUOTA", "99999999999TiB"),
            ("BLOB_BYTES_QUOTA", "9223372036854775808"),
        ] {
            let err = SaveConfig::from_vars(&Vars::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
        let c = SaveConfig::from_vars(&Vars::from_pairs([("SAVE_HISTORY", "0")])).unwrap();
        assert_eq!(c.history, 0);
        // Sizes take the units the quota takes.
        let c = SaveConfig::from_vars(&Vars::from_pairs([("MAX_SAVE_BYTES", "2MiB")])).unwrap();
        assert_eq!(c.max_bytes, 2 << 20);
        let c = SaveConfig::from_vars(&Vars::from_pairs([("MAX_SAVE_BYTES", "256MiB")])).unwrap();
        assert_eq!(c.max_bytes, 256 << 20);
    }
}
