//! The pull cursor: opaque to clients; to the server, a position in the user's change sequence,
//! the purge epoch it was minted under, and a tag that binds it to the user it was issued to.
//!
//! A cursor is base64url (no padding) of a format byte (3), then 8 bytes each, big-endian, the
//! sequence number and the purge epoch, then 16 bytes of HMAC-SHA256 under the service's
//! secret key (`SECRET_KEY`, purpose `app-rows/cursor`) over the format byte, both numbers and
//! the user's id. Nobody without the key can make one, and it names no user to whoever holds it.
//! Cursors of the earlier formats (1: the sequence number alone, read as epoch 0; 2: with an
//! unkeyed tag of the user) are still read, so no device resyncs after an upgrade: a made-up
//! cursor of those formats points its caller at its own changes only. See
//! `docs/adr/0010-rows-sync-cursor-and-tombstones.md` and `docs/adr/0015-secret-key.md`.

use auth_skeleton::secret_key::Keyring;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The tag of the first format: the sequence number alone.
const FORMAT_V1: u8 = 1;
/// The tag of the second format: an unkeyed user tag, sequence number, purge epoch.
const FORMAT_V2: u8 = 2;
/// The tag of the current format: sequence number, purge epoch, keyed tag.
const FORMAT_V3: u8 = 3;
const V1_LEN: usize = 1 + 8;
const V2_LEN: usize = 1 + 8 + 8 + 8;
const TAG_LEN: usize = 16;
const V3_LEN: usize = 1 + 8 + 8 + TAG_LEN;
/// The purpose the cursor's tag is made for (see [`Keyring::tag`]).
const TAG_PURPOSE: &str = "app-rows/cursor";

/// Where a client stands: the last change it has seen and the purge epoch of that answer.
///
/// ```
/// use app_rows::cursor::{Cursor, CursorError};
/// use auth_skeleton::secret_key::Keyring;
///
/// let keys = Keyring::ephemeral();
/// let c = Cursor { seq: 42, epoch: 3 };
/// assert_eq!(Cursor::decode(&c.encode("ann", &keys), "ann", &keys), Ok(c));
/// assert_eq!(Cursor::decode(&c.encode("ann", &keys), "bob", &keys), Err(CursorError::NotYours));
/// assert_eq!(Cursor::decode("not a cursor", "ann", &keys), Err(CursorError::Malformed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The sequence number of the last change the client has seen (0: none). When a page ends
    /// the walk, it is the user's last sequence number, purged tombstones included.
    pub seq: i64,
    /// How many purges had removed some of the user's tombstones when the cursor was minted.
    pub epoch: i64,
}

/// Why a cursor was refused; both are `400 invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor of any format this server writes.
    #[error("since: not a cursor returned by this server; pull from the start (omit since)")]
    Malformed,
    /// A cursor issued to another user, or made with a key this server does not hold.
    #[error(
        "since: this cursor was not issued to you by this server (another user's, or made with \
         another secret key); pull from the start (omit since)"
    )]
    NotYours,
}

