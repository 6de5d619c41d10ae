//! The save service: reads, and the write transactions that check a precondition and apply a
//! change atomically. Plain async functions over the database and the clock; no HTTP types.

use std::fs::File;
use std::sync::Arc;

use crate::metrics::{BlobWrite, record_blob_write};
use auth_skeleton::clock::Clock;
use auth_skeleton::db::Db;

use crate::config::SaveConfig;
use crate::error::SaveError;
use crate::files::{FileStore, file_name};
use crate::idempotency::KEY_LIFETIME_MS;
use crate::precondition::{Outcome, Preconditions};
use crate::store::{self, IdempotencyRecord, NewVersion, Stored, StoredBytes};
use crate::upload::{Body, Spill, Upload, file_error};
use crate::version::{Meta, VersionRow, mint_tag};

/// How often a read retries when the save changes between reading its meta and its bytes.
const READ_ATTEMPTS: usize = 8;

/// The save engine's state: its database, clock and limits.
#[derive(Debug, Clone)]
pub struct Saves {
    db: Db,
    clock: Clock,
    config: SaveConfig,
    /// Where saves at or above the threshold go, beside a SQLite database.
    files: Option<Spill>,
}

/// A `PUT`.
#[derive(Debug)]
pub struct Put<'a> {
    /// Whose save.
    pub user_id: &'a str,
    /// The writing session's device name.
    pub device_name: Option<&'a str>,
    /// The request's preconditions (they guard the write: checked by the caller).
    pub preconditions: &'a Preconditions,
    /// The body.
    pub upload: Upload,
    /// `Idempotency-Key` and the request's fingerprint, if the client sent a key.
    pub idempotency: Option<(&'a str, Vec<u8>)>,
}

/// A successful `PUT`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResponse {
    /// `201` when the save was created, `200` when replaced.
    pub status: u16,
    /// The new version.
    pub meta: Meta,
}

/// A version's bytes, ready to send.
#[derive(Debug)]
pub enum Content {
    /// In memory (from the version's row).
    Memory(Vec<u8>),
    /// An open file beside the database, and its size. Opened, it stays readable even if the
    /// version is replaced and its file deleted meanwhile.
    File(File, u64),
}

impl Content {
    /// How many bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Memory(bytes) => bytes.len() as u64,
            Content::File(_, len) => *len,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a `GET` of the save gives.
#[derive(Debug)]
pub enum Read {
    /// The bytes of the current version.
    Full(Meta, Content),
    /// `If-None-Match` matched the current version.
    NotModified(Meta),
}

/// What a `HEAD` of the save gives: a `GET`'s answer without the bytes.
#[derive(Debug)]
pub enum Head {
    /// The current version, whose bytes a `GET` would send.
    Full(Meta),
    /// `If-None-Match` matched the current version.
    NotModified(Meta),
}

/// A `DELETE`.
#[derive(Debug)]
pub struct Delete<'a> {
    /// Whose save.
    pub user_id: &'a str,
    /// The request's preconditions (`If-Match` is required: checked by the caller).
    pub preconditions: &'a Preconditions,
    /// `Idempotency-Key` and the request's fingerprint, if the client sent a key.
    pub idempotency: Option<(&'a str, Vec<u8>)>,
}

impl Saves {
    /// The engine over `db`.
    ///
    /// With `files`, saves at or above its threshold are kept in files beside the database.
    pub fn new(db: Db, clock: Clock, config: SaveConfig, files: Option<Spill>) -> Self {
        Self {
            db,
            clock,
            config,
            files,
        }
    }

    /// Where uploads at or above the file threshold go, if files are kept.
    pub fn spill(&self) -> Option<&Spill> {
        self.files.as_ref()
    }

    /// The files beside the database, if they are kept.
    pub fn file_store(&self) -> Option<&Arc<FileStore>> {
        self.files.as_ref().map(|spill| &spill.files)
    }

