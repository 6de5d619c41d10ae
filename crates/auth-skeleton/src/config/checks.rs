//! Checks a running service needs beyond each variable's own syntax: settings that parse but
//! cannot work together or would leak secrets, and names that look right but mean nothing.
//!
//! [`check_service`] runs them all; `APP serve` and `APP check-config` call it before anything
//! else, so a mistake stops the service at start with a message that says how to fix it.

use super::{AuthConfig, ConfigError, Settings, Vars};

/// Refuses `COOKIE_SECURE=true` with a plain-HTTP `PUBLIC_URL` on a host other than the local
/// machine: browsers would store the `Secure` cookie and never send it back, so every web
/// sign-in would seem to work and then fail.
pub fn cookie_security(auth: &AuthConfig) -> Result<(), ConfigError> {
    let url = &auth.public_url;
    let local = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if auth.cookie_secure && url.scheme() == "http" && !local {
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

/// Whether a URL's host is this machine: `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses `MAIL_TRANSPORT=log` with a `PUBLIC_URL` outside this machine: the log transport
/// writes every message to the service's log, so the log (a production journal, read by others
/// and shipped elsewhere) would hold every live password-reset, verification and email-change
/// link.
fn mail_safety(auth: &AuthConfig) -> Result<(), ConfigError> {
    let url = &auth.public_url;
    if auth.mail.transport == crate::mail::TransportConfig::Log && !is_loopback(url) {
        return Err(ConfigError::new(
            "MAIL_TRANSPORT",
            format!(
                "is log (the default) but PUBLIC_URL ({}) is not on this machine: the log would \
                 hold every live password-reset and email-change link. Send mail through an SMTP \
                 relay (MAIL_TRANSPORT=smtps://user:pass@smtp.example.com, or \
                 smtp://smtp.example.com:587?tls=required; MAIL_TRANSPORT_FILE keeps the \
                 password out of the environment), or use log only with a PUBLIC_URL on \
                 localhost, 127.0.0.1 or [::1]",
                super::origin_of(url)
            ),
        ));
    }
    Ok(())
}

/// Every check a service runs at start, after [`Settings::from_vars`] has parsed each variable.
pub fn check_service(settings: &Settings, vars: &Vars) -> Result<(), ConfigError> {
    cookie_security(&settings.auth)?;
    mail_safety(&settings.auth)?;
    // Also refuses RATE_LIMIT_* names that mean nothing (a typo would silently keep a default).
    crate::rate_limit::RateLimitConfig::from_vars(vars)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(public_url: &str, secure: &str) -> AuthConfig {
        let vars = Vars::from_pairs([("PUBLIC_URL", public_url), ("COOKIE_SECURE", secure)]);
        AuthConfig::from_vars("app-rows", "http://127.0.0.1:8080", &vars).unwrap()
    }

    fn mail(public_url: &str, transport: &str) -> AuthConfig {
        let vars = Vars::from_pairs([("PUBLIC_URL", public_url), ("MAIL_TRANSPORT", transport)]);
        AuthConfig::from_vars("app-rows", "http://127.0.0.1:8080", &vars).unwrap()
    }

    #[test]
    fn the_log_transport_is_for_the_local_machine_only() {
        for local in [
            "http://localhost:8080",
            "http://LOCALHOST:8080",
            "http://127.0.0.1:8080",
            "http://127.9.8.7",
            "http://[::1]:8080",
            "https://localhost",
        ] {
            assert!(mail_safety(&mail(local, "log")).is_ok(), "{local}");
        }
        for public in [
            "https://rows.example.com",
            "http://0.0.0.0:8080",
            "http://10.0.0.5",
            "http://[::2]:8080",
            "http://localhost.example.com",
            "http://128.0.0.1",
        ] {
            let err = mail_safety(&mail(public, "log")).unwrap_err();
            assert_eq!(err.var, "MAIL_TRANSPORT", "{public}");
            assert!(
                err.message.contains("PUBLIC_URL") && err.message.contains("smtps://"),
                "{err}"
            );
        }
        for transport in [
            "smtps://user:pass@smtp.example.com",
            "smtp://smtp.example.com",
            "file:/tmp/mail",
        ] {
            let config = mail("https://rows.example.com", transport);
            assert!(mail_safety(&config).is_ok(), "{transport}");
        }
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
