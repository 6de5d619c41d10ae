//! `Content-Digest` (RFC 9530): the client's SHA-256 of the body it sent.
//!
//! The field is a structured-field dictionary (RFC 9651) of algorithm to byte sequence, e.g.
//! `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`, possibly with other algorithms
//! beside it. We check `sha-256` and ignore the rest, as RFC 9530 allows.

use sfv::{ListEntry, Parser};

/// The member this server checks.
const SHA_256: &str = "sha-256";

/// Parses a `Content-Digest` value into the SHA-256 it announces.
///
/// A value that is not a dictionary, lacks `sha-256`, or whose `sha-256` is not a 32-byte byte
/// sequence is refused with a message for the client: the client asked for an integrity check,
/// so silently skipping it would be worse than an error.
pub fn parse_sha256(value: &str) -> Result<[u8; 32], String> {
    let dict: sfv::Dictionary = Parser::new(value)
        .parse()
        .map_err(|_| "Content-Digest: expected a dictionary such as sha-256=:BASE64:".to_owned())?;
    let entry = dict
        .get(SHA_256)
        .ok_or_else(|| "Content-Digest: this server checks sha-256; include it".to_owned())?;
    let bytes = match entry {
        ListEntry::Item(item) => item.bare_item.as_byte_sequence(),
        ListEntry::InnerList(_) => None,
    }
    .ok_or_else(|| "Content-Digest: sha-256 must be a byte sequence (:BASE64:)".to_owned())?;
    bytes
        .try_into()
        .map_err(|_| "Content-Digest: sha-256 must be 32 bytes".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn reads_the_sha256_member() {
        // RFC 9530 appendix B's example body `{"hello": "world"}`.
        let expected: [u8; 32] = Sha256::digest(b"{\"hello\": \"world\"}").into();
        assert_eq!(
            parse_sha256("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
            Ok(expected)
        );
        // Other algorithms and parameters are ignored.
        assert_eq!(
            parse_sha256(
                "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:, \
                 sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:;x=1"
            ),
            Ok(expected)
        );
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        for bad in [
            "",
            "sha-256",
            "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            "sha-256=:not base64!:",
            "sha-256=:AAAA:",
            "sha-256=(:AAAA:)",
            "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:",
            "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ] {
            assert!(parse_sha256(bad).is_err(), "{bad:?}");
        }
    }
}
