//! The cookies: the session (`__Host-session` with `HttpOnly; Secure; SameSite=Lax; Path=/`) and
//! the device token (`__Secure-device` with `HttpOnly; Secure; SameSite=Strict;
//! Path=/v1/auth/login`, so it travels with logins only). Without `COOKIE_SECURE` they are
//! `session` and `device`, without `Secure`.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::accounts::AuthConfig;
use crate::accounts::DEVICE_TOKEN_LIFETIME;

/// The only path the device cookie is sent to.
pub const DEVICE_COOKIE_PATH: &str = "/v1/auth/login";
/// Names a device cookie may arrive under. Browsers refuse `__Host-device` with a path other
/// than `/` (RFC 6265bis), so it is set as `__Secure-device`; the `__Host-` name is read too
/// for clients that store cookies themselves.
const DEVICE_COOKIE_NAMES: [&str; 3] = ["__Secure-device", "__Host-device", "device"];

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

/// The cookie that carries this browser's device token to its next login.
pub fn device_cookie(config: &AuthConfig, token: &str) -> Cookie<'static> {
    let name = if config.cookie_secure {
        "__Secure-device"
    } else {
        "device"
    };
    Cookie::build(name, token.to_owned())
        .path(DEVICE_COOKIE_PATH)
        .http_only(true)
        .secure(config.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(Duration::seconds(DEVICE_TOKEN_LIFETIME.as_secs() as i64))
        .finish()
}

/// The device token a request carries in a cookie, if any.
pub fn presented_device_cookie(req: &HttpRequest) -> Option<String> {
    DEVICE_COOKIE_NAMES
        .iter()
        .find_map(|name| req.cookie(name))
        .map(|c| c.value().to_owned())
}
