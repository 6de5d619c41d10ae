//! Checks a running service needs beyond each variable's own syntax: settings that parse but
//! cannot work together, and names that look right but mean nothing.
//!
//! [`check_service`] runs them all; `APP serve` and `APP check-config` call it before anything
//! else, so a mistake stops the service at start with a message that says how to fix it.

use super::{AuthConfig, ConfigError, Settings, Vars};

/// Refuses `COOKIE_SECURE=true` with a plain-HTTP `PUBLIC_URL` on a host other than the local
/// machine: browsers would store the `Secure` cookie and never send it back, so every web
/// sign-in would seem to work and then fail.
pub fn cookie_security(auth: &AuthConfig) -> Result<(), ConfigError> {
    let url = &auth.public_url;
    if auth.cookie_secure && url.scheme() == "http" && !super::is_loopback(url) {
        return Err(ConfigError::new(
            "COOKIE_SECURE",
            format!(
                "is true but PUBLIC_URL ({}) is plain http: browsers never send a Secure cookie \
                 back over http, so web sign-ins would not stick. Serve the public URL over https \
                 (PUBLIC_URL=https://...), or, for local development only, set COOKIE_SECURE=false",
                super::origin_of(url)
            ),
        ));
    }
    Ok(())
}

/// Every check a service runs at start, after [`Settings::from_vars`] has parsed each variable.
pub fn check_service(settings: &Settings, vars: &Vars) -> Result<(), ConfigError> {
    cookie_security(&settings.auth)?;
/// Refuses mail settings that would leak secrets in production (see
/// [`crate::mail::transport_risk`]): live links in the log, or mail in cleartext over a network.
pub fn mail_safety(auth: &AuthConfig) -> Result<(), ConfigError> {
    match crate::mail::transport_risk(&auth.mail.transport, &auth.public_url) {
        Some(why) => Err(ConfigError::new("MAIL_TRANSPORT", why)),
        None => Ok(()),
    }
}

    // Also refuses RATE_LIMIT_* names that mean nothing (a typo would silently keep a default).
    crate::rate_limit::RateLimitConfig::from_vars(vars)?;
    Ok(())
    mail_safety(&settings.auth)?;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(public_url: &str, secure: &str) -> AuthConfig {
        let vars = Vars::from_pairs([("PUBLIC_URL", public_url), ("COOKIE_SECURE", secure)]);
        AuthConfig::from_vars("app-rows", "http://127.0.0.1:8080", &vars).unwrap()
    }

    #[test]
    fn secure_cookies_need_https_except_on_the_local_machine() {
        let err = cookie_security(&auth("http://rows.example.com", "true")).unwrap_err();
        assert_eq!(err.var, "COOKIE_SECURE");
        assert!(err.message.contains("https"), "{err}");
        for ok in [
            ("https://rows.example.com", "true"),
            ("http://rows.example.com", "false"),
            ("http://localhost:8080", "true"),
            ("http://127.0.0.1:8080", "true"),
            ("http://[::1]:8080", "true"),
        ] {
            assert!(cookie_security(&auth(ok.0, ok.1)).is_ok(), "{ok:?}");
        }
    }
}
