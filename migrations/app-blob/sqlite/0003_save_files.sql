-- A version's bytes may live in a file beside the SQLite database instead of in `data`: `file`
-- names it (a content address, see apps/app-blob/src/files.rs), and `data` is then empty. A file
-- is written, synced and renamed into place before the transaction that inserts its row
-- commits, so no committed row names a file that is not durable. Rows with the same `file`
-- share it; a file no row names any more is deleted after the commit that dropped the last one
-- (or by the next sweep). See docs/adr/0020-save-files-beside-the-database.md.
ALTER TABLE blob_data ADD COLUMN file TEXT;

-- Whether a file is still named, for the clean-up after each write and for the sweeps.
CREATE INDEX IF NOT EXISTS blob_data_file ON blob_data (file) WHERE file IS NOT NULL;