    /// The limits clients are told about.
    pub fn config(&self) -> SaveConfig {
        self.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The current version's meta.
    pub async fn meta(&self, user_id: &str) -> Result<Meta, SaveError> {
        let row = store::current(&self.db, user_id).await?;
        row.as_ref().map(Meta::from).ok_or(SaveError::NoSave)
    }

    /// The current version's meta and what the request's conditions make of it: `404` without
    /// a save, `412` when they fail. Reads no bytes.
    async fn judge_read(
        &self,
        user_id: &str,
        pre: &Preconditions,
    ) -> Result<(VersionRow, Outcome), SaveError> {
        let row = store::current(&self.db, user_id)
            .await?
            .ok_or(SaveError::NoSave)?;
        match pre.evaluate_read(Some(&row.tag)) {
            Outcome::Failed => Err(conflict(Some(&row))),
            outcome => Ok((row, outcome)),
        }
    }

    /// The current save's meta, subject to the request's conditions as for [`Saves::read`],
    /// from the meta alone: none of the bytes is read.
    pub async fn head(&self, user_id: &str, pre: &Preconditions) -> Result<Head, SaveError> {
        let (row, outcome) = self.judge_read(user_id, pre).await?;
        let meta = Meta::from(&row);
        Ok(match outcome {
            Outcome::NotModified => Head::NotModified(meta),
            _ => Head::Full(meta),
        })
    }

    /// The current save, subject to the request's conditions.
    pub async fn read(&self, user_id: &str, pre: &Preconditions) -> Result<Read, SaveError> {
        for _ in 0..READ_ATTEMPTS {
            let (row, outcome) = self.judge_read(user_id, pre).await?;
            let meta = Meta::from(&row);
            if outcome == Outcome::NotModified {
                return Ok(Read::NotModified(meta));
            }
            // The bytes are read only when they are sent, and only if they are still the
            // version just checked; a write in between makes the loop look again.
            // A file can go between the two reads too: its version was replaced and collected.
            if let Some(stored) = store::current_bytes(&self.db, user_id, &row.tag).await?
                && let Some(content) = self.content(stored).await?
            {
                return Ok(Read::Full(meta, content));
            }
        }
        Err(SaveError::Api(auth_skeleton::ApiError::internal(
            "the save kept changing while it was being read",
        )))
    }

    /// Creates or replaces the save if the preconditions hold, keeping the replaced version in
    /// the history and the response under the idempotency key, all in one transaction.
    ///
    /// The history is then trimmed to `SAVE_HISTORY` versions, and its oldest versions dropped
    /// while the new save and the history together are over `BLOB_BYTES_QUOTA`; a save over
    /// the quota on its own is `413 quota_exceeded` and changes nothing.
    pub async fn put(&self, mut put: Put<'_>) -> Result<PutResponse, SaveError> {
        // A file is in place, durable, before the transaction that names it begins; the gate it
        // holds keeps it from being collected until that transaction has ended.
        let (placed, bytes) =
            match std::mem::replace(&mut put.upload.body, Body::Memory(Vec::new())) {
                Body::Memory(bytes) => (None, bytes),
                Body::File(spooled) => {
                    let files = self.file_store().ok_or_else(|| {
                        auth_skeleton::ApiError::internal(
                            "an upload was spooled with no file store",
                        )
                    })?;
                    let name = file_name(put.user_id, &put.upload.sha256);
                    let placed = files.place(spooled, &name).await.map_err(file_error)?;
                    (Some(placed), Vec::new())
                }
            };
        let data = match &placed {
            Some(placed) => Stored::File(&placed.name),
            None => Stored::Inline(&bytes),
        };
        let written = self.put_in_tx(&put, data).await;
        // The gate is released before the clean-up, which waits for every write in flight.
        let placed = placed.map(|p| p.name.clone());
        let (result, unnamed) = match written {
            Ok((response, Some(dropped))) => (Ok(response), dropped),
            // Refused, failed or replayed, the write committed no row naming the file it
            // placed; an older version of the same bytes may name it still, which the clean-up
            // sees.
            Ok((response, None)) => (Ok(response), placed.into_iter().collect()),
            Err(e) => (Err(e), placed.into_iter().collect()),
        };
        self.collect(unnamed).await;
        result
    }

    /// The transaction of a `PUT` that stores `data`; with the answer, the files of the rows it
    /// dropped, or `None` when it committed nothing (an idempotent replay).
    async fn put_in_tx(
        &self,
        put: &Put<'_>,
        data: Stored<'_>,
    ) -> Result<(PutResponse, Option<Vec<String>>), SaveError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        let generation = store::lock_user(&mut tx, put.user_id).await?;

        // Under the lock, so two attempts with one key cannot both write.
        if let Some((key, fingerprint)) = &put.idempotency
            && let Some(record) = store::idempotency_record(&mut tx, put.user_id, key, now).await?
        {
            tx.rollback().await?;
            check_fingerprint(&record, fingerprint)?;
            return Ok((replay_put(record)?, None));
        }

        let current = store::current_in(&mut tx, put.user_id).await?;
        if put
            .preconditions
            .evaluate_write(current.as_ref().map(|c| c.tag.as_str()))
            != Outcome::Proceed
        {
            tx.rollback().await?;
            record_blob_write(BlobWrite::Conflict);
            return Err(conflict(current.as_ref()));
        }

        // A save over the quota on its own could not fit even without any history: refused
        // before anything is archived or pruned, so the save and its history stay as they are.
        let new_bytes = put.upload.len;
        if new_bytes > self.config.quota_bytes {
            tx.rollback().await?;
            return Err(SaveError::QuotaExceeded {
                limit: self.config.quota_bytes,
            });
        }

        if current.is_some() {
            self.archive(&mut tx, put.user_id, now).await?;
        }
        // `BLOB_BYTES_QUOTA`: the new version's bytes plus the history's kept ones. The history
        // is counted per version, which is also per `blob_data` row: every version has a row of
        // its own (ADR 12), so this is what the pruning frees, and the replaced version is in
        // the history by now (or its bytes go below when no history is kept).
        let budget = self.config.quota_bytes - new_bytes;
        store::prune_history_to_bytes(
            &mut tx,
            put.user_id,
            i64::try_from(budget).unwrap_or(i64::MAX),
        )
        .await?;
        let row = VersionRow {
            tag: mint_tag(generation),
            size: i64::try_from(put.upload.len).map_err(auth_skeleton::ApiError::internal)?,
            sha256: hex::encode(put.upload.sha256),
            updated_at: now,
            device_name: put.device_name.map(str::to_owned),
        };
        store::write_current(
            &mut tx,
            put.user_id,
            &NewVersion {
                generation,
                row: &row,
                data,
            },
        )
        .await?;
        let dropped = store::drop_unreferenced_data(&mut tx, put.user_id).await?;
        let response = PutResponse {
            status: if current.is_some() { 200 } else { 201 },
            meta: Meta::from(&row),
        };
        if let Some((key, fingerprint)) = &put.idempotency {
            let record = IdempotencyRecord {
                fingerprint: fingerprint.clone(),
                status: i32::from(response.status),
                response_body: serde_json::to_string(&response.meta)
                    .map_err(auth_skeleton::ApiError::internal)?,
            };
            store::remember_response(&mut tx, put.user_id, key, &record, now + KEY_LIFETIME_MS)
                .await?;
        }
        tx.commit().await?;
        crate::failpoint::hit("save-committed");
        record_blob_write(if current.is_some() {
            BlobWrite::Replaced
        } else {
            BlobWrite::Created
        });
        Ok((response, Some(dropped)))
    }

