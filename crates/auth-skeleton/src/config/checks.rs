//! Checks a running service needs beyond each variable's own syntax: settings that parse but
//! cannot work together, and names that look right but mean nothing.
//!
//! [`check_service`] runs them all; `APP serve` and `APP check-config` call it before anything
//! else, so a mistake stops the service at start with a message that says how to fix it.

use std::time::Duration;

use super::{AuthConfig, ConfigError, Settings, Vars};

/// The prefix of the rate limit variables.
pub const RATE_LIMIT_PREFIX: &str = "RATE_LIMIT_";

/// The rate limits that can be configured, as `RATE_LIMIT_<NAME>`.
pub const RATE_LIMIT_NAMES: &[&str] = &[
    "SIGNUP_IP",
    "LOGIN_IP",
    "LOGIN_EMAIL",
    "FORGOT_IP",
    "FORGOT_EMAIL",
    "VERIFY_USER",
    "EMAIL_CHANGE_USER",
];

/// A rate limit as configured: `N/second`, `N/minute`, `N/hour`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSetting {
    /// No limit.
    Off,
    /// A burst of `burst` requests, refilled evenly over `period`.
    Limit {
        /// How many requests may come at once.
        burst: u32,
        /// How long a full refill takes.
        period: Duration,
    },
}

/// Parses `N/second`, `N/minute`, `N/hour` (also `N/s`, `N/m`, `N/h`) or `off`.
pub fn parse_rate_limit(s: &str) -> Result<RateLimitSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateLimitSetting::Off);
    }
    let usage = || format!("{s:?} is not a rate; write e.g. 10/minute, 5/hour, 2/second or off");
    let (n, unit) = s.split_once('/').ok_or_else(usage)?;
    let burst: u32 = n.trim().parse().map_err(|_| usage())?;
    if burst == 0 {
        return Err(format!(
            "{s:?} allows nothing; to turn the limit off write off"
        ));
    }
    let period = match unit.trim().to_ascii_lowercase().as_str() {
        "second" | "s" | "sec" => Duration::from_secs(1),
        "minute" | "m" | "min" => Duration::from_secs(60),
        "hour" | "h" => Duration::from_secs(3_600),
        _ => return Err(usage()),
    };
    Ok(RateLimitSetting::Limit { burst, period })
}

/// The rate limits set in `vars`, by name; an unknown name or a malformed value is an error.
pub fn rate_limits(vars: &Vars) -> Result<Vec<(&'static str, RateLimitSetting)>, ConfigError> {
    for var in vars.names_with_prefix(RATE_LIMIT_PREFIX) {
        let name = &var[RATE_LIMIT_PREFIX.len()..];
        if !RATE_LIMIT_NAMES.contains(&name) {
            return Err(ConfigError::new(
                &var,
                format!(
                    "there is no rate limit named {name:?}; the limits are {}",
                    RATE_LIMIT_NAMES
                        .iter()
                        .map(|n| format!("{RATE_LIMIT_PREFIX}{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut limits = Vec::new();
    for name in RATE_LIMIT_NAMES {
        let var = format!("{RATE_LIMIT_PREFIX}{name}");
        if let Some(raw) = vars.get(&var) {
            let setting = parse_rate_limit(raw.trim()).map_err(|m| ConfigError::new(&var, m))?;
            limits.push((*name, setting));
        }
    }
    Ok(limits)
}

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

/// Every check a service runs at start, after [`Settings::from_vars`] has parsed each variable.
pub fn check_service(settings: &Settings, vars: &Vars) -> Result<(), ConfigError> {
    cookie_security(&settings.auth)?;
    rate_limits(vars)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_a_count_and_a_period() {
        assert_eq!(
            parse_rate_limit("10/minute"),
            Ok(RateLimitSetting::Limit {
                burst: 10,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(parse_rate_limit("OFF"), Ok(RateLimitSetting::Off));
        assert!(matches!(
            parse_rate_limit("5/hour"),
            Ok(RateLimitSetting::Limit { burst: 5, .. })
        ));
        for bad in ["", "10", "10/day", "x/minute", "0/minute", "-1/hour", "10/"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_rate_limit_names_are_refused_with_the_known_ones() {
        let vars = Vars::from_pairs([("RATE_LIMIT_LOGIN", "5/minute")]);
        let err = rate_limits(&vars).unwrap_err();
        assert_eq!(err.var, "RATE_LIMIT_LOGIN");
        assert!(err.message.contains("RATE_LIMIT_LOGIN_IP"), "{err}");

        let vars = Vars::from_pairs([("RATE_LIMIT_LOGIN_IP", "lots")]);
        assert_eq!(rate_limits(&vars).unwrap_err().var, "RATE_LIMIT_LOGIN_IP");

        let vars = Vars::from_pairs([
            ("RATE_LIMIT_LOGIN_IP", "20/minute"),
            ("RATE_LIMIT_SIGNUP_IP", "off"),
        ]);
        assert_eq!(rate_limits(&vars).unwrap().len(), 2);
    }

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
