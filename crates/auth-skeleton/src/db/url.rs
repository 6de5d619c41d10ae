//! `DATABASE_URL`, parsed once: which backend it names, and a `Display` (and `Debug`) that never
//! shows its password, so settings can be printed and logged as they are.

use std::fmt;
use std::path::PathBuf;

/// A database URL of a backend this crate runs on.
///
/// ```
/// use auth_skeleton::db::DatabaseUrl;
///
/// let url = DatabaseUrl::parse("postgres://app:s3cret@db.internal/rows").unwrap();
/// assert!(!url.is_sqlite());
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal/rows");
/// assert!(!format!("{url:?}").contains("s3cret"));
/// assert!(DatabaseUrl::parse("mysql://db/rows").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or `sqlite::memory:`.
    Sqlite(String),
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl DatabaseUrl {
    /// Tells the backend from the scheme; anything else is an error that says what is expected.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err("expected sqlite://PATH or postgres://USER@HOST/DB".to_owned())
        }
    }

    /// The URL as given, password included: for connecting, never for printing.
    pub fn expose(&self) -> &str {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => url,
        }
    }

    /// Whether it names a SQLite database.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }

    /// The file of a SQLite database; `None` for PostgreSQL and in-memory SQLite.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        super::sqlite_file(self.expose())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url_password(self.expose()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A URL with its password replaced by `***` (for printing); a user name without a password
/// is masked too, since it is then most likely a token (`smtp://API_KEY@relay`).
///
/// ```
/// use auth_skeleton::db::mask_url_password;
///
/// assert_eq!(mask_url_password("postgres://app:s3cret@db/app"), "postgres://app:***@db/app");
/// assert_eq!(mask_url_password("sqlite://data/a.db"), "sqlite://data/a.db");
/// assert_eq!(
///     mask_url_password("smtp://SG.api-key-123@relay.example.com:587?tls=required"),
///     "smtp://***@relay.example.com:587?tls=required"
/// );
/// ```
pub fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(mut url) if !url.username().is_empty() => {
            let _ = url.set_username("***");
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}
