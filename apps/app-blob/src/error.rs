//! What the save routes answer besides success, as problem details with the contract's codes.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use auth_skeleton::accounts::AuthError;
use auth_skeleton::{ApiError, Problem};

use crate::version::Meta;

/// Every way a save request can fail; one variant per thing a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The user has no save.
    #[error("there is no save yet")]
    NoSave,
    /// No such version in the history.
    #[error("no such version in the history")]
    VersionNotFound,
    /// A write without a precondition that guards it.
    #[error(
        "send If-Match with the current ETag to replace the save, or If-None-Match: * to create it"
    )]
    PreconditionRequired,
    /// The precondition failed; `current` is the save now (none when there is none).
    #[error("the save is not at the version the request assumed; see `current`")]
    VersionConflict {
        /// The current version's meta.
        current: Option<Box<Meta>>,
    },
    /// The body does not hash to the `Content-Digest` sent with it.
    #[error("the body's SHA-256 does not match Content-Digest; nothing was stored")]
    DigestMismatch,
    /// An `Idempotency-Key` reused for a different request.
    #[error("this Idempotency-Key was used for a different request in the last 24 hours")]
    IdempotencyKeyReused,
    /// A malformed header or body; the detail names it.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is over `MAX_SAVE_BYTES`.
    #[error("the save is larger than {limit} bytes (MAX_SAVE_BYTES)")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body alone is over `BLOB_BYTES_QUOTA`, even with the whole history dropped.
    #[error(
        "the save is larger than the {limit}-byte quota (BLOB_BYTES_QUOTA) even without any \
         history; nothing was stored"
    )]
    QuotaExceeded {
        /// The quota in bytes.
        limit: u64,
    },
    /// `Range` asks for bytes past the end of a save of `size` bytes.
    #[error("the save has {size} bytes: the range starts past its end")]
    RangeNotSatisfiable {
        /// The save's size.
        size: u64,
    },
    /// An error of the auth layer (`401`, ...) or a server fault.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<AuthError> for SaveError {
    fn from(err: AuthError) -> Self {
        SaveError::Api(err.into())
    }
}

impl From<sqlx::Error> for SaveError {
    fn from(err: sqlx::Error) -> Self {
        // A write that races the deletion of its account trips the foreign key to the account
        // (see the migration): by then the caller is not signed in any more.
        if err
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation())
        {
            return SaveError::Api(ApiError::Unauthenticated);
        }
        SaveError::Api(ApiError::internal(err))
    }
}

impl SaveError {
    fn problem(&self) -> Problem {
        let (status, code) = match self {
            SaveError::NoSave => (StatusCode::NOT_FOUND, "no_save"),
            SaveError::VersionNotFound => (StatusCode::NOT_FOUND, "not_found"),
            SaveError::PreconditionRequired => {
                (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
            }
            SaveError::VersionConflict { .. } => {
                (StatusCode::PRECONDITION_FAILED, "version_conflict")
            }
            SaveError::DigestMismatch => (StatusCode::BAD_REQUEST, "digest_mismatch"),
            SaveError::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            SaveError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            SaveError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            SaveError::QuotaExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
            SaveError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            SaveError::Api(e) => return e.to_problem(),
        };
        let problem = Problem::new(status, code, self.to_string());
        match self {
            SaveError::VersionConflict { current } => problem.with("current", current),
            _ => problem,
        }
    }
}

impl ResponseError for SaveError {
    fn status_code(&self) -> StatusCode {
        self.problem().status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // The auth layer logs server faults with their cause before answering.
            SaveError::Api(e) => e.error_response(),
            // RFC 9110 §15.5.17: the size, so that the client can ask again.
            SaveError::RangeNotSatisfiable { size } => {
                let mut response = self.problem().error_response();
                let headers = response.headers_mut();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                response
            }
            _ => self.problem().error_response(),
        }
    }
}
