//! The HTTP face: routes, the `CurrentUser` extractor, cookies, CSRF, JSON bodies, and the
//! middleware every response passes through (request log, security headers, CORS).

pub(crate) mod allowed_methods;
pub(crate) mod client_ip;
pub(crate) mod cookie;
pub(crate) mod cors;
pub(crate) mod csrf;
mod current_user;
pub mod headers;
pub mod json;
pub mod openapi;
pub(crate) mod operations;
pub(crate) mod pages;
pub mod prefer;
pub mod problem;
pub(crate) mod request_log;
mod routes;

pub use current_user::{CredentialKind, CurrentUser};
pub use json::{BodyLimit, Json};
pub use routes::{configure, method_not_allowed, not_found};
