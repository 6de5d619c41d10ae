//! The session cookie: `__Host-session` with `HttpOnly; Secure; SameSite=Lax; Path=/`.

use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::config::AuthConfig;

/// The cookie that carries a new session's token, living as long as the session may.
pub fn session_cookie(config: &AuthConfig, token: &str) -> Cookie<'static> {
    Cookie::build(config.cookie_name(), token.to_owned())
        .path("/")
        .http_only(true)
        .secure(config.cookie_secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(config.session_max_age.as_secs() as i64))
        .finish()
}

/// A cookie that makes the browser forget the session cookie.
pub fn clearing_cookie(config: &AuthConfig) -> Cookie<'static> {
    let mut cookie = session_cookie(config, "");
    cookie.make_removal();
    cookie
}