impl Cursor {
    /// The cursor's text, bound to `user_id` with `keys`.
    pub fn encode(self, user_id: &str, keys: &Keyring) -> String {
        let mut bytes = [0u8; V3_LEN];
        bytes[0] = FORMAT_V3;
        bytes[1..9].copy_from_slice(&self.seq.to_be_bytes());
        bytes[9..17].copy_from_slice(&self.epoch.to_be_bytes());
        let tag = keys.tag(TAG_PURPOSE, &tagged(&bytes[..17], user_id));
        bytes[17..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor's text presented by `user_id`; anything this module did not write, or
    /// wrote for another user or under another key, is refused.
    pub fn decode(text: &str, user_id: &str, keys: &Keyring) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let cursor = match (bytes.first(), bytes.len()) {
            (Some(&FORMAT_V1), V1_LEN) => Cursor {
                seq: be_i64(&bytes[1..9]),
                epoch: 0,
            },
            (Some(&FORMAT_V2), V2_LEN) => {
                if bytes[1..9] != unkeyed_user_tag(user_id) {
                    return Err(CursorError::NotYours);
                }
                Cursor {
                    seq: be_i64(&bytes[9..17]),
                    epoch: be_i64(&bytes[17..25]),
                }
            }
            (Some(&FORMAT_V3), V3_LEN) => {
                let signed = tagged(&bytes[..17], user_id);
                if !keys.verify_tag(TAG_PURPOSE, &signed, &bytes[17..]) {
                    return Err(CursorError::NotYours);
                }
                Cursor {
                    seq: be_i64(&bytes[1..9]),
                    epoch: be_i64(&bytes[9..17]),
                }
            }
            _ => return Err(CursorError::Malformed),
        };
        if cursor.seq < 0 || cursor.epoch < 0 {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }
}

/// What a cursor's tag covers: its other bytes, then the user's id.
fn tagged(body: &[u8], user_id: &str) -> Vec<u8> {
    let mut data = body.to_vec();
    data.extend_from_slice(user_id.as_bytes());
    data
}

fn be_i64(bytes: &[u8]) -> i64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    i64::from_be_bytes(array)
}

/// The second format's tag: eight bytes of SHA-256 over a label and the user's id.
fn unkeyed_user_tag(user_id: &str) -> [u8; 8] {
    let mut input = b"app-rows cursor\0".to_vec();
    input.extend_from_slice(user_id.as_bytes());
    let digest = auth_skeleton::token::hash_secret(&input);
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn keys() -> &'static Keyring {
        static KEYS: std::sync::OnceLock<Keyring> = std::sync::OnceLock::new();
        KEYS.get_or_init(Keyring::ephemeral)
    }

    proptest! {
        #[test]
        fn every_cursor_round_trips(seq in 0i64..=i64::MAX, epoch in 0i64..=i64::MAX, user in "[a-f0-9]{1,32}") {
            let cursor = Cursor { seq, epoch };
            let text = cursor.encode(&user, keys());
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(Cursor::decode(&text, &user, keys()), Ok(cursor));
            prop_assert_eq!(Cursor::decode(&text, &format!("{user}0"), keys()), Err(CursorError::NotYours));
        }

        #[test]
        fn decoding_never_panics(text in ".{0,48}") {
            let _ = Cursor::decode(&text, "u", keys());
        }
    }

    #[test]
    fn only_the_key_that_made_a_cursor_reads_it() {
        let cursor = Cursor { seq: 9, epoch: 2 };
        let text = cursor.encode("u", keys());
        let other = Keyring::ephemeral();
        assert_eq!(
            Cursor::decode(&text, "u", &other),
            Err(CursorError::NotYours)
        );
        // A changed number breaks the tag.
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        bytes[8] ^= 1;
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode(&bytes), "u", keys()),
            Err(CursorError::NotYours)
        );
    }

    #[test]
    fn reads_the_earlier_formats() {
        let v1 = URL_SAFE_NO_PAD.encode([1, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            Cursor::decode(&v1, "anyone", keys()),
            Ok(Cursor { seq: 7, epoch: 0 })
        );
        let mut v2 = vec![FORMAT_V2];
        v2.extend_from_slice(&unkeyed_user_tag("ann"));
        v2.extend_from_slice(&7i64.to_be_bytes());
        v2.extend_from_slice(&2i64.to_be_bytes());
        let v2 = URL_SAFE_NO_PAD.encode(v2);
        assert_eq!(
            Cursor::decode(&v2, "ann", keys()),
            Ok(Cursor { seq: 7, epoch: 2 })
        );
        assert_eq!(
            Cursor::decode(&v2, "bob", keys()),
            Err(CursorError::NotYours)
        );
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let good = Cursor { seq: 7, epoch: 1 }.encode("u", keys());
        let mut v1_negative = vec![1u8, 0x80];
        v1_negative.extend_from_slice(&[0; 7]);
        for bad in [
            String::new(),
            "!!!".to_owned(),
            format!("{good}="),
            good[..good.len() - 1].to_owned(),
            format!("{good}AA"),
            URL_SAFE_NO_PAD.encode([2, 0, 0, 0, 0, 0, 0, 0, 7]),
            URL_SAFE_NO_PAD.encode([3, 0, 0, 0, 0, 0, 0, 0, 7]),
            URL_SAFE_NO_PAD.encode([4; V3_LEN]),
            URL_SAFE_NO_PAD.encode(v1_negative),
        ] {
            assert_eq!(
                Cursor::decode(&bad, "u", keys()),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
    }
}
