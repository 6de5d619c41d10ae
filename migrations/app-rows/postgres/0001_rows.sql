-- Row sync. Times are Unix milliseconds.

-- One line per user that has pushed: the last sequence number handed out (every applied change
-- gets the next one), how many rows the user keeps (tombstones included, for ROWS_QUOTA), and
-- the purge horizon (the highest sequence number of a purged tombstone; an older cursor is
-- answered 410). Pushes lock this line first, which serialises one user's pushes.
CREATE TABLE IF NOT EXISTS rows_users (
    user_id   TEXT    PRIMARY KEY NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    last_seq  BIGINT  NOT NULL,
    row_count BIGINT  NOT NULL,
    horizon   BIGINT  NOT NULL
);

-- The latest state of every row: its version (ts, counter, node), whether it is a tombstone,
-- its data as compact JSON text (NULL for a tombstone), the sequence number of the change that
-- wrote it, and when the server applied that change (tombstone retention counts from there,
-- never from the client's ts).
CREATE TABLE IF NOT EXISTS rows_items (
    user_id    TEXT    NOT NULL REFERENCES rows_users (user_id) ON DELETE CASCADE,
    collection TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    ts         BIGINT  NOT NULL,
    counter    BIGINT  NOT NULL,
    node       TEXT    NOT NULL,
    deleted    BOOLEAN NOT NULL,
    data       TEXT,
    seq        BIGINT  NOT NULL,
    applied_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, collection, id)
);

-- Pull reads a user's changes in sequence order.
CREATE UNIQUE INDEX IF NOT EXISTS rows_items_user_seq ON rows_items (user_id, seq);
-- The purge job looks for old tombstones only.
CREATE INDEX IF NOT EXISTS rows_items_tombstones ON rows_items (applied_at) WHERE deleted;
