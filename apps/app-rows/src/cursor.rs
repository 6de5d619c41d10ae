//! The pull cursor: opaque to clients; to the server, a position in the user's change sequence,
//! the purge epoch it was minted under, and a tag of the user it was issued to.
//!
//! A cursor is base64url (no padding) of a format tag byte, then 8 bytes each, big-endian: a
//! tag derived from the user's id, the sequence number, the purge epoch. The format tag lets a
//! later format be told apart; clients only echo what they were given. Cursors of the first
//! format (tag 1, the sequence number alone) are still read, as minted under epoch 0 and not
//! bound to a user. See `docs/adr/0010-rows-sync-cursor-and-tombstones.md`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The tag of the first format: the sequence number alone.
const FORMAT_V1: u8 = 1;
/// The tag of the current format: user tag, sequence number, purge epoch.
const FORMAT_V2: u8 = 2;
const V1_LEN: usize = 1 + 8;
const V2_LEN: usize = 1 + 8 + 8 + 8;

/// Where a client stands: the last change it has seen and the purge epoch of that answer.
///
/// ```
/// use app_rows::cursor::{Cursor, CursorError};
///
/// let c = Cursor { seq: 42, epoch: 3 };
/// assert_eq!(Cursor::decode(&c.encode("ann"), "ann"), Ok(c));
/// assert_eq!(Cursor::decode(&c.encode("ann"), "bob"), Err(CursorError::OtherUser));
/// assert_eq!(Cursor::decode("not a cursor", "ann"), Err(CursorError::Malformed));
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
    /// Not a cursor this server minted (or one it never could have, for this user).
    #[error("since: not a cursor returned by this server; pull from the start (omit since)")]
    Malformed,
    /// A cursor minted for another user.
    #[error("since: this cursor was issued to another user; pull from the start (omit since)")]
    OtherUser,
}

impl Cursor {
    /// The cursor's text, bound to `user_id`.
    pub fn encode(self, user_id: &str) -> String {
        let mut bytes = [0u8; V2_LEN];
        bytes[0] = FORMAT_V2;
        bytes[1..9].copy_from_slice(&user_tag(user_id));
        bytes[9..17].copy_from_slice(&self.seq.to_be_bytes());
        bytes[17..25].copy_from_slice(&self.epoch.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor's text presented by `user_id`; anything this module did not write, or
    /// wrote for another user, is refused.
    pub fn decode(text: &str, user_id: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let cursor = match (bytes.first(), bytes.len()) {
            (Some(&FORMAT_V1), V1_LEN) => Cursor {
                seq: be_i64(&bytes[1..9]),
                epoch: 0,
            },
            (Some(&FORMAT_V2), V2_LEN) => {
                if bytes[1..9] != user_tag(user_id) {
                    return Err(CursorError::OtherUser);
                }
                Cursor {
                    seq: be_i64(&bytes[9..17]),
                    epoch: be_i64(&bytes[17..25]),
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

fn be_i64(bytes: &[u8]) -> i64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(bytes);
    i64::from_be_bytes(array)
}

/// Eight bytes of SHA-256 over a label and the user's id: enough to tell one user's cursors
/// from another's, and it says nothing of the id to whoever holds the cursor.
fn user_tag(user_id: &str) -> [u8; 8] {
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

    proptest! {
        #[test]
        fn every_cursor_round_trips(seq in 0i64..=i64::MAX, epoch in 0i64..=i64::MAX, user in "[a-f0-9]{1,32}") {
            let cursor = Cursor { seq, epoch };
            let text = cursor.encode(&user);
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(Cursor::decode(&text, &user), Ok(cursor));
            prop_assert_eq!(Cursor::decode(&text, &format!("{user}0")), Err(CursorError::OtherUser));
        }

        #[test]
        fn decoding_never_panics(text in ".{0,40}") {
            let _ = Cursor::decode(&text, "u");
        }
    }

    #[test]
    fn reads_the_first_format_as_epoch_zero() {
        let v1 = URL_SAFE_NO_PAD.encode([1, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            Cursor::decode(&v1, "anyone"),
            Ok(Cursor { seq: 7, epoch: 0 })
        );
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let good = Cursor { seq: 7, epoch: 1 }.encode("u");
        let mut negative = URL_SAFE_NO_PAD.decode(&good).unwrap();
        negative[17] = 0x80;
        for bad in [
            String::new(),
            "!!!".to_owned(),
            format!("{good}="),
            good[..good.len() - 1].to_owned(),
            format!("{good}AA"),
            URL_SAFE_NO_PAD.encode([2, 0, 0, 0, 0, 0, 0, 0, 7]),
            URL_SAFE_NO_PAD.encode([3, 0, 0, 0, 0, 0, 0, 0, 7]),
            URL_SAFE_NO_PAD.encode([1, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            URL_SAFE_NO_PAD.encode(negative),
        ] {
            assert_eq!(
                Cursor::decode(&bad, "u"),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
    }
}
