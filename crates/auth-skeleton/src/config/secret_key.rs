//! Where the service's [`Keyring`] comes from: `SECRET_KEY` (or `_FILE`), a file generated
//! beside a SQLite database, or nothing where a key is required (ADR 15).

use std::path::{Path, PathBuf};

use super::{ConfigError, Vars};
use crate::db::DatabaseUrl;
use crate::secret_key::{Keyring, SecretKey};

/// Where the service's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `SECRET_KEY` (or `SECRET_KEY_FILE`), and `SECRET_KEY_PREVIOUS` if set.
    Given {
        /// The keys.
        keys: Keyring,
        /// `SECRET_KEY_FILE`, when the key was read from it.
        file: Option<PathBuf>,
    },
    /// No key given, on SQLite: generated once into this file beside the database, then read
    /// from it.
    BesideDatabase {
        /// The key file.
        path: PathBuf,
        /// `SECRET_KEY_PREVIOUS`, if set.
        previous: Option<SecretKey>,
    },
    /// No key given, on an in-memory SQLite database: a key for this process only.
    Ephemeral,
    /// No key given where one is required; says why.
    Missing(String),
}

impl KeySource {
    /// Reads `SECRET_KEY` and `SECRET_KEY_PREVIOUS` for a service on `database_url` reachable
    /// at `public_url`. A missing key is not an error here (commands that seal nothing run
    /// without one); [`KeySource::load`] is.
    pub fn from_vars(
        vars: &Vars,
        database_url: &DatabaseUrl,
        public_url: &url::Url,
    ) -> Result<Self, ConfigError> {
        let previous = vars.parse_or("SECRET_KEY_PREVIOUS", None, |s| {
            SecretKey::parse(s).map(Some)
        })?;
        if let Some(current) =
            vars.parse_or("SECRET_KEY", None, |s| SecretKey::parse(s).map(Some))?
        {
            return Ok(Self::Given {
                keys: Keyring::new(current, previous),
                file: vars.get("SECRET_KEY_FILE").map(PathBuf::from),
            });
        }
        let sqlite = database_url.sqlite_file();
        let why = if !crate::web_origin::is_loopback(public_url) {
            Some("required with a PUBLIC_URL that is not loopback")
        } else if !database_url.is_sqlite() {
            Some("required with PostgreSQL")
        } else {
            None
        };
        Ok(match (why, sqlite) {
            (Some(why), _) => Self::Missing(format!(
                "{why}: set SECRET_KEY (or SECRET_KEY_FILE) to at least 32 random bytes in \
                 base64 (`head -c 32 /dev/urandom | base64`), the same on every instance, and \
                 keep it outside the database"
            )),
            (None, Some(db)) => Self::BesideDatabase {
                path: key_file_beside(&db),
                previous,
            },
            (None, None) => Self::Ephemeral,
        })
    }

    /// The key file this source reads or creates, if any: `SECRET_KEY_FILE` or the file beside
    /// the database.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::BesideDatabase { path, .. } => Some(path),
            Self::Given { file, .. } => file.as_deref(),
            _ => None,
        }
    }

    /// The keys: given, read from the file beside the database (created `0600` with a new key
    /// the first time), or an error that says what to set.
    pub fn load(&self) -> Result<Keyring, ConfigError> {
        match self {
            Self::Given { keys, .. } => Ok(keys.clone()),
            Self::Ephemeral => Ok(Keyring::ephemeral()),
            Self::Missing(why) => Err(ConfigError::new("SECRET_KEY", why.clone())),
            Self::BesideDatabase { path, previous } => {
                let current =
                    read_or_create(path).map_err(|m| ConfigError::new("SECRET_KEY", m))?;
                Ok(Keyring::new(current, previous.clone()))
            }
        }
    }
}

/// `data/app-rows.db` -> `data/app-rows.db.secret-key`.
fn key_file_beside(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".secret-key");
    PathBuf::from(name)
}

fn read_or_create(path: &Path) -> Result<SecretKey, String> {
    let parse = |text: String| {
        SecretKey::parse(&text).map_err(|m| format!("the key in {}: {m}", path.display()))
    };
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => parse(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut text = key.to_base64();
            text.push('\n');
            match crate::private_files::write_new(path, text.as_bytes()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated a secret key beside the database");
                    Ok(key)
                }
                // Another process (the CLI, a second start) created it first: use theirs. (Read
                // once: a link to nowhere also exists without being readable.)
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(path)
                        .map_err(cannot_read)
                        .and_then(parse)
                }
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(cannot_read(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)], db: &str, public: &str) -> KeySource {
        KeySource::from_vars(
            &Vars::from_pairs(pairs.iter().copied()),
            &DatabaseUrl::parse(db).unwrap(),
            &public.parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_key_is_required_with_postgres_or_a_public_url_and_generated_on_sqlite() {
        let local = "http://127.0.0.1:8080";
        let key = SecretKey::generate().to_base64();
        assert!(matches!(
            source(&[], "postgres://db/app", local),
            KeySource::Missing(_)
        ));
        assert!(matches!(
            source(&[], "sqlite://data/app.db", "https://play.example.com"),
            KeySource::Missing(_)
        ));
        assert!(source(&[], "postgres://db/app", local).load().is_err());
        assert!(matches!(
            source(
                &[("SECRET_KEY", &key)],
                "postgres://db/app",
                "https://play.example.com"
            ),
            KeySource::Given { file: None, .. }
        ));
        match source(&[], "sqlite://data/app.db", local) {
            KeySource::BesideDatabase { path, .. } => {
                assert_eq!(path, Path::new("data/app.db.secret-key"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            source(&[], "sqlite::memory:", local),
            KeySource::Ephemeral
        ));
        let err = KeySource::from_vars(
            &Vars::from_pairs([("SECRET_KEY", "c2hvcnQ=")]),
            &DatabaseUrl::parse("sqlite://data/app.db").unwrap(),
            &local.parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.var, "SECRET_KEY");
        assert!(!err.message.contains("c2hvcnQ"), "{err}");
    }

    #[test]
    fn a_key_file_that_links_nowhere_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        std::os::unix::fs::symlink(
            dir.path().join("nowhere"),
            dir.path().join("app.db.secret-key"),
        )
        .unwrap();
        let url = format!("sqlite://{}", db.display());
        let err = source(&[], &url, "http://localhost:8080")
            .load()
            .unwrap_err();
        assert_eq!(err.var, "SECRET_KEY");
        assert!(SecretKey::parse("").unwrap_err().contains("0 bytes"));
    }

    #[test]
    fn the_generated_key_file_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let url = format!("sqlite://{}", db.display());
        let source = source(&[], &url, "http://localhost:8080");
        let first = source.load().unwrap();
        let path = source.file().unwrap();
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = source.load().unwrap();
        let sealed = first.seal("outbox", b"kept", b"");
        assert!(
            second.open("outbox", &sealed, b"").is_some(),
            "the same key again"
        );
    }
}
