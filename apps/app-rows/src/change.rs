//! Rows on the wire: what a push carries, how it is checked, and what a pull returns.
//!
//! Checking has two tiers, as the HTTP contract says. A malformed change (a bad collection, id
//! or node, a wrong type, `data` that does not match `deleted`) fails the whole push with
//! `400 invalid_request` naming the change and the field: the client has a bug, and applying
//! the rest would hide it. A well-formed change that breaks a limit (clock skew, size) is
//! rejected alone, with a reason, and the rest of the batch applies.

use std::borrow::Cow;
use std::collections::HashSet;

use auth_skeleton::http::json::Object;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::limits::{Limits, MAX_CHANGES_PER_PUSH, MAX_ROW_DATA_BYTES};
use crate::lww::Version;

/// The body of `POST /v1/rows/push`, as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushRequest {
    /// The changes, in the order the client wants them applied (at most 1000).
    #[schema(max_items = 1000, value_type = Vec<WireChange>)]
    pub changes: Vec<Object<WireChange>>,
}

/// One change as sent, before it is checked.
// The document calls it a row: on the wire a change is the row the writer now holds.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PushedRow)]
pub struct WireChange {
    /// 1-64 characters of `[a-z0-9_]`.
    #[schema(pattern = "^[a-z0-9_]{1,64}$", example = "notes")]
    collection: String,
    /// The row's id within its collection: 1-128 characters, no control character.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]{1,128}$",
        example = "n1"
    )]
    id: String,
    /// The writer's hybrid logical clock: milliseconds since the Unix epoch, at most 2^53-1.
    #[schema(maximum = 9_007_199_254_740_991_u64, example = 1_764_307_021_123_u64)]
    #[serde(deserialize_with = "whole_number")]
    ts: u64,
    /// The writer's hybrid logical clock: the counter within `ts`, at most 2^31-1.
    #[schema(maximum = 2_147_483_647)]
    #[serde(deserialize_with = "whole_number")]
    counter: u64,
    /// The writing device's id: 1-64 characters of `[A-Za-z0-9._:-]`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$", example = "device-a")]
    node: String,
    /// Whether the change deletes the row (a tombstone).
    deleted: bool,
    /// The row's data: an object of at most 64 KiB serialized, without duplicate keys, numbers
    /// beyond a 64-bit float or lone surrogate escapes (I-JSON); null or absent when `deleted`.
    /// It is stored as sent (keys in their order, numbers as written), only whitespace between
    /// tokens removed.
    // Absent and null are the same: a tombstone may leave `data` out. Kept as text: parsing it
    // would reorder keys and round numbers.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Option<Box<RawValue>>,
}

/// An integer as JSON Schema counts them: `328` or `328.0` (a number without a fraction), up to
/// 2^53, where every integer is still exact as a float. The ranges of `ts` and `counter` are
/// checked afterwards.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct WholeNumber;

    impl serde::de::Visitor<'_> for WholeNumber {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if v.fract() == 0.0 && (0.0..=EXACT).contains(&v) {
                Ok(v as u64)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }

    deserializer.deserialize_any(WholeNumber)
}

/// A well-formed change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The row's collection.
    pub collection: String,
    /// The row's id within its collection.
    pub id: String,
    /// The writer's version of the row.
    pub version: Version,
    /// The row's data as sent, without whitespace between tokens; `None` for a tombstone.
    pub data: Option<String>,
}

impl Change {
    /// Whether the change is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.data.is_none()
    }

    /// Why the change must be rejected, if it breaks a limit, given the server's clock.
    pub fn breach(&self, now_ms: i64, limits: &Limits) -> Option<Rejection> {
        if self.version.ts > now_ms.saturating_add(limits.max_clock_skew_ms) {
            Some(Rejection::ClockSkew)
        } else if self.version.ts < now_ms.saturating_sub(limits.tombstone_retention_ms) {
            Some(Rejection::TooOld)
        } else if self
            .data
            .as_ref()
            .is_some_and(|d| d.len() > MAX_ROW_DATA_BYTES)
        {
            Some(Rejection::RowTooLarge)
        } else {
            None
        }
    }
}

