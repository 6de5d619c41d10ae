//! `Idempotency-Key` on `PUT`: what identifies a request, so that its retry can be recognised.
//!
//! A retry after a lost response must get the original answer, not a `412` caused by its own
//! first attempt. The server keeps, per user and key, a fingerprint of the request and the
//! response it gave, for [`KEY_LIFETIME_MS`]; the storage side lives in [`crate::store`].

use sha2::{Digest, Sha256};

/// How long a key is remembered (the contract says 24 hours).
pub const KEY_LIFETIME_MS: i64 = 24 * 3_600 * 1_000;

/// The longest key accepted. Keys are usually UUIDs; the bound keeps rows small.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a key: 1 to [`MAX_KEY_LEN`] visible ASCII characters (spaces inside allowed).
pub fn validate_key(raw: &str) -> Result<&str, String> {
    let key = raw.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "Idempotency-Key: must be 1 to {MAX_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("Idempotency-Key: must be printable ASCII".to_owned());
    }
    Ok(key)
}

/// What makes two `PUT`s the same request: the body and the preconditions.
///
/// Each part is length-prefixed so that no two different requests can run together into the
/// same input.
pub fn fingerprint(body_sha256: &[u8; 32], if_match: &str, if_none_match: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [if_match.as_bytes(), if_none_match.as_bytes(), body_sha256] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_printable_strings() {
        assert_eq!(validate_key(" 8e0f-42 "), Ok("8e0f-42"));
        assert_eq!(validate_key("\"a key\""), Ok("\"a key\""));
        assert!(validate_key("").is_err());
        assert!(validate_key("   ").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key("tab\there").is_err());
    }

    #[test]
    fn the_fingerprint_covers_body_and_preconditions() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let base = fingerprint(&a, "\"g1\"", "");
        assert_eq!(base, fingerprint(&a, "\"g1\"", ""));
        assert_ne!(base, fingerprint(&b, "\"g1\"", ""));
        assert_ne!(base, fingerprint(&a, "\"g2\"", ""));
        assert_ne!(base, fingerprint(&a, "", "\"g1\""));
    }
}
