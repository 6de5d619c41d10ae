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
//! Where the key comes from is [`KeySource`](crate::config::KeySource): given (`SECRET_KEY`, or its file with
//! `SECRET_KEY_FILE`), required with PostgreSQL or a public `PUBLIC_URL`; otherwise, on SQLite,
//! generated once into a `0600` file beside the database.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

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
}