/// Why a well-formed change was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// `ts` is more than `MAX_CLOCK_SKEW` ahead of the server's clock.
    ClockSkew,
    /// `data` takes more than 64 KiB serialized.
    RowTooLarge,
    /// The row is new and the user already keeps `ROWS_QUOTA` rows, or the change would take the
    /// user's stored `data` above `ROWS_BYTES_QUOTA` bytes.
    QuotaExceeded,
    /// `ts` is older than `TOMBSTONE_RETENTION` before the server's clock: the tombstone such a
    /// change would lose to may be purged already. To keep the data, write it again with a
    /// fresh version.
    TooOld,
}

/// Why a push was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// More changes than one push may carry.
    #[error("a push carries at most {MAX_CHANGES_PER_PUSH} changes; split the batch")]
    TooManyChanges,
    /// A change is malformed; the message names it and the field.
    #[error("changes[{index}].{field}: {message}")]
    Malformed {
        /// The change's position in the batch.
        index: usize,
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
}

/// Checks a whole batch: its size, then every change. Nothing is applied unless all pass.
///
/// ```
/// use app_rows::change::{BatchError, PushRequest, check_batch};
///
/// let request: PushRequest = serde_json::from_str(r#"{"changes": [
///     {"collection": "notes", "id": "n1", "ts": 5, "counter": 0, "node": "a", "deleted": false, "data": {"t": 1}},
///     {"collection": "Notes", "id": "n2", "ts": 5, "counter": 0, "node": "a", "deleted": true}
/// ]}"#).unwrap();
/// let err = check_batch(request).unwrap_err();
/// assert!(matches!(err, BatchError::Malformed { index: 1, field: "collection", .. }));
/// ```
pub fn check_batch(request: PushRequest) -> Result<Vec<Change>, BatchError> {
    if request.changes.len() > MAX_CHANGES_PER_PUSH {
        return Err(BatchError::TooManyChanges);
    }
    request
        .changes
        .into_iter()
        .enumerate()
        .map(|(index, Object(change))| {
            check(change).map_err(|(field, message)| BatchError::Malformed {
                index,
                field,
                message,
            })
        })
        .collect()
}

fn check(change: WireChange) -> Result<Change, (&'static str, &'static str)> {
    if !is_collection_name(&change.collection) {
        return Err(("collection", "must be 1-64 characters of a-z, 0-9 and _"));
    }
    if !(1..=128).contains(&change.id.chars().count()) {
        return Err(("id", "must be 1-128 characters"));
    }
    // Cc: C0 and C1 controls and DEL. NUL alone would fail on PostgreSQL's TEXT.
    if change.id.chars().any(char::is_control) {
        return Err(("id", "must not contain control characters"));
    }
    if !is_node_name(&change.node) {
        return Err((
            "node",
            "must be 1-64 characters of A-Z, a-z, 0-9 and . _ : -",
        ));
    }
    // Bounds every JSON implementation (and both databases) hold exactly.
    if change.ts > MAX_TS {
        return Err(("ts", "must be an integer from 0 to 9007199254740991"));
    }
    if change.counter > MAX_COUNTER {
        return Err(("counter", "must be an integer from 0 to 2147483647"));
    }
    let (ts, counter) = (change.ts as i64, change.counter as i64);
    let data = match (change.deleted, change.data) {
        (false, Some(data)) => Some(compact_object(data.get()).map_err(|m| ("data", m))?),
        (true, None) => None,
        (false, None) => return Err(("data", "must be a JSON object when deleted is false")),
        (true, Some(_)) => return Err(("data", "must be null when deleted is true")),
    };
    Ok(Change {
        collection: change.collection,
        id: change.id,
        version: Version::new(ts, counter, change.node),
        data,
    })
}

