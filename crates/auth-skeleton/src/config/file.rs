//! Configuration from files: the optional TOML file (`--config PATH`) and secrets read from
//! files named by `*_FILE` variables.
//!
//! The TOML file uses the variables' names, in either case, with tables as prefixes:
//!
//! ```toml
//! database_url = "postgres://app@db.internal/app_rows"
//! public_url = "https://rows.example.com"
//! allowed_origins = ["https://web.example.com", "https://admin.example.com"]
//! cookie_secure = true
//!
//! [rate_limit]
//! login_ip = "20/minute"   # RATE_LIMIT_LOGIN_IP
//! ```
//!
//! Secrets such as a database password stay out of the environment (which other processes of the
//! same user can read, and which crash reporters like to print) with `DATABASE_URL_FILE=/run/secrets/db`:
//! each variable of [`SECRET_VARS`] can be given as the contents of the file named by
//! `NAME_FILE`, one trailing newline removed. systemd's `LoadCredential=` and Docker secrets both
//! work this way. (Only these names: other programs' `*_FILE` variables may share the
//! environment, and they are none of the service's business.)

use std::collections::HashMap;
use std::path::Path;

use super::{ConfigError, Vars};

/// The suffix that turns a variable into "read my value from this file".
pub const FILE_SUFFIX: &str = "_FILE";

/// The variables that can hold secrets, and so can be read from a file with `NAME_FILE`.
pub const SECRET_VARS: &[&str] = &[
    "DATABASE_URL",
    "MAIL_TRANSPORT",
    "SECRET_KEY",
    "SECRET_KEY_PREVIOUS",
];

/// Reads a TOML configuration file into variables.
pub fn read_toml(path: &Path) -> Result<Vars, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
    })?;
    parse_toml(&text).map_err(|m| ConfigError::new("--config", format!("{}: {m}", path.display())))
}

/// Parses the text of a TOML configuration file into variables.
pub fn parse_toml(text: &str) -> Result<Vars, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let mut map = HashMap::new();
    flatten("", &table, &mut map)?;
    Ok(Vars::from_map(map))
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    for (key, value) in table {
        let name = format!("{prefix}{}", key.to_ascii_uppercase().replace('-', "_"));
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(format!("{key}: a list may only hold strings")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            toml::Value::Table(inner) => {
                flatten(&format!("{name}_"), inner, out)?;
                continue;
            }
            toml::Value::Datetime(_) => {
                return Err(format!(
                    "{key}: write dates and durations as strings, e.g. \"30d\""
                ));
            }
        };
        if out.insert(name.clone(), text).is_some() {
            return Err(format!("{name} is set twice"));
        }
    }
    Ok(())
}

/// The values of the [`SECRET_VARS`] given as `NAME_FILE` in the environment, read from the
/// files they name, as variables `NAME`.
///
/// Setting both `NAME` and `NAME_FILE` is an error: one of them would be silently ignored.
pub fn secrets_from_env_files() -> Result<Vars, ConfigError> {
    let pointers = SECRET_VARS.iter().filter_map(|name| {
        let path = std::env::var(format!("{name}{FILE_SUFFIX}")).ok()?;
        Some(((*name).to_owned(), path))
    });
    secrets_from_files(pointers, |name| {
        std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
    })
}

/// Reads each `(NAME, PATH)`; `is_set(NAME)` says whether `NAME` is also given directly.
pub fn secrets_from_files(
    pointers: impl IntoIterator<Item = (String, String)>,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vars, ConfigError> {
    let mut map = HashMap::new();
    for (name, path) in pointers {
        let var = format!("{name}{FILE_SUFFIX}");
        if name.is_empty() || path.trim().is_empty() {
            continue;
        }
        if is_set(&name) {
            return Err(ConfigError::new(
                &var,
                format!("{name} is set too; set one of {name} and {var}, not both"),
            ));
        }
        let value = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::new(&var, format!("cannot read the file {path:?}: {e}")))?;
        let value = value
            .strip_suffix('\n')
            .map(|v| v.strip_suffix('\r').unwrap_or(v))
            .unwrap_or(&value);
        map.insert(name, value.to_owned());
    }
    Ok(Vars::from_map(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_become_variable_names() {
        let vars = parse_toml(
            r#"
            database_url = "sqlite://x.db"
            COOKIE_SECURE = false
            password-min-length = 12
            allowed_origins = ["https://a.example", "https://b.example"]
            [rate_limit]
            login_ip = "5/minute"
            "#,
        )
        .unwrap();
        assert_eq!(vars.get("DATABASE_URL").as_deref(), Some("sqlite://x.db"));
        assert_eq!(vars.get("COOKIE_SECURE").as_deref(), Some("false"));
        assert_eq!(vars.get("PASSWORD_MIN_LENGTH").as_deref(), Some("12"));
        assert_eq!(
            vars.get("ALLOWED_ORIGINS").as_deref(),
            Some("https://a.example,https://b.example")
        );
        assert_eq!(vars.get("RATE_LIMIT_LOGIN_IP").as_deref(), Some("5/minute"));
    }

    #[test]
    fn bad_toml_says_where() {
        let err = parse_toml("bind = \n").unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
        let err = parse_toml("bind = \"a\"\nBIND = \"b\"").unwrap_err();
        assert!(err.contains("BIND is set twice"), "{err}");
        assert!(parse_toml("x = [1, 2]").is_err());
    }

    #[test]
    fn secrets_come_from_files_without_their_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        std::fs::write(&path, "postgres://u:p@h/db\n").unwrap();
        let p = path.display().to_string();
        let vars = secrets_from_files([("DATABASE_URL".to_owned(), p.clone())], |_| false).unwrap();
        assert_eq!(
            vars.get("DATABASE_URL").as_deref(),
            Some("postgres://u:p@h/db")
        );

        let err = secrets_from_files([("DATABASE_URL".to_owned(), p)], |_| true).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL_FILE");
        let err = secrets_from_files(
            [("DATABASE_URL".to_owned(), "/no/such/file".to_owned())],
            |_| false,
        )
        .unwrap_err();
        assert_eq!(err.var, "DATABASE_URL_FILE");
        assert!(err.message.contains("/no/such/file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
