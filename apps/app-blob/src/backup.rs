//! The save files' part of `app-blob backup PATH`: the database is copied to `PATH`, and then
//! the files that copy names to `PATH.blobs`, beside it as the live files are beside the live
//! database. Restoring is copying both back (`docs/operations.md`, "Backups").
//!
//! The copy is consistent because the files are immutable (a name is its content) and none can
//! be deleted from the moment before the database is copied until the last file is: the backup
//! holds `clean-up.lock`, and the service skips its clean-ups while it is held
//! ([`crate::files`]). A file placed after the database copy was taken is not named by it and
//! is not copied.

use std::path::Path;
use std::sync::Arc;

use auth_skeleton::service::DatabaseCopy;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::files::FileStore;

/// Runs the database copy inside the files' part of the backup (or alone, without files).
pub async fn run(files: Option<Arc<FileStore>>, database: DatabaseCopy<'_>) -> Result<(), String> {
    let Some(files) = files else {
        return database.write().await;
    };
    let target = database.target().to_path_buf();
    let files_target = FileStore::beside(&target);
    if files_target.symlink_metadata().is_ok() {
        return Err(format!(
            "{} exists already; choose a new backup name (a backup never overwrites)",
            files_target.display()
        ));
    }
    let _hold = files
        .hold_off_clean_ups()
        .await
        .map_err(|e| format!("cannot hold off the clean-up of the save files: {e}"))?;
    database.write().await?;
    let copied = async {
        let names = named_files(&target).await?;
        let count = names.len();
        let bytes = files
            .copy_into(files_target.clone(), names)
            .await
            .map_err(|e| format!("copying the save files to {}: {e}", files_target.display()))?;
        Ok::<_, String>((count, bytes))
    }
    .await;
    match copied {
        Ok((count, bytes)) => {
            tracing::info!(files = count, bytes, target = %files_target.display(), "save files copied");
            Ok(())
        }
        Err(e) => {
            // Half a backup is none: leave neither part behind.
            let _ = std::fs::remove_dir_all(&files_target);
            let _ = std::fs::remove_file(&target);
            Err(e)
        }
    }
}

/// The files the database copy at `path` names.
async fn named_files(path: &Path) -> Result<Vec<String>, String> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = SqlitePool::connect_with(options)
        .await
        .map_err(|e| format!("reading the database copy: {e}"))?;
    let names = sqlx::query_scalar("SELECT DISTINCT file FROM blob_data WHERE file IS NOT NULL")
        .fetch_all(&pool)
        .await
        .map_err(|e| format!("reading the database copy: {e}"));
    pool.close().await;
    names
}
