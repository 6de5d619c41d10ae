-- The bytes of data the user keeps, for ROWS_BYTES_QUOTA: the sum of the stored rows' data
-- lengths in bytes (a tombstone's NULL data counts 0), kept in step by every applied change and
-- by the purge. Filled here from the rows already stored.
ALTER TABLE rows_users ADD COLUMN data_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE rows_users SET data_bytes = (
    SELECT COALESCE(SUM(octet_length(rows_items.data)), 0) FROM rows_items
    WHERE rows_items.user_id = rows_users.user_id
);
