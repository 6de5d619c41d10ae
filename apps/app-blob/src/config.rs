//! The app's own settings: `MAX_SAVE_BYTES` and `SAVE_HISTORY`.

use auth_skeleton::config::{ConfigError, Vars};

/// The default `MAX_SAVE_BYTES`: 16 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The default `SAVE_HISTORY`.
pub const DEFAULT_HISTORY: u64 = 10;
/// The largest `MAX_SAVE_BYTES` accepted: a save is held in memory while it is checked and
/// stored as one database value, so the bound keeps both within reason.
pub const MAX_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The largest `SAVE_HISTORY` accepted; each kept version may be `MAX_SAVE_BYTES` large.
pub const MAX_HISTORY: u64 = 1_000;

/// Limits of the save engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveConfig {
    /// The largest save accepted, in bytes.
    pub max_bytes: usize,
    /// How many replaced or deleted versions are kept per user.
    pub history: u32,
}

impl SaveConfig {
    /// Reads `MAX_SAVE_BYTES` and `SAVE_HISTORY`; an out-of-range value names its variable.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let max_bytes = vars.u64_or("MAX_SAVE_BYTES", DEFAULT_MAX_BYTES)?;
        if !(1..=MAX_MAX_BYTES).contains(&max_bytes) {
            return Err(ConfigError::new(
                "MAX_SAVE_BYTES",
                format!("must be between 1 and {MAX_MAX_BYTES} bytes"),
            ));
        }
        let history = vars.u64_or("SAVE_HISTORY", DEFAULT_HISTORY)?;
        if history > MAX_HISTORY {
            return Err(ConfigError::new(
                "SAVE_HISTORY",
                format!("must be at most {MAX_HISTORY}"),
            ));
        }
        Ok(Self {
            max_bytes: max_bytes as usize,
            history: history as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let c = SaveConfig::from_vars(&Vars::from_pairs([])).unwrap();
        assert_eq!(c.max_bytes, 16_777_216);
        assert_eq!(c.history, 10);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("MAX_SAVE_BYTES", "0"),
            ("MAX_SAVE_BYTES", "lots"),
            ("MAX_SAVE_BYTES", "268435457"),
            ("SAVE_HISTORY", "-1"),
            ("SAVE_HISTORY", "1001"),
        ] {
            let err = SaveConfig::from_vars(&Vars::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
        let c = SaveConfig::from_vars(&Vars::from_pairs([("SAVE_HISTORY", "0")])).unwrap();
        assert_eq!(c.history, 0);
    }
}
