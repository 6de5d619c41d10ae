//! The pull cursor: opaque to clients, a position in the user's change sequence to the server.
//!
//! A cursor is base64url (no padding) of a format tag byte followed by the sequence number as
//! 8 big-endian bytes. The tag lets a later format be told apart from this one; clients only
//! echo what they were given. See `docs/adr/0010-rows-sync-cursor-and-tombstones.md`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The tag of the current format.
const FORMAT_V1: u8 = 1;
const ENCODED_LEN: usize = 1 + 8;

/// The sequence number of the last change a client has seen (0: none).
///
/// ```
/// use app_rows::cursor::Cursor;
///
/// let c = Cursor(42);
/// assert_eq!(Cursor::decode(&c.encode()), Ok(c));
/// assert!(Cursor::decode("not a cursor").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub i64);

/// A cursor that this server did not mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("since: not a cursor returned by this server; pull from the start (omit since)")]
pub struct MalformedCursor;

impl Cursor {
    /// The cursor's text.
    pub fn encode(self) -> String {
        let mut bytes = [0u8; ENCODED_LEN];
        bytes[0] = FORMAT_V1;
        bytes[1..].copy_from_slice(&self.0.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor's text; anything this module did not write is refused.
    pub fn decode(text: &str) -> Result<Self, MalformedCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| MalformedCursor)?;
        let [FORMAT_V1, seq @ ..] = bytes.as_slice() else {
            return Err(MalformedCursor);
        };
        let seq: [u8; 8] = seq.try_into().map_err(|_| MalformedCursor)?;
        let seq = i64::from_be_bytes(seq);
        if seq < 0 {
            return Err(MalformedCursor);
        }
        Ok(Cursor(seq))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_cursor_round_trips(seq in 0i64..=i64::MAX) {
            let text = Cursor(seq).encode();
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(Cursor::decode(&text), Ok(Cursor(seq)));
        }

        #[test]
        fn decoding_never_panics(text in ".{0,40}") {
            let _ = Cursor::decode(&text);
        }
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let good = Cursor(7).encode();
        for bad in [
            String::new(),
            "!!!".to_owned(),
            format!("{good}="),
            good[..good.len() - 1].to_owned(),
            format!("{good}AA"),
            URL_SAFE_NO_PAD.encode([2, 0, 0, 0, 0, 0, 0, 0, 7]),
            URL_SAFE_NO_PAD.encode([1, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ] {
            assert_eq!(Cursor::decode(&bad), Err(MalformedCursor), "{bad:?}");
        }
    }
}