    /// Deletes the files of `names` that no row names any more. A failure leaves them to the
    /// next sweep: it is logged, and the write it follows stands.
    async fn collect(&self, names: Vec<String>) {
        let Some(files) = self.file_store() else {
            return;
        };
        if let Err(e) = files.collect(&self.db, names).await {
            tracing::warn!(error = %e, "save files not collected; the next sweep will");
        }
    }

    /// Deletes the files beside the database that no row names (see
    /// [`FileStore::sweep`]); `0` when no files are kept.
    pub async fn sweep_files(&self) -> std::io::Result<usize> {
        match self.file_store() {
            Some(files) => files.sweep(&self.db).await,
            None => Ok(0),
        }
    }

    /// Opens stored bytes for sending; `None` when their file is gone.
    async fn content(&self, stored: StoredBytes) -> Result<Option<Content>, SaveError> {
        match stored {
            StoredBytes::Inline(bytes) => Ok(Some(Content::Memory(bytes))),
            StoredBytes::File { name, size } => {
                let files = self.file_store().ok_or_else(|| {
                    auth_skeleton::ApiError::internal(
                        "a save is kept in a file, but no file store is open",
                    )
                })?;
                let Some((file, len)) = files.open_file(&name).await.map_err(file_error)? else {
                    return Ok(None);
                };
                // A file of another size was damaged outside the service: sending it would
                // give the client bytes that are not the version its ETag names.
                if i64::try_from(len).ok() != Some(size) {
                    return Err(auth_skeleton::ApiError::internal(format!(
                        "the save file {name} has {len} bytes, its version {size}"
                    ))
                    .into());
                }
                Ok(Some(Content::File(file, len)))
            }
        }
    }

