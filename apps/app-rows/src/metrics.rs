//! app-rows' own metrics on `/metrics`, next to the library's (requests, logins, mail).
//! Labels take values from fixed sets only.

use auth_skeleton::metrics::{counter, describe_counter};

/// `sync_requests_total{operation}`: pushes and pulls answered, `operation` = `push` or `pull`.
pub const SYNC_REQUESTS_TOTAL: &str = "sync_requests_total";
/// `sync_rows_total{direction}`: rows applied from pushes and sent in pulls.
pub const SYNC_ROWS_TOTAL: &str = "sync_rows_total";
/// `app_rows_purged_tombstones_total`: tombstones deleted by the purge job.
pub const PURGED_TOMBSTONES_TOTAL: &str = "app_rows_purged_tombstones_total";

/// Gives the metrics their `# HELP` lines; called when the routes are mounted (the recorder is
/// installed by then).
pub fn describe() {
    describe_counter!(SYNC_REQUESTS_TOTAL, "Sync requests by operation");
    describe_counter!(SYNC_ROWS_TOTAL, "Rows moved by sync, by direction");
    describe_counter!(
        PURGED_TOMBSTONES_TOTAL,
        "Tombstones deleted by the purge job"
    );
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

/// Records tombstones the purge deleted.
pub fn record_purged_tombstones(tombstones: u64) {
    counter!(PURGED_TOMBSTONES_TOTAL).increment(tombstones);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_appear_in_the_text_format() {
        auth_skeleton::metrics::handle();
        record_rows(RowsDirection::Pushed, 7);
        record_purged_tombstones(2);
        let text = auth_skeleton::metrics::render();
        assert!(
            text.contains("sync_rows_total{direction=\"pushed\"}"),
            "{text}"
        );
        assert!(
            text.contains("sync_requests_total{operation=\"push\"}"),
            "{text}"
        );
        assert!(text.contains("app_rows_purged_tombstones_total"), "{text}");
    }
}
