//! Range requests (RFC 9110 §14): which part of a save a `GET` sends, apart from any storage.
//!
//! One range is served (`206`); a request for several, or one that does not parse, gets the
//! whole save (`200`), as §14.2 allows a server to ignore `Range`. A range that starts past the
//! end is `416`. `If-Range` sends the part only while the save is still at the named version,
//! so a client resuming a download never splices two versions together.

/// What to send of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All of it (`200`).
    Whole,
    /// The bytes `first..=last` (`206`).
    Range {
        /// The first byte's offset.
        first: u64,
        /// The last byte's offset (within the representation).
        last: u64,
    },
    /// Nothing: no byte of the range exists (`416`).
    Unsatisfiable,
}

impl Part {
    /// The offset and length of what is sent, for a representation of `size` bytes.
    pub fn span(self, size: u64) -> (u64, u64) {
        match self {
            Part::Range { first, last } => (first, last - first + 1),
            Part::Whole | Part::Unsatisfiable => (0, size),
        }
    }
}

/// Decides what to send from the request's `Range` and `If-Range` field values, the current
/// strong ETag (`"..."`, quotes included) and the size.
pub fn select(range: Option<&str>, if_range: Option<&str>, etag: &str, size: u64) -> Part {
    let Some(range) = range else {
        return Part::Whole;
    };
    // If-Range names a version by a strong ETag (or a date, which our saves do not carry):
    // anything but the current ETag means "send it all".
    if if_range.is_some_and(|v| v.trim() != etag) {
        return Part::Whole;
    }
    let Some(spec) = range
        .trim()
        .strip_prefix("bytes=")
        .or_else(|| range.trim().strip_prefix("BYTES="))
    else {
        return Part::Whole;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Part::Whole;
    };
    // A number too large for 64 bits is larger than any save: it saturates (RFC 9110 §14.1.1
    // asks for very large numbers to be expected, not refused).
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().unwrap_or(u64::MAX))
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-N`: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Part::Unsatisfiable
            } else {
                Part::Range {
                    first: size - suffix.min(size),
                    last: size - 1,
                }
            }
        }
        // `A-` and `A-B`.
        (false, Some(first), last) => {
            match last {
                // `B` before `A`, or a `B` that is not a number: not a range we know.
                Some(last) if last < first => return Part::Whole,
                None if !last_is_empty(spec) => return Part::Whole,
                _ => {}
            }
            if first >= size {
                return Part::Unsatisfiable;
            }
            Part::Range {
                first,
                last: last.map_or(size - 1, |last| last.min(size - 1)),
            }
        }
        _ => Part::Whole,
    }
}

/// Whether `A-B`'s `B` is absent (`A-`), not malformed.
fn last_is_empty(spec: &str) -> bool {
    spec.split_once('-')
        .is_some_and(|(_, last)| last.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"g7-ab\"";

    fn part(range: &str) -> Part {
        select(Some(range), None, TAG, 100)
    }

    #[test]
    fn one_range_is_served() {
        assert_eq!(part("bytes=0-9"), Part::Range { first: 0, last: 9 });
        assert_eq!(
            part("bytes=90-"),
            Part::Range {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            part("bytes=90-1000"),
            Part::Range {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            part("bytes=-10"),
            Part::Range {
                first: 90,
                last: 99
            }
        );
        assert_eq!(part("bytes=-1000"), Part::Range { first: 0, last: 99 });
        assert_eq!(part("bytes=5-5"), Part::Range { first: 5, last: 5 });
        // Numbers past 64 bits are large, not malformed (RFC 9110 §14.1.1).
        assert_eq!(
            part("bytes=0-99999999999999999999"),
            Part::Range { first: 0, last: 99 }
        );
        assert_eq!(
            part("bytes=-99999999999999999999"),
            Part::Range { first: 0, last: 99 }
        );
        assert_eq!(
            Part::Range {
                first: 90,
                last: 99
            }
            .span(100),
            (90, 10)
        );
    }

    #[test]
    fn what_cannot_be_served_is_416() {
        assert_eq!(part("bytes=100-"), Part::Unsatisfiable);
        assert_eq!(part("bytes=100-200"), Part::Unsatisfiable);
        assert_eq!(part("bytes=-0"), Part::Unsatisfiable);
        assert_eq!(part("bytes=99999999999999999999-"), Part::Unsatisfiable);
        assert_eq!(select(Some("bytes=-5"), None, TAG, 0), Part::Unsatisfiable);
        assert_eq!(select(Some("bytes=0-"), None, TAG, 0), Part::Unsatisfiable);
    }

    #[test]
    fn anything_else_gets_the_whole_save() {
        for range in [
            "bytes=0-9,20-29",
            "bytes=9-0",
            "bytes=a-b",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=+1-2",
            "items=0-9",
            "bytes 0-9",
            "",
        ] {
            assert_eq!(part(range), Part::Whole, "{range:?}");
        }
        assert_eq!(select(None, None, TAG, 100), Part::Whole);
    }

    #[test]
    fn if_range_must_name_the_current_version() {
        let range = Some("bytes=0-9");
        assert_eq!(
            select(range, Some(TAG), TAG, 100),
            Part::Range { first: 0, last: 9 }
        );
        for other in [
            "\"g6-cd\"",
            "W/\"g7-ab\"",
            "Tue, 01 Dec 2026 00:00:00 GMT",
            "",
        ] {
            assert_eq!(select(range, Some(other), TAG, 100), Part::Whole, "{other}");
        }
    }
}
