//! Metrics in the Prometheus text format, served at `/metrics`.
//!
//! The library records what every service has in common: HTTP requests by route pattern and
//! status with latency histograms, logins by outcome, rate-limit refusals, and the mail outbox.
//! Apps record their sync work through the typed helpers ([`record_rows`], [`record_blob_write`])
//! or, for anything else, through the re-exported [`counter!`], [`gauge!`] and [`histogram!`]
//! macros of the [`metrics`](https://docs.rs/metrics) facade:
//!
//! ```
//! use auth_skeleton::metrics::{self, BlobWrite, RowsDirection};
//!
//! metrics::record_rows(RowsDirection::Pushed, 42);
//! metrics::record_blob_write(BlobWrite::Conflict);
//! metrics::counter!("app_rows_purged_tombstones_total").increment(3);
//! ```
//!
//! Recording is a no-op until a recorder is installed; [`crate::server::start`] installs the
//! process-wide Prometheus recorder, and so does the first call to [`render`].
//!
//! Labels only ever take values from small fixed sets (the methods HTTP defines, any other being
//! `OTHER`; route patterns, not raw paths; status codes; outcome names), so the number of series
//! stays bounded whatever clients send.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use metrics::{counter, gauge, histogram};

/// `http_requests_total{method, route, status}`: requests answered.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// `http_request_duration_seconds{method, route}`: time to the response head, a histogram.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// `auth_logins_total{outcome}`: sign-in attempts, `outcome` = `success` or `failure`.
pub const AUTH_LOGINS_TOTAL: &str = "auth_logins_total";
/// `auth_rate_limited_total{limit}`: requests refused by a rate limit, by limit name.
pub const AUTH_RATE_LIMITED_TOTAL: &str = "auth_rate_limited_total";
/// `mail_outbox_depth`: messages waiting to be sent.
pub const MAIL_OUTBOX_DEPTH: &str = "mail_outbox_depth";
/// `mail_send_failures_total`: failed delivery attempts.
pub const MAIL_SEND_FAILURES_TOTAL: &str = "mail_send_failures_total";
/// `mail_sent_total`: messages handed to the transport.
pub const MAIL_SENT_TOTAL: &str = "mail_sent_total";
/// `sync_requests_total{operation}`: sync pushes and pulls (`push`, `pull`).
pub const SYNC_REQUESTS_TOTAL: &str = "sync_requests_total";
/// `sync_rows_total{direction}`: rows pushed (applied) and pulled.
pub const SYNC_ROWS_TOTAL: &str = "sync_rows_total";
/// `blob_writes_total{outcome}`: save-blob writes by outcome.
pub const BLOB_WRITES_TOTAL: &str = "blob_writes_total";

/// Latency buckets, in seconds: from a cached lookup to a slow argon2id hash under load.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram data is folded in when nobody scrapes (scrapes do it too).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder's handle, installing the recorder on first use.
///
/// When the process already has another global recorder (an embedding app installed its own),
/// the library keeps a private one: `/metrics` then shows only what is recorded through it,
/// which is nothing, and a warning says so once.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// Everything recorded so far, in the Prometheus text exposition format.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by route pattern and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by route pattern"
    );
    describe_counter!(AUTH_LOGINS_TOTAL, "Sign-in attempts by outcome");
    describe_counter!(AUTH_RATE_LIMITED_TOTAL, "Requests refused by a rate limit");
    describe_gauge!(MAIL_OUTBOX_DEPTH, "Messages waiting in the mail outbox");
    describe_counter!(MAIL_SEND_FAILURES_TOTAL, "Failed mail delivery attempts");
    describe_counter!(MAIL_SENT_TOTAL, "Messages handed to the mail transport");
    describe_counter!(SYNC_REQUESTS_TOTAL, "Sync requests by operation");
    describe_counter!(SYNC_ROWS_TOTAL, "Rows moved by sync, by direction");
    describe_counter!(BLOB_WRITES_TOTAL, "Save-blob writes by outcome");
}

