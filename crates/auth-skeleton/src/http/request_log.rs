//! One log line and one metrics sample per request, tied together by a request id.
//!
//! Each request gets an id: the client's `X-Request-Id` when it is sane (1 to 128 characters of
//! letters, digits and `-_.:`), else a fresh random one. It is returned as `X-Request-Id`, and
//! every event logged while the request runs carries it (the handler runs inside a `request`
//! span), so a client's report can be matched to the server's log.
//!
//! The line names the route *pattern* (`/v1/auth/sessions/{id}`), never the raw URL: query strings
//! of the pages that mailed links open (`/verify-email?token=...`) carry secrets, and raw paths
//! carry ids that would make a metrics series per request. For the same reason a method that HTTP
//! does not define (a client may send any token) is named `OTHER`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use tracing::Instrument as _;

/// The request id header, read from requests and set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied request id that is kept.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The id of the request being served; handlers can extract it with
/// `req.extensions().get::<RequestId>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client-supplied request id is safe to log and echo.
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware: wrap the whole app with `actix_web::middleware::from_fn(request_log)`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map_or_else(crate::token::new_id, str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    // Any token is a method to a client: log and count it from a fixed set.
    let method = crate::metrics::method_label(req.method().as_str());
    let span = tracing::info_span!("request", request_id = %id);

    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let (route, status) = match &result {
        Ok(response) => (
            response
                .request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
            response.status().as_u16(),
        ),
        // An error that escaped every handler (a middleware's): the server answers it later,
        // without the request at hand, so the route is unknown.
        Err(e) => (
            UNMATCHED_ROUTE.to_owned(),
            e.as_response_error().status_code().as_u16(),
        ),
    };
    crate::metrics::record_request(method, &route, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            target: "http",
            method = %method,
            route = %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        );
    });
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_sane() {
        for good in ["abc", "0f3a-11:22.x_y", &"a".repeat(128)] {
            assert!(is_sane_request_id(good), "{good}");
        }
        for bad in ["", "a b", "x\ny", "<script>", "é", &"a".repeat(129)] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
    }
}
