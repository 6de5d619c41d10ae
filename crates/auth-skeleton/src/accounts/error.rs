//! What the account services answer besides success, in the domain's terms. The HTTP layer maps
//! each variant to its problem `code` and status (`http::problem`); nothing here knows HTTP.
//!
//! One enum serves every operation: each variant means the same to every caller (a route, the
//! operator CLI, a test), and the contract gives each one code whichever route answers it.

/// Why an account operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A field breaks a rule of its own (the detail names the field).
    #[error("{0}")]
    InvalidInput(String),
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
    /// No valid credential: missing, unknown, expired or revoked.
    #[error("sign in first: the session is missing, expired or revoked")]
    Unauthenticated,
    /// The session named is not one of the caller's.
    #[error("no such session")]
    NoSuchSession,
    /// The email address is verified already.
    #[error("the email address is already verified")]
    AlreadyVerified,
    /// A mailed token is unknown, expired or used.
    #[error("the link is invalid, expired or already used")]
    InvalidToken,
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// Password hashing is saturated; nothing was started.
    #[error("the service is busy; try again in {retry_after_secs} seconds")]
    Overloaded {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
    /// A fault on the server's side (storage, hashing, mail); logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    /// Wraps a server-side fault.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AuthError::Internal(err.into())
    }
}

impl From<crate::accounts::password::HashError> for AuthError {
    /// A full hashing queue is `Overloaded` (a hash takes a few ms, so a second is plenty); any
    /// other hashing failure is a server fault.
    fn from(err: crate::accounts::password::HashError) -> Self {
        if err.is_overloaded() {
            AuthError::Overloaded {
                retry_after_secs: 1,
            }
        } else {
            AuthError::internal(err)
        }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        AuthError::internal(err)
    }
}