/// `text`, a JSON value serde_json has checked, without the whitespace between its tokens;
/// refused unless it is an object, when one of its objects (at any depth) repeats a key, or when
/// it holds what I-JSON (RFC 7493) rules out and strict parsers refuse: a number beyond the range
/// of a double, a lone UTF-16 surrogate escape.
///
/// Everything else is kept byte for byte: the keys' order, numbers as written (no rounding),
/// strings with their escapes. Keys are compared after unescaping (`"a"` and `"\u0061"` are
/// the same key).
fn compact_object(text: &str) -> Result<String, &'static str> {
    if !text.trim_start().starts_with('{') {
        return Err("must be a JSON object when deleted is false");
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // One entry per open container: the keys seen so far of an object, `None` for an array.
    let mut open: Vec<Option<HashSet<Cow<'_, str>>>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        Some(b'"') => break,
                        Some(b'\\') => i += 2,
                        Some(_) => i += 1,
                        // serde_json checked the text; stay safe all the same.
                        None => return Err("must be a JSON object when deleted is false"),
                    }
                }
                i += 1;
                let token = &text[start..i];
                // serde_json's `RawValue` lets a lone UTF-16 surrogate (`"\ud800"`) through;
                // strict parsers (serde_json's own `String`, JavaScript's TextDecoder, Go) do not,
                // and would fail on every page that holds the row.
                if token.contains("\\u") && serde_json::from_str::<String>(token).is_err() {
                    return Err("a string has a lone UTF-16 surrogate escape");
                }
                if std::mem::take(&mut expect_key)
                    && let Some(Some(keys)) = open.last_mut()
                {
                    let key = if token.contains('\\') {
                        // Decodes: a lone surrogate was refused above.
                        serde_json::from_str::<String>(token)
                            .map_or(Cow::Borrowed(token), Cow::Owned)
                    } else {
                        Cow::Borrowed(&token[1..token.len() - 1])
                    };
                    if !keys.insert(key) {
                        return Err("an object has a duplicate key");
                    }
                }
                out.push_str(token);
                continue;
            }
            b'{' => {
                open.push(Some(HashSet::new()));
                expect_key = true;
            }
            b'[' => open.push(None),
            b'}' | b']' => {
                open.pop();
            }
            b',' => expect_key = matches!(open.last(), Some(Some(_))),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    i += 1;
                }
                let number = &text[start..i];
                // Kept as written, but it must fit a double: past +-1.8e308 serde_json, JavaScript
                // and most parsers refuse it or make it infinite.
                if !number.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err("a number is beyond the range of a 64-bit float");
                }
                out.push_str(number);
                continue;
            }
            _ => {}
        }
        // Outside strings, valid JSON is ASCII.
        out.push(char::from(bytes[i]));
        i += 1;
    }
    Ok(out)
}

/// The greatest `ts`: 2^53-1, exact in every JSON implementation.
pub const MAX_TS: u64 = (1 << 53) - 1;
/// The greatest `counter`: 2^31-1.
pub const MAX_COUNTER: u64 = i32::MAX as u64;

/// `[A-Za-z0-9._:-]{1,64}`: ASCII, so that every language orders nodes alike.
fn is_node_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `[a-z0-9_]{1,64}`.
fn is_collection_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What happened to one change of a push.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeResult {
    /// The change's collection.
    pub collection: String,
    /// The change's id.
    pub id: String,
    /// `applied`, `stale` or `rejected`.
    pub status: Status,
    /// Why it was rejected.
    // Left out rather than null when there is no reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<Rejection>,
    /// With `stale` and `rejected`: the server's row as it stands when the push is answered,
    /// or `null` when it holds none.
    // Absent for `applied`; `Some(None)` is sent as null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Row>)]
    pub current: Option<Option<Row>>,
}

/// The fate of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The change is now the row.
    Applied,
    /// The server holds an equal or greater version; nothing changed.
    Stale,
    /// The change broke a limit; see `reason`.
    Rejected,
}