/// The `method` label of a request: one of the methods HTTP defines, or `OTHER`.
///
/// A client may send any token as a method; were it a label, each made-up method would add
/// series to `/metrics`, and to the process's memory, for good.
pub(crate) fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("OTHER")
}

/// Records one answered HTTP request. `route` must be a route pattern (`/v1/auth/sessions/{id}`)
/// or `unmatched`, never a raw path: raw paths carry ids and would make a series per request.
/// A `method` that HTTP does not define is recorded as `OTHER`, for the same reason.
pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let method = method_label(method);
    counter!(
        HTTP_REQUESTS_TOTAL,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string(),
    )
    .increment(1);
    histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        "method" => method,
        "route" => route.to_owned(),
    )
    .record(elapsed.as_secs_f64());
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The credentials were right; a session was opened.
    Success,
    /// Unknown email or wrong password.
    Failure,
}

/// Records a sign-in attempt.
pub fn record_login(outcome: LoginOutcome) {
    let outcome = match outcome {
        LoginOutcome::Success => "success",
        LoginOutcome::Failure => "failure",
    };
    counter!(AUTH_LOGINS_TOTAL, "outcome" => outcome).increment(1);
}

/// Records a request refused by the rate limit `limit` (its configuration name, e.g. `LOGIN_IP`).
pub fn record_rate_limited(limit: &'static str) {
    counter!(AUTH_RATE_LIMITED_TOTAL, "limit" => limit).increment(1);
}

/// Sets how many messages wait in the mail outbox.
pub fn set_mail_outbox_depth(depth: u64) {
    gauge!(MAIL_OUTBOX_DEPTH).set(depth as f64);
}

/// Records a message handed to the mail transport.
pub fn record_mail_sent() {
    counter!(MAIL_SENT_TOTAL).increment(1);
}

/// Records a failed mail delivery attempt.
pub fn record_mail_failure() {
    counter!(MAIL_SEND_FAILURES_TOTAL).increment(1);
}

/// Which way rows moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsDirection {
    /// Rows a client pushed that the server applied.
    Pushed,
    /// Rows the server sent in a pull.
    Pulled,
}

/// Records one sync request and the `rows` it moved.
pub fn record_rows(direction: RowsDirection, rows: u64) {
    let (operation, direction) = match direction {
        RowsDirection::Pushed => ("push", "pushed"),
        RowsDirection::Pulled => ("pull", "pulled"),
    };
    counter!(SYNC_REQUESTS_TOTAL, "operation" => operation).increment(1);
    counter!(SYNC_ROWS_TOTAL, "direction" => direction).increment(rows);
}

/// How a save-blob write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobWrite {
    /// A first save was created.
    Created,
    /// The save was replaced.
    Replaced,
    /// The save was deleted.
    Deleted,
    /// The precondition failed: the client held a stale version (`412`).
    Conflict,
}

/// Records a save-blob write.
pub fn record_blob_write(outcome: BlobWrite) {
    let outcome = match outcome {
        BlobWrite::Created => "created",
        BlobWrite::Replaced => "replaced",
        BlobWrite::Deleted => "deleted",
        BlobWrite::Conflict => "conflict",
    };
    counter!(BLOB_WRITES_TOTAL, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_text_format() {
        handle();
        record_login(LoginOutcome::Failure);
        record_rows(RowsDirection::Pushed, 7);
        record_request("GET", "/healthz", 200, Duration::from_millis(3));
        let text = render();
        assert!(
            text.contains("auth_logins_total{outcome=\"failure\"}"),
            "{text}"
        );
        assert!(
            text.contains("sync_rows_total{direction=\"pushed\"}"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.005\"}"),
            "histograms have buckets: {text}"
        );
        assert!(
            text.contains("# TYPE http_requests_total counter"),
            "{text}"
        );
    }

    #[test]
    fn only_the_methods_http_defines_become_labels() {
        for known in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert_eq!(method_label(known), known);
        }
        for made_up in ["FOO", "get", "X1234", "PROPFIND", ""] {
            assert_eq!(method_label(made_up), "OTHER", "{made_up:?}");
        }
    }
}
