-- The bytes of data the user keeps, for ROWS_BYTES_QUOTA: the sum of the stored rows' data
-- lengths in bytes (a tombstone's NULL data counts 0), kept in step by every applied change and
-- by the purge. Filled here from the rows already stored; length() of TEXT counts characters,
-- so the data is measured as a BLOB.
ALTER TABLE rows_users ADD COLUMN data_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE rows_users SET data_bytes = (
    SELECT COALESCE(SUM(length(CAST(rows_items.data AS BLOB))), 0) FROM rows_items
    WHERE rows_items.user_id = rows_users.user_id
);
