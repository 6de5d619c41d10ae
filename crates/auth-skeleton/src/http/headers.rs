//! Security headers on every response, chosen for an API that also serves a few HTML pages.
//!
//! - `X-Content-Type-Options: nosniff`: a JSON body is never run as a script or styled as CSS.
//! - `Referrer-Policy: no-referrer`: the pages opened from mailed links carry a token in their
//!   URL, which must not leak to any other site through `Referer`.
//! - `Content-Security-Policy`: JSON and other non-HTML responses get [`API_CSP`], which forbids
//!   everything, framing included; HTML pages get [`PAGE_CSP`], which lets them load their own
//!   script and style and post forms to their own origin, and nothing from anywhere else.
//!
//! A handler that sets one of these headers itself keeps its own value.
//! `Cache-Control: no-store` is set by the `/v1/auth` scope and on every error.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The policy for JSON and other non-HTML responses: nothing may load, nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy for the HTML pages: their own script, style and fetches, forms posted to their
/// own origin, and nothing else.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware: wrap the app with `actix_web::middleware::from_fn(security_headers)`.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(req).await?;
    apply(response.headers_mut());
    Ok(response)
}

/// Adds the security headers that `headers` does not have yet.
pub fn apply(headers: &mut HeaderMap) {
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let csp = if is_html { PAGE_CSP } else { API_CSP };
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(headers, header::REFERRER_POLICY, "no-referrer");
    set_default(headers, header::CONTENT_SECURITY_POLICY, csp);
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_the_page_policy_and_everything_else_the_api_policy() {
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        apply(&mut json);
        assert_eq!(json.get(header::CONTENT_SECURITY_POLICY).unwrap(), API_CSP);
        assert_eq!(json.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert_eq!(json.get(header::REFERRER_POLICY).unwrap(), "no-referrer");

        let mut html = HeaderMap::new();
        html.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        apply(&mut html);
        assert_eq!(html.get(header::CONTENT_SECURITY_POLICY).unwrap(), PAGE_CSP);
    }

    #[test]
    fn a_handlers_own_value_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        apply(&mut headers);
        assert_eq!(
            headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            "default-src 'self'"
        );
    }
}
