//! Reading a save from the request body: streamed, capped, and hashed on the way in.

use actix_web::web;
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use crate::error::SaveError;

/// A body read in full, with its SHA-256.
#[derive(Debug)]
pub struct Upload {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: [u8; 32],
}

/// Reads the body, refusing it with `413` as soon as it passes `limit` bytes (or at once when
/// `Content-Length` announces more), so an oversized upload is never buffered whole.
pub async fn read_capped(
    payload: &mut web::Payload,
    declared_len: Option<u64>,
    limit: usize,
) -> Result<Upload, SaveError> {
    if declared_len.is_some_and(|n| n > limit as u64) {
        return Err(SaveError::PayloadTooLarge { limit });
    }
    // The declared length is only a hint (it is within the limit here); it saves re-allocations.
    let mut bytes = Vec::with_capacity(declared_len.map_or(0, |n| n as usize));
    let mut hasher = Sha256::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            SaveError::InvalidRequest("the request body could not be read to its end".into())
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(SaveError::PayloadTooLarge { limit });
        }
        hasher.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    Ok(Upload {
        bytes,
        sha256: hasher.finalize().into(),
    })
}
