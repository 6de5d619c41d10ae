//! Versions of a save: their server-assigned tags and the meta object clients see.

use auth_skeleton::clock::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Mints the tag of a user's `generation`-th version: `g<generation>-<8 random hex digits>`.
///
/// The generation alone never repeats while the account exists (see the `blob_counters`
/// table); the random part keeps tags from repeating even if the database is restored from a
/// backup and the counter runs over the same numbers again, which would otherwise let a
/// client's stale ETag match a different save.
pub fn mint_tag(generation: i64) -> String {
    let random = auth_skeleton::token::random_bytes::<4>();
    format!("g{generation}-{}", hex::encode(random))
}

/// A tag as an ETag: in quotes.
pub fn etag(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// A stored version without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    /// The tag (the ETag without quotes).
    pub tag: String,
    /// Length in bytes.
    pub size: i64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// When it was written, Unix ms.
    pub updated_at: i64,
    /// The device name of the session that wrote it.
    pub device_name: Option<String>,
}

/// The meta object of the contract:
/// `{"version", "size", "sha256", "updated_at", "device_name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Meta {
    /// Exactly the `ETag` header's value, quotes included.
    #[schema(example = "\"g3-5f2c9a1e\"")]
    pub version: String,
    /// Length in bytes.
    #[schema(minimum = 0)]
    pub size: i64,
    /// SHA-256 of the bytes, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// When the version was written (RFC 3339 UTC).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The device name of the session that wrote it, if it had one.
    // Always sent, null when there is none.
    #[schema(required = true)]
    pub device_name: Option<String>,
}

impl From<&VersionRow> for Meta {
    fn from(row: &VersionRow) -> Self {
        Self {
            version: etag(&row.tag),
            size: row.size,
            sha256: row.sha256.clone(),
            updated_at: rfc3339(row.updated_at),
            device_name: row.device_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_valid_etags_and_differ_for_one_generation() {
        let a = mint_tag(7);
        let b = mint_tag(7);
        assert!(a.starts_with("g7-") && a.len() == 11, "{a}");
        assert_ne!(a, b);
        let e = etag(&a);
        assert_eq!(
            crate::precondition::Condition::parse(&e),
            Ok(crate::precondition::Condition::Tags(vec![
                crate::precondition::EntityTag {
                    weak: false,
                    opaque: a
                }
            ]))
        );
    }
}
