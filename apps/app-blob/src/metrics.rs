//! app-blob's own metrics on `/metrics`, next to the library's (requests, logins, mail).
//! Labels take values from fixed sets only.

use auth_skeleton::metrics::{counter, describe_counter};

/// `blob_writes_total{outcome}`: save writes by outcome (`created`, `replaced`, `deleted`,
/// `conflict`).
pub const BLOB_WRITES_TOTAL: &str = "blob_writes_total";

/// Gives the metric its `# HELP` line; called when the routes are mounted (the recorder is
/// installed by then).
pub fn describe() {
    describe_counter!(BLOB_WRITES_TOTAL, "Save-blob writes by outcome");
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
    fn writes_appear_in_the_text_format() {
        auth_skeleton::metrics::handle();
        record_blob_write(BlobWrite::Conflict);
        let text = auth_skeleton::metrics::render();
        assert!(
            text.contains("blob_writes_total{outcome=\"conflict\"}"),
            "{text}"
        );
    }
}
