//! The HTTP face: routes, the `CurrentUser` extractor, cookies, CSRF, JSON bodies, and the
//! middleware every response passes through (request log, security headers, CORS).

pub mod allowed_methods;
pub mod client_ip;
pub mod cookie;
pub mod cors;
pub mod csrf;
pub mod current_user;
pub mod headers;
pub mod json;
pub mod openapi;
pub(crate) mod operations;
pub mod pages;
pub mod problem;
pub mod request_log;
pub mod routes;

pub use current_user::{CredentialKind, CurrentUser};
pub use json::{BodyLimit, Json};
pub use routes::{configure, method_not_allowed, not_found};
