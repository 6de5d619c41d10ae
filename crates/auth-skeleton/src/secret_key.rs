//! The service's secret key (`SECRET_KEY`): kept outside the database, so that a copy of the
//! database alone (a backup, a stolen disk, a replica) holds no usable link and no way to mint
//! a cursor.
//!
//! One key serves several purposes; each gets a key of its own, derived with HKDF-SHA256 (RFC
//! 5869) under the purpose's name, so that no two uses ever share a key. [`Keyring::seal`]
//! encrypts with XChaCha20-Poly1305 (192-bit random nonces: no counter to keep across
//! restarts or instances); [`Keyring::tag`] authenticates with HMAC-SHA256. During a rotation
//! `SECRET_KEY_PREVIOUS` still opens and verifies what the old key made; everything new is made
//! with `SECRET_KEY`. See `docs/adr/0015-secret-key.md`.
//!
//! Where the key comes from is [`KeySource`]: given (`SECRET_KEY`, or its file with
//! `SECRET_KEY_FILE`), required with PostgreSQL or a public `PUBLIC_URL`; otherwise, on SQLite,
//! generated once into a `0600` file beside the database.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::{ConfigError, Vars};
use crate::db::DatabaseUrl;

/// The fewest bytes a key may have.
pub const MIN_KEY_BYTES: usize = 32;
/// The bytes of a nonce at the start of a sealed value.
const NONCE_BYTES: usize = 24;

/// Key material: at least [`MIN_KEY_BYTES`] bytes, wiped from memory when dropped, never
/// printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Reads a key written in base64 (standard or URL-safe alphabet, padded or not).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or("is not base64; generate a key with `head -c 32 /dev/urandom | base64`")?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "has {} bytes; a key needs at least {MIN_KEY_BYTES} random bytes \
                 (`head -c 32 /dev/urandom | base64`)",
                bytes.len()
            ));
        }
        if bytes.windows(2).all(|w| w[0] == w[1]) {
            return Err(
                "is one byte repeated, a placeholder rather than a key; generate one \
                 with `head -c 32 /dev/urandom | base64`"
                    .to_owned(),
            );
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// A new key of 32 bytes from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(Zeroizing::new(
            crate::token::random_bytes::<MIN_KEY_BYTES>().to_vec(),
        ))
    }

    /// The key in standard base64, as [`SecretKey::parse`] reads it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&*self.0))
    }

    /// The key for `purpose`: HKDF-SHA256 of this key with the purpose's name as `info`.
    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, &self.0)
            .expand(
                format!("auth-skeleton/{purpose}").as_bytes(),
                out.as_mut_slice(),
            )
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

/// The current key and, during a rotation, the previous one.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SecretKey,
    previous: Option<SecretKey>,
}

impl Keyring {
    /// `current` makes everything; `previous` still opens and verifies.
    pub fn new(current: SecretKey, previous: Option<SecretKey>) -> Self {
        Self { current, previous }
    }

    /// A random key that lives as long as the process: for tests, and for embedders that keep
    /// nothing sealed across restarts.
    pub fn ephemeral() -> Self {
        Self::new(SecretKey::generate(), None)
    }

    fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// Encrypts and authenticates `plaintext` for `purpose`; `context` (not stored, e.g. the
    /// row's id) must be given again to open it, so a sealed value cannot be moved elsewhere.
    /// The result is the nonce followed by the ciphertext.
    pub fn seal(&self, purpose: &str, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let key = self.current.derive(purpose);
        let cipher = XChaCha20Poly1305::new(key.as_slice().into());
        let nonce = crate::token::random_bytes::<NONCE_BYTES>();
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Keyring::seal`] made with the current or the previous key; `None` when
    /// neither opens it (another key, another purpose or context, or altered bytes).
    pub fn open(&self, purpose: &str, sealed: &[u8], context: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = XNonce::from(<[u8; NONCE_BYTES]>::try_from(nonce).ok()?);
        self.keys().find_map(|key| {
            let key = key.derive(purpose);
            XChaCha20Poly1305::new(key.as_slice().into())
                .decrypt(
                    &nonce,
                    Payload {
                        msg: ciphertext,
                        aad: context,
                    },
                )
                .ok()
                .map(Zeroizing::new)
        })
    }

    /// HMAC-SHA256 of `data` for `purpose`, with the current key.
    pub fn tag(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        mac(&self.current, purpose, data)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is (the first bytes of, at least 16) [`Keyring::tag`] of `data` under the
    /// current or the previous key; compared in constant time.
    pub fn verify_tag(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        tag.len() >= 16
            && self
                .keys()
                .any(|key| mac(key, purpose, data).verify_truncated_left(tag).is_ok())
    }
}

fn mac(key: &SecretKey, purpose: &str, data: &[u8]) -> Hmac<Sha256> {
    let key = key.derive(purpose);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice())
        .expect("HMAC takes a key of any length");
    mac.update(data);
    mac
}

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
        let why = if !crate::config::is_loopback(public_url) {
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

    #[test]
    fn sealed_values_open_only_with_their_key_purpose_and_context() {
        let keys = Keyring::ephemeral();
        let sealed = keys.seal("outbox", b"http://x/reset?token=abc", b"row-1");
        assert!(!sealed.windows(5).any(|w| w == b"token"));
        assert_eq!(
            keys.open("outbox", &sealed, b"row-1")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"http://x/reset?token=abc"[..])
        );
        assert!(keys.open("outbox", &sealed, b"row-2").is_none());
        assert!(keys.open("cursor", &sealed, b"row-1").is_none());
        assert!(
            Keyring::ephemeral()
                .open("outbox", &sealed, b"row-1")
                .is_none()
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(keys.open("outbox", &altered, b"row-1").is_none());
        assert!(keys.open("outbox", &sealed[..10], b"row-1").is_none());
        assert_ne!(
            sealed,
            keys.seal("outbox", b"http://x/reset?token=abc", b"row-1")
        );
    }

    #[test]
    fn the_previous_key_opens_and_verifies_but_never_makes() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let before = Keyring::new(old.clone(), None);
        let during = Keyring::new(new.clone(), Some(old));
        let after = Keyring::new(new, None);
        let sealed = before.seal("outbox", b"hello", b"");
        let tag = before.tag("cursor", b"data");
        assert!(during.open("outbox", &sealed, b"").is_some());
        assert!(during.verify_tag("cursor", b"data", &tag[..16]));
        assert!(after.open("outbox", &sealed, b"").is_none());
        assert!(!after.verify_tag("cursor", b"data", &tag));
        // What the rotated ring makes, the new key alone still opens.
        assert!(
            after
                .open("outbox", &during.seal("outbox", b"x", b""), b"")
                .is_some()
        );
        assert!(!during.verify_tag("cursor", b"other", &tag));
        assert!(
            !during.verify_tag("cursor", b"data", &tag[..8]),
            "too short a tag"
        );
    }

    #[test]
    fn keys_are_base64_of_at_least_32_bytes_and_never_printed() {
        let key = SecretKey::generate();
        let text = key.to_base64();
        let again = SecretKey::parse(&format!("  {}\n", text.as_str())).unwrap();
        assert_eq!(*again.0, *key.0);
        let url_safe = URL_SAFE_NO_PAD.encode(&*key.0);
        assert_eq!(*SecretKey::parse(&url_safe).unwrap().0, *key.0);
        assert!(SecretKey::parse(&STANDARD.encode([7u8; 31])).is_err());
        assert!(SecretKey::parse("not base64!").is_err());
        assert!(
            SecretKey::parse(&STANDARD.encode([0u8; 32])).is_err(),
            "a placeholder"
        );
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(!format!("{:?}", Keyring::new(key, None)).contains(text.as_str()));
    }

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
