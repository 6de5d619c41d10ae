//! Reading a save from the request body: streamed, capped, and hashed on the way in. A body at
//! or above the file threshold streams to a temporary file ([`crate::files`]), so that no upload
//! holds more than the threshold and a write buffer in memory, whatever its size.

use std::sync::Arc;

use actix_web::web;
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use crate::error::SaveError;
use crate::files::{FileStore, Spool, Spooled};

/// A body read to its end, with its SHA-256.
#[derive(Debug)]
pub struct Upload {
    /// The bytes, or their synced temporary file.
    pub body: Body,
    /// How many bytes.
    pub len: u64,
    /// Their SHA-256.
    pub sha256: [u8; 32],
}

/// Where an upload's bytes are.
#[derive(Debug)]
pub enum Body {
    /// In memory (below the file threshold, or no files are kept).
    Memory(Vec<u8>),
    /// In a temporary file, durable, to be moved into place.
    File(Spooled),
}

/// Where a body at or above `threshold` bytes goes instead of memory.
#[derive(Debug, Clone)]
pub struct Spill {
    /// The store of the temporary file.
    pub files: Arc<FileStore>,
    /// The size from which a body is written to a file.
    pub threshold: u64,
}

/// Reads the body, refusing it with `413` as soon as it passes `limit` bytes (or at once when
/// `Content-Length` announces more), so an oversized upload is never stored whole.
pub async fn read_capped(
    payload: &mut web::Payload,
    declared_len: Option<u64>,
    limit: usize,
    spill: Option<&Spill>,
) -> Result<Upload, SaveError> {
    if declared_len.is_some_and(|n| n > limit as u64) {
        return Err(SaveError::PayloadTooLarge { limit });
    }
    let threshold = spill.map(|s| s.threshold);
    let mut spool: Option<Spool> = match spill {
        Some(spill) if declared_len.is_some_and(|n| n >= spill.threshold) => {
            Some(spill.files.spool().map_err(file_error)?)
        }
        _ => None,
    };
    // The declared length is only a hint (within the limit here); it saves re-allocations.
    let hint = declared_len.map_or(0, |n| n.min(threshold.unwrap_or(u64::MAX)) as usize);
    let mut bytes = Vec::with_capacity(if spool.is_some() { 0 } else { hint });
    let mut len: u64 = 0;
    let mut hasher = Sha256::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            SaveError::InvalidRequest("the request body could not be read to its end".into())
        })?;
        len += chunk.len() as u64;
        if len > limit as u64 {
            return Err(SaveError::PayloadTooLarge { limit });
        }
        hasher.update(&chunk);
        if spool.is_none()
            && let Some(spill) = spill
            && len >= spill.threshold
        {
            let mut new = spill.files.spool().map_err(file_error)?;
            new.write(&std::mem::take(&mut bytes))
                .await
                .map_err(file_error)?;
            spool = Some(new);
        }
        match &mut spool {
            Some(spool) => spool.write(&chunk).await.map_err(file_error)?,
            None => bytes.extend_from_slice(&chunk),
        }
    }
    let body = match spool {
        Some(spool) => Body::File(spool.finish().await.map_err(file_error)?),
        None => Body::Memory(bytes),
    };
    Ok(Upload {
        body,
        len,
        sha256: hasher.finalize().into(),
    })
}

/// A failure of the disk is the service's, not the client's: a `500`, logged, with nothing of
/// the path in the answer.
pub fn file_error(e: std::io::Error) -> SaveError {
    SaveError::Api(auth_skeleton::ApiError::internal(e))
}
