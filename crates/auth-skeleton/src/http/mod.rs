//! The HTTP face: routes, the `CurrentUser` extractor, cookies, CSRF and JSON bodies.

pub mod cookie;
pub mod csrf;
pub mod current_user;
pub mod json;
pub mod routes;

pub use current_user::{CredentialKind, CurrentUser};
pub use json::{BodyLimit, Json};
pub use routes::{configure, not_found};
