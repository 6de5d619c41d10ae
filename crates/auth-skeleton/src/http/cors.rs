//! CORS for web clients served from other origins (`ALLOWED_ORIGINS`).
//!
//! Only the listed origins get CORS headers, and they get them with credentials allowed, so a
//! web app on one of them can use the session cookie. `PUBLIC_URL`'s own origin needs no CORS.
//! A request from any other origin is still served, without CORS headers, so the browser keeps
//! its response from the page; what protects state-changing requests is the `Origin` check of
//! [`crate::http::csrf`], which allows the same origins.

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::accounts::AuthConfig;
use crate::http::request_log::REQUEST_ID;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 3_600;

/// The CORS middleware for `config.allowed_origins`.
pub fn cors(config: &AuthConfig) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("content-digest"),
            // `Prefer: wait=N` (the contract's long-poll).
            header::HeaderName::from_static("prefer"),
            // Resuming a download (RFC 9110 §14).
            header::RANGE,
            header::IF_RANGE,
            REQUEST_ID,
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::LOCATION,
            header::HeaderName::from_static("preference-applied"),
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            REQUEST_ID,
        ])
        .supports_credentials()
        .max_age(PREFLIGHT_MAX_AGE_SECS);
    for origin in &config.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
