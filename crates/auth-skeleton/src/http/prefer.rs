//! `Prefer: wait=S` (RFC 7240), the contract's long-poll: a read that would answer "nothing new"
//! may wait up to `S` seconds for a change instead.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderName, HeaderValue};

/// The longest wait honoured; a greater `S` waits this long.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The response header naming the preference honoured.
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The wait asked for with `Prefer: wait=S`, at most [`MAX_WAIT`]; `None` when none is asked
/// for (or `S` is not a whole number of seconds, which RFC 7240 says to ignore).
///
/// Preferences may share a header or come in several (`Prefer: respond-async, wait=10`); names
/// are case-insensitive, and a preference's parameters (after `;`) are ignored. The first
/// `wait` counts.
pub fn wait(req: &HttpRequest) -> Option<Duration> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            let token = pref.split(';').next()?.trim();
            let (name, value) = token.split_once('=')?;
            name.trim().eq_ignore_ascii_case("wait").then_some(value)
        })
        .map(|value| value.trim().trim_matches('"').parse::<u64>().ok())
        .next()
        .flatten()
        .map(|secs| Duration::from_secs(secs).min(MAX_WAIT))
}

/// `Preference-Applied: wait=S` for a request that waited (or could have) up to `waited`.
pub fn applied(waited: Duration) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("wait={}", waited.as_secs()))
        .expect("digits are a header value");
    (PREFERENCE_APPLIED, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn wait_of(headers: &[&str]) -> Option<Duration> {
        let mut req = TestRequest::default();
        for h in headers {
            req = req.append_header(("prefer", *h));
        }
        wait(&req.to_http_request())
    }

    #[test]
    fn reads_wait_among_other_preferences() {
        assert_eq!(wait_of(&[]), None);
        assert_eq!(wait_of(&["wait=10"]), Some(Duration::from_secs(10)));
        assert_eq!(
            wait_of(&["respond-async, Wait = 5"]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            wait_of(&["return=minimal", "wait=7;x=y"]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(wait_of(&["wait=\"3\""]), Some(Duration::from_secs(3)));
        assert_eq!(wait_of(&["wait=3600"]), Some(MAX_WAIT), "capped");
        assert_eq!(wait_of(&["wait=soon"]), None);
        assert_eq!(wait_of(&["wait=-1"]), None);
        assert_eq!(wait_of(&["waiting=5"]), None);
        assert_eq!(wait_of(&["wait=99999999999999999999999"]), None);
    }
}
