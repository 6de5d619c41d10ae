//! Secrets handed to clients: session tokens (and, later, mailed tokens).
//!
//! A session token is `ID.SECRET`: `ID` is 128 random bits that name the session row (and are
//! shown as the session's `id`), `SECRET` is 256 random bits of which only the SHA-256 is
//! stored. A lookup finds the row by `ID` and compares the hashes in constant time, so a
//! database leak yields no usable token and the comparison leaks nothing through timing
//! (the Copenhagen Book's "session id + secret" design). Randomness comes from the OS CSPRNG.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
/// Base64url without padding: 4 characters per 3 bytes, rounded up.
const fn b64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// Fills an array from the operating system's CSPRNG.
///
/// # Panics
/// If the OS cannot supply randomness, which leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    SysRng
        .try_fill_bytes(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

/// `bytes` random bytes from the OS CSPRNG, base64url-encoded without padding.
pub(crate) fn random_token_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SysRng
        .try_fill_bytes(&mut buf)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new opaque identifier (128 random bits, 32 hex digits) for users and other rows.
pub fn new_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// Whether `s` has the shape of a session id (the public half of a [`NewSessionToken`]). Any
/// other id names no session and is answered without a query: PostgreSQL refuses text with a
/// NUL in it.
pub(crate) fn is_session_id(s: &str) -> bool {
    s.len() == b64_len(ID_BYTES) && URL_SAFE_NO_PAD.decode(s).is_ok()
}

/// SHA-256 of a secret, as stored at rest.
pub fn hash_secret(secret: &[u8]) -> Vec<u8> {
    Sha256::digest(secret).to_vec()
}

/// A freshly minted session token: the string for the client and what the server stores.
#[derive(Debug)]
pub struct NewSessionToken {
    /// `ID.SECRET`, shown to the client once.
    pub token: String,
    /// The session id (the public half).
    pub id: String,
    /// SHA-256 of the secret half.
    pub secret_hash: Vec<u8>,
}

impl NewSessionToken {
    /// Mints a token.
    pub fn generate() -> Self {
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<ID_BYTES>());
        let secret = random_bytes::<SECRET_BYTES>();
        let token = format!("{id}.{}", URL_SAFE_NO_PAD.encode(secret));
        Self {
            token,
            id,
            secret_hash: hash_secret(&secret),
        }
    }
}

/// A token presented by a client, split and decoded but not yet checked against storage.
#[derive(Debug)]
pub(crate) struct PresentedToken {
    /// The session id half.
    pub id: String,
    secret: [u8; SECRET_BYTES],
}

impl PresentedToken {
    /// Splits `ID.SECRET`; anything of the wrong shape is `None` (and never reaches the database).
    pub fn parse(token: &str) -> Option<Self> {
        let (id, secret) = token.split_once('.')?;
        if id.len() != b64_len(ID_BYTES) || secret.len() != b64_len(SECRET_BYTES) {
            return None;
        }
        URL_SAFE_NO_PAD.decode(id).ok()?;
        let secret: [u8; SECRET_BYTES] = URL_SAFE_NO_PAD.decode(secret).ok()?.try_into().ok()?;
        Some(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// Whether this token's secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        hash_secret(&self.secret).ct_eq(stored_hash).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_and_matches_only_its_own_hash() {
        let a = NewSessionToken::generate();
        let b = NewSessionToken::generate();
        assert_ne!(a.token, b.token);
        let presented = PresentedToken::parse(&a.token).unwrap();
        assert_eq!(presented.id, a.id);
        assert!(presented.matches(&a.secret_hash));
        assert!(!presented.matches(&b.secret_hash));
        assert!(!a.token.contains(&hex::encode(&a.secret_hash)));
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        let good = NewSessionToken::generate().token;
        let (id, secret) = good.split_once('.').unwrap();
        for bad in [
            String::new(),
            id.to_owned(),
            format!("{id}."),
            format!("{id}.{}", &secret[1..]),
            format!("{id}.{secret}x"),
            format!("{id}!.{secret}").replacen('!', "", 0) + "=",
            format!("{}.{secret}", "*".repeat(id.len())),
        ] {
            assert!(PresentedToken::parse(&bad).is_none(), "{bad:?} parsed");
        }
    }
}