/// A row as a pull returns it: its latest state, tombstone or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    /// The row's collection.
    pub collection: String,
    /// The row's id.
    pub id: String,
    /// The version's `ts`.
    pub ts: i64,
    /// The version's `counter`.
    pub counter: i64,
    /// The version's `node`.
    pub node: String,
    /// Whether the row is a tombstone.
    pub deleted: bool,
    /// The data exactly as stored (`null` for a tombstone).
    #[schema(value_type = Option<Object>, required = true)]
    pub data: Option<Box<RawValue>>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn one(change: Value) -> Result<Change, BatchError> {
        let request: PushRequest = serde_json::from_value(json!({ "changes": [change] })).unwrap();
        check_batch(request).map(|mut c| c.remove(0))
    }

    fn row() -> Value {
        json!({"collection": "notes_2", "id": "n1", "ts": 10, "counter": 1, "node": "a", "deleted": false, "data": {"b": 1, "a": [true]}})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut r = row();
        r[field] = value;
        r
    }

    fn field_of(err: BatchError) -> &'static str {
        match err {
            BatchError::Malformed { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_well_formed_rows_and_tombstones() {
        let change = one(row()).unwrap();
        assert_eq!(change.version, Version::new(10, 1, "a"));
        let data = change.data.unwrap();
        assert!(!data.contains(' '), "stored compactly: {data}");
        assert_eq!(serde_json::from_str::<Value>(&data).unwrap(), row()["data"]);
        let tombstone = one(json!({"collection": "c", "id": "x", "ts": 0, "counter": 0, "node": "n", "deleted": true})).unwrap();
        assert!(tombstone.is_tombstone());
        let mut explicit_null = with("deleted", json!(true));
        explicit_null["data"] = Value::Null;
        assert!(one(explicit_null).unwrap().is_tombstone());
        assert!(one(with("id", json!("x".repeat(128)))).is_ok());
        assert!(
            one(with("id", json!("é".repeat(128)))).is_ok(),
            "ids count characters"
        );
        assert!(one(with("node", json!("n".repeat(64)))).is_ok());
        assert!(one(with("node", json!("Az09._:-"))).is_ok());
        assert!(one(with("ts", json!(MAX_TS))).is_ok());
        assert!(one(with("counter", json!(MAX_COUNTER))).is_ok());
        assert!(one(with("id", json!("\u{200b}\u{202e} é"))).is_ok());
        assert!(one(with("collection", json!("a".repeat(64)))).is_ok());
    }

    #[test]
    fn malformed_changes_name_the_field() {
        for (change, field) in [
            (with("collection", json!("")), "collection"),
            (with("collection", json!("Notes")), "collection"),
            (with("collection", json!("a-b")), "collection"),
            (with("collection", json!("a".repeat(65))), "collection"),
            (with("id", json!("")), "id"),
            (with("id", json!("x".repeat(129))), "id"),
            (with("node", json!("")), "node"),
            (with("node", json!("n".repeat(65))), "node"),
            (with("ts", json!(u64::MAX)), "ts"),
            (with("ts", json!(MAX_TS + 1)), "ts"),
            (with("counter", json!(1u64 << 63)), "counter"),
            (with("counter", json!(MAX_COUNTER + 1)), "counter"),
            (with("id", json!("a\u{0}")), "id"),
            (with("id", json!("\u{9f}")), "id"),
            (with("node", json!("é")), "node"),
            (with("node", json!("a b")), "node"),
            (with("data", Value::Null), "data"),
            (with("deleted", json!(true)), "data"),
        ] {
            assert_eq!(
                field_of(one(change.clone()).unwrap_err()),
                field,
                "{change}"
            );
        }
    }

    /// JSON Schema counts `5.0` as an integer, so the document's schema allows it: the server
    /// takes it as 5.
    #[test]
    fn whole_numbers_written_with_a_fraction_point_are_integers() {
        let change = one(with("ts", json!(5.0))).unwrap();
        assert_eq!(change.version.ts, 5);
        let change = one(with("counter", json!(2.0))).unwrap();
        assert_eq!(change.version.counter, 2);
        for (field, value) in [
            ("ts", json!(1.5)),
            ("ts", json!(-1)),
            ("ts", json!(1e300)),
            ("counter", json!(0.25)),
        ] {
            let body = json!({ "changes": [with(field, value.clone())] }).to_string();
            match auth_skeleton::http::json::parse::<PushRequest>(body.as_bytes()) {
                Err(auth_skeleton::ApiError::InvalidRequest(detail)) => {
                    assert!(detail.contains(field), "{value}: {detail}");
                    assert!(
                        !detail.contains(&value.to_string()),
                        "echoes the value: {detail}"
                    );
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn data_is_kept_as_written_without_whitespace() {
        for (sent, kept) in [
            (r#"{}"#, r#"{}"#),
            (
                " {\"b\" : 1,\n\t\"a\": [ 1.50, 1e300, 123456789012345678901234567890 ] } ",
                r#"{"b":1,"a":[1.50,1e300,123456789012345678901234567890]}"#,
            ),
            (
                r#"{"s": " a \" b \\", "k\"ey": {"x": null}}"#,
                r#"{"s":" a \" b \\","k\"ey":{"x":null}}"#,
            ),
            (
                r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": "a"}"#,
                r#"{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"a"}"#,
            ),
        ] {
            assert_eq!(compact_object(sent), Ok(kept.to_owned()), "{sent}");
        }
        for (sent, err) in [
            ("[1]", "must be a JSON object when deleted is false"),
            ("\"text\"", "must be a JSON object when deleted is false"),
            (r#"{"a": 1, "a": 1}"#, "an object has a duplicate key"),
            (
                r#"{"a": [{"b": 1, "c": {"d": 1, "d": 2}}]}"#,
                "an object has a duplicate key",
            ),
            (r#"{"é": 1, "\u00e9": 2}"#, "an object has a duplicate key"),
            (
                r#"{"x": 1E400}"#,
                "a number is beyond the range of a 64-bit float",
            ),
            (
                r#"{"x": [-1e309]}"#,
                "a number is beyond the range of a 64-bit float",
            ),
            (
                r#"{"s": "\udc00"}"#,
                "a string has a lone UTF-16 surrogate escape",
            ),
            (
                r#"{"\ud800x": 1}"#,
                "a string has a lone UTF-16 surrogate escape",
            ),
        ] {
            assert_eq!(compact_object(sent), Err(err), "{sent}");
        }
    }

    #[test]
    fn too_many_changes_is_a_batch_error() {
        let changes: Vec<Value> = (0..=MAX_CHANGES_PER_PUSH).map(|_| row()).collect();
        let request: PushRequest = serde_json::from_value(json!({ "changes": changes })).unwrap();
        assert_eq!(check_batch(request), Err(BatchError::TooManyChanges));
    }

    #[test]
    fn limits_reject_single_changes() {
        let limits = Limits::default();
        let now = 1_000_000;
        let ahead = |ts: i64| one(with("ts", json!(ts))).unwrap().breach(now, &limits);
        assert_eq!(ahead(now + limits.max_clock_skew_ms), None);
        assert_eq!(
            ahead(now + limits.max_clock_skew_ms + 1),
            Some(Rejection::ClockSkew)
        );
        let short = Limits {
            tombstone_retention_ms: 1_000,
            ..limits
        };
        let behind = |ts: i64| one(with("ts", json!(ts))).unwrap().breach(now, &short);
        assert_eq!(behind(now - 1_000), None);
        assert_eq!(behind(now - 1_001), Some(Rejection::TooOld));
        // {"v":"..."} is 8 bytes around the string.
        let fits = with("data", json!({"v": "x".repeat(MAX_ROW_DATA_BYTES - 8)}));
        assert_eq!(one(fits).unwrap().breach(now, &limits), None);
        let over = with("data", json!({"v": "x".repeat(MAX_ROW_DATA_BYTES - 7)}));
        assert_eq!(
            one(over).unwrap().breach(now, &limits),
            Some(Rejection::RowTooLarge)
        );
    }
}
