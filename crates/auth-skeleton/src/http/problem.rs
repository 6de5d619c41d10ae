//! Errors as RFC 9457 problem details (`application/problem+json`).
//!
//! [`ApiError`] is what the library's services return: one variant per thing a client can act
//! on, each with the stable `code` of the HTTP contract. [`Problem`] is the response body; apps
//! use it directly for their own codes (`Problem::new(StatusCode::GONE, "resync_required", ..)`).
//! A server fault is logged with its cause and answered `500 internal` with nothing inside.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::accounts::AuthError;

/// An RFC 9457 problem details response, `application/problem+json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The status's reason phrase.
    title: String,
    /// The HTTP status.
    #[serde(serialize_with = "serialize_status")]
    #[schema(value_type = u16)]
    status: StatusCode,
    /// For humans; never echoes secrets.
    detail: String,
    /// The stable machine-readable name, e.g. `invalid_credentials`.
    code: String,
    /// Extension members, e.g. `current` on a conflict.
    #[serde(flatten)]
    extensions: Map<String, Value>,
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

fn serialize_status<S: serde::Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_u16(s.as_u16())
}

impl Problem {
    /// A problem with a status, a stable machine-readable `code` and a human `detail`.
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status,
            detail: detail.into(),
            code: code.into(),
            extensions: Map::new(),
            retry_after_secs: None,
        }
    }

    /// Adds a member to the body (RFC 9457 extension members), e.g. `"current"` on a conflict.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// Sends `Retry-After: secs` with the response.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.body(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Everything the library's routes and services can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a wrong type or a missing field; the detail names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is over the route's limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No such resource (or one the caller may not see).
    #[error("{0}")]
    NotFound(&'static str),
    /// No valid credential: missing, unknown, expired or revoked.
    #[error("sign in first: the session is missing, expired or revoked")]
    Unauthenticated,
    /// A cookie-authenticated unsafe request without an allowed `Origin`.
    #[error("the request's Origin is missing or not allowed")]
    CsrfRejected,
    /// The email address is not usable.
    #[error("{0}")]
    InvalidEmail(String),
    /// The password breaks a rule; the detail says which.
    #[error("{0}")]
    WeakPassword(String),
    /// Another account has this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email or wrong password (deliberately indistinguishable).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// Password hashing is saturated; the request was not started. Try again after
    /// `retry_after_secs`.
    #[error("the service is busy; try again in {retry_after_secs} seconds")]
    Overloaded {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
    /// The service requires a verified address before it stores app data
    /// (`REQUIRE_VERIFIED_EMAIL`), and this account's is not.
    #[error("verify your email address first: this service stores data only for verified accounts")]
    EmailNotVerified,
    /// The email address is verified already.
    #[error("the email address is already verified")]
    AlreadyVerified,
    /// A mailed token is unknown, expired or used.
    #[error("the link is invalid, expired or already used")]
    InvalidToken,
    /// A fault on the server's side; logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Wraps a server-side fault.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The problem details this error is answered with.
    pub fn to_problem(&self) -> Problem {
        use ApiError::*;
        let (status, code) = match self {
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            CsrfRejected => (StatusCode::FORBIDDEN, "csrf_rejected"),
            InvalidEmail(_) => (StatusCode::BAD_REQUEST, "invalid_email"),
            WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
            EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            EmailNotVerified => (StatusCode::FORBIDDEN, "email_not_verified"),
            AlreadyVerified => (StatusCode::CONFLICT, "already_verified"),
            InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let problem = Problem::new(status, code, self.to_string());
        match self {
            RateLimited { retry_after_secs } | Overloaded { retry_after_secs } => {
                problem.with_retry_after(*retry_after_secs)
            }
            _ => problem,
        }
    }
}

impl From<AuthError> for ApiError {
    /// Each domain error has one problem code, whichever route answers it.
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidInput(detail) => ApiError::InvalidRequest(detail),
            AuthError::InvalidEmail(detail) => ApiError::InvalidEmail(detail),
            AuthError::WeakPassword(detail) => ApiError::WeakPassword(detail),
            AuthError::EmailTaken => ApiError::EmailTaken,
            AuthError::InvalidCredentials => ApiError::InvalidCredentials,
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::NoSuchSession => ApiError::NotFound("no such session"),
            AuthError::AlreadyVerified => ApiError::AlreadyVerified,
            AuthError::InvalidToken => ApiError::InvalidToken,
            AuthError::RateLimited { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            AuthError::Overloaded { retry_after_secs } => ApiError::Overloaded { retry_after_secs },
            AuthError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::internal(err)
    }
}

impl From<AuthError> for Problem {
    fn from(err: AuthError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<ApiError> for Problem {
    fn from(err: ApiError) -> Self {
        err.to_problem()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.to_problem().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, source = ?cause.source(), "request failed");
        }
        self.to_problem().error_response()
    }
}
