//! The CSRF defence for cookie sessions: unsafe requests must carry an allowed `Origin`.
//!
//! `SameSite=Lax` already keeps the cookie off most cross-site unsafe requests; the `Origin`
//! check closes the rest (same-site subdomains, old browsers). Bearer tokens are never sent by a
//! browser on its own, so bearer-authenticated requests are not checked.

use actix_web::HttpRequest;
use actix_web::http::{Method, header};

use crate::accounts::AuthConfig;
use crate::http::problem::ApiError;

/// Whether `method` can change state (RFC 9110's unsafe methods).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Requires an allowed `Origin` header.
pub fn require_allowed_origin(req: &HttpRequest, config: &AuthConfig) -> Result<(), ApiError> {
    match origin(req) {
        Some(o) if config.is_allowed_origin(o) => Ok(()),
        _ => Err(ApiError::CsrfRejected),
    }
}

/// Refuses a request whose `Origin`, if it has one, is not allowed (login and sign-up).
pub fn reject_foreign_origin(req: &HttpRequest, config: &AuthConfig) -> Result<(), ApiError> {
    if req.headers().contains_key(header::ORIGIN) {
        require_allowed_origin(req, config)
    } else {
        Ok(())
    }
}

fn origin(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::ORIGIN)?.to_str().ok()
}