    /// Deletes the save if `If-Match` holds, keeping it in the history, and remembers the
    /// answer under the idempotency key, all in one transaction.
    pub async fn delete(&self, delete: Delete<'_>) -> Result<(), SaveError> {
        let Delete {
            user_id,
            preconditions: pre,
            idempotency,
        } = delete;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        store::lock_user(&mut tx, user_id).await?;

        // Under the lock, so two attempts with one key cannot both delete.
        if let Some((key, fingerprint)) = &idempotency
            && let Some(record) = store::idempotency_record(&mut tx, user_id, key, now).await?
        {
            tx.rollback().await?;
            check_fingerprint(&record, fingerprint)?;
            // The fingerprint names the method: only a delete's record gets here.
            return Ok(());
        }

        let Some(current) = store::current_in(&mut tx, user_id).await? else {
            tx.rollback().await?;
            return Err(SaveError::NoSave);
        };
        if pre.evaluate_write(Some(&current.tag)) != Outcome::Proceed {
            tx.rollback().await?;
            record_blob_write(BlobWrite::Conflict);
            return Err(conflict(Some(&current)));
        }
        self.archive(&mut tx, user_id, now).await?;
        store::delete_current(&mut tx, user_id).await?;
        let dropped = store::drop_unreferenced_data(&mut tx, user_id).await?;
        if let Some((key, fingerprint)) = idempotency {
            let record = IdempotencyRecord {
                fingerprint,
                status: 204,
                response_body: String::new(),
            };
            store::remember_response(&mut tx, user_id, key, &record, now + KEY_LIFETIME_MS).await?;
        }
        tx.commit().await?;
        record_blob_write(BlobWrite::Deleted);
        self.collect(dropped).await;
        Ok(())
    }

    /// Moves the current version into the history and trims it to `SAVE_HISTORY`.
    ///
    /// Only meta rows move here. The bytes that no version refers to any more are dropped once
    /// the current version has been replaced or deleted (`store::drop_unreferenced_data`).
    async fn archive(
        &self,
        tx: &mut auth_skeleton::db::Tx,
        user_id: &str,
        now: i64,
    ) -> Result<(), SaveError> {
        if self.config.history > 0 {
            store::archive_current(tx, user_id, now).await?;
        }
        store::prune_history(tx, user_id, self.config.history).await?;
        Ok(())
    }

    /// The kept versions, newest first.
    pub async fn history(&self, user_id: &str) -> Result<Vec<Meta>, SaveError> {
        let rows = store::history(&self.db, user_id, self.config.history).await?;
        Ok(rows.iter().map(Meta::from).collect())
    }

    /// The bytes of a kept version.
    pub async fn history_bytes(&self, user_id: &str, tag: &str) -> Result<Content, SaveError> {
        // No tag holds a NUL, and PostgreSQL refuses one in text: not found, not a fault.
        if tag.contains('\0') {
            return Err(SaveError::VersionNotFound);
        }
        let stored = store::history_bytes(&self.db, user_id, tag)
            .await?
            .ok_or(SaveError::VersionNotFound)?;
        // Its file gone means the version was pruned since the row was read.
        self.content(stored)
            .await?
            .ok_or(SaveError::VersionNotFound)
    }

    /// Forgets the `Idempotency-Key` records older than their lifetime.
    pub async fn purge_expired_keys(&self) -> Result<u64, sqlx::Error> {
        store::purge_idempotency_records(&self.db, self.clock.now_ms()).await
    }
}

fn conflict(current: Option<&VersionRow>) -> SaveError {
    SaveError::VersionConflict {
        current: current.map(|c| Box::new(Meta::from(c))),
    }
}

/// `422` when the key was used for another request than the one with `fingerprint`.
fn check_fingerprint(record: &IdempotencyRecord, fingerprint: &[u8]) -> Result<(), SaveError> {
    if record.fingerprint != fingerprint {
        return Err(SaveError::IdempotencyKeyReused);
    }
    Ok(())
}

/// The original answer of a repeated `PUT`.
fn replay_put(record: IdempotencyRecord) -> Result<PutResponse, SaveError> {
    let meta =
        serde_json::from_str(&record.response_body).map_err(auth_skeleton::ApiError::internal)?;
    let status = u16::try_from(record.status).map_err(auth_skeleton::ApiError::internal)?;
    Ok(PutResponse { status, meta })
}
