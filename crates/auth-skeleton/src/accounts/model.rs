//! The user and session objects of the HTTP contract.

use serde::Serialize;

use crate::accounts::UserId;
use crate::clock::rfc3339;
use crate::store::{SessionRow, UserRow};

/// A user as clients see it: `{"id", "email", "email_verified", "created_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Opaque id.
    #[schema(value_type = String)]
    pub id: UserId,
    /// The normalised email address.
    pub email: String,
    /// Whether the address was proven by a mailed link.
    pub email_verified: bool,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        Self {
            id: row.id.clone(),
            email: row.email.clone(),
            email_verified: row.email_verified,
            created_at: rfc3339(row.created_at),
        }
    }
}

/// A session as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// The session's id (the public half of its token).
    pub id: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339 UTC; advanced by use at most once an hour (or once every quarter of
    /// `SESSION_IDLE` when that is shorter).
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// When the session ends if unused: the earlier of the idle and the absolute end.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The label given at sign-in.
    pub device_name: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl Session {
    /// The client's view of `row`, with the idle timeout `idle_ms` applied to `expires_at`.
    pub fn from_row(row: &SessionRow, idle_ms: i64, current: bool) -> Self {
        Self {
            id: row.id.clone(),
            created_at: rfc3339(row.created_at),
            last_seen_at: rfc3339(row.last_seen_at),
            expires_at: rfc3339(row.expires_at.min(row.last_seen_at.saturating_add(idle_ms))),
            device_name: row.device_name.clone(),
            current,
        }
    }
}
