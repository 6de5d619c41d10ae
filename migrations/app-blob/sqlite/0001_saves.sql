-- One save blob per user, the versions it replaced, and the Idempotency-Key records of PUTs.
-- Times are Unix milliseconds. A version's ETag is `"<tag>"`; `tag` is stored without quotes.

-- The per-user row every write locks first (serialising the writers of one user) and whose
-- counter numbers the versions. It is never reset while the account exists, so a version's tag
-- never repeats even when the save is deleted and created again. It hangs off the account, and
-- everything else hangs off it, so deleting either one takes all of the user's save data along.
CREATE TABLE IF NOT EXISTS blob_counters (
    user_id    TEXT   PRIMARY KEY NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS blob_saves (
    user_id     TEXT   PRIMARY KEY NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    tag         TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    device_name TEXT,
    data        BLOB   NOT NULL
);

-- Versions that a write replaced or a delete removed; the newest SAVE_HISTORY are kept.
CREATE TABLE IF NOT EXISTS blob_history (
    user_id     TEXT   NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    tag         TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    device_name TEXT,
    data        BLOB   NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, generation)
);

CREATE UNIQUE INDEX IF NOT EXISTS blob_history_tag ON blob_history (user_id, tag);

-- A successful PUT's response, kept for 24 hours under the client's Idempotency-Key so that a
-- retry after a lost response gets it again instead of a false 412.
CREATE TABLE IF NOT EXISTS blob_idempotency (
    user_id       TEXT    NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    idem_key      TEXT    NOT NULL,
    fingerprint   BLOB    NOT NULL,
    status        INTEGER NOT NULL,
    response_body TEXT    NOT NULL,
    expires_at    BIGINT  NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);

CREATE INDEX IF NOT EXISTS blob_idempotency_expires_at ON blob_idempotency (expires_at);
