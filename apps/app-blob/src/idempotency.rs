//! `Idempotency-Key` on `PUT` and `DELETE`: what identifies a request, so that its retry can be
//! recognised.
//!
//! A retry after a lost response must get the original answer, not a `412` caused by its own
//! first attempt. The server keeps, per user and key, a fingerprint of the request and the
//! response it gave, for [`KEY_LIFETIME_MS`]; the storage side lives in [`crate::store`].

use sha2::{Digest, Sha256};

use crate::precondition::WriteMeaning;

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

/// The write a key came with, as far as its fingerprint goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// A `PUT` of the bytes with this SHA-256.
    Put {
        /// The body's SHA-256.
        body_sha256: &'a [u8; 32],
    },
    /// A `DELETE`.
    Delete,
}

/// What makes two writes the same request: the method, the meaning of the preconditions (not
/// their spelling) and the body.
///
/// The meaning enters as its plain field values ([`WriteMeaning::plain_fields`]), and a `PUT`'s
/// last part is its body's digest, so a record kept before meanings were compared still
/// matches a retry of a plainly spelled `PUT`. A `DELETE`'s last part is the method's name,
/// never 32 bytes long like a digest. Each part is length-prefixed so that no two different
/// requests can run together into the same input.
pub fn fingerprint(write: Write<'_>, conditions: &WriteMeaning) -> Vec<u8> {
    let (if_match, if_none_match) = conditions.plain_fields();
    let last: &[u8] = match write {
        Write::Put { body_sha256 } => body_sha256,
        Write::Delete => b"DELETE",
    };
    let mut h = Sha256::new();
    for part in [if_match.as_bytes(), if_none_match.as_bytes(), last] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precondition::{Condition, Preconditions};

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

    fn meaning(if_match: Option<&str>, if_none_match: Option<&str>) -> WriteMeaning {
        let parse = |v: Option<&str>| v.map(|v| Condition::parse(v).expect("a condition"));
        Preconditions {
            if_match: parse(if_match),
            if_none_match: parse(if_none_match),
        }
        .write_meaning()
    }

    #[test]
    fn the_fingerprint_covers_method_body_and_the_meaning_of_the_preconditions() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let put = |body| Write::Put { body_sha256: body };
        let g1 = meaning(Some("\"g1\""), None);
        let base = fingerprint(put(&a), &g1);
        assert_eq!(
            base,
            fingerprint(put(&a), &meaning(Some("\"g1\", \"g1\""), None))
        );
        assert_eq!(
            base,
            fingerprint(put(&a), &meaning(Some(", \"g1\" ,"), None))
        );
        assert_eq!(
            base,
            fingerprint(put(&a), &meaning(Some("W/\"g0\", \"g1\""), None))
        );
        assert_ne!(base, fingerprint(put(&b), &g1));
        assert_ne!(base, fingerprint(put(&a), &meaning(Some("\"g2\""), None)));
        assert_ne!(base, fingerprint(put(&a), &meaning(Some("*"), None)));
        assert_ne!(base, fingerprint(Write::Delete, &g1));
        assert_eq!(
            fingerprint(Write::Delete, &g1),
            fingerprint(Write::Delete, &meaning(Some("\"g1\",\"g1\""), None))
        );
    }

    /// The fingerprint of a plainly spelled `PUT` is the one computed before meanings were
    /// compared (its raw fields), so records written then still recognise their retries.
    #[test]
    fn plain_puts_keep_the_fingerprint_of_their_raw_fields() {
        fn raw(body: &[u8; 32], if_match: &str, if_none_match: &str) -> Vec<u8> {
            let mut h = Sha256::new();
            for part in [if_match.as_bytes(), if_none_match.as_bytes(), body] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            h.finalize().to_vec()
        }
        let body = [7u8; 32];
        let put = Write::Put { body_sha256: &body };
        for (m, n) in [("\"g3-0badcafe\"", ""), ("", "*"), ("*", "")] {
            let parsed = meaning((!m.is_empty()).then_some(m), (!n.is_empty()).then_some(n));
            assert_eq!(fingerprint(put, &parsed), raw(&body, m, n), "{m:?} {n:?}");
        }
    }
}
