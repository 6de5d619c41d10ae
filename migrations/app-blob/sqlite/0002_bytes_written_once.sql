-- A version's bytes move out of its meta row into `blob_data`, where they are written once, when
-- the version is created, and deleted when no version refers to them any more. Moving a version
-- into the history then copies its small meta row only. No statement ever updates a `blob_data`
-- row: SQLite rewrites a whole record, overflow pages included, on any UPDATE, and each rewrite
-- costs the bytes twice more (WAL, then checkpoint). See docs/adr/0012-save-bytes-written-once.md.
--
-- sqlx runs this file in one transaction: the database is either still at 0001 or fully moved.

-- A rowid table, not WITHOUT ROWID: its records are far larger than a page.
CREATE TABLE IF NOT EXISTS blob_data (
    user_id    TEXT   NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    data       BLOB   NOT NULL,
    PRIMARY KEY (user_id, generation)
);

-- A generation is either current or in the history, never both (archiving gave the save a new
-- generation in the same transaction), so the two copies cannot collide.
INSERT INTO blob_data (user_id, generation, data)
SELECT user_id, generation, data FROM blob_saves;
INSERT INTO blob_data (user_id, generation, data)
SELECT user_id, generation, data FROM blob_history;

-- The meta tables are rebuilt without `data` and with a foreign key to their bytes, so that a
-- version's meta can never outlive them (SQLite cannot add a constraint to an existing table).
-- Nothing references these two tables, so dropping and renaming them touches no other table.
CREATE TABLE blob_saves_0002 (
    user_id     TEXT   PRIMARY KEY NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    tag         TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    device_name TEXT,
    FOREIGN KEY (user_id, generation) REFERENCES blob_data (user_id, generation)
);
INSERT INTO blob_saves_0002 (user_id, generation, tag, size, sha256, updated_at, device_name)
SELECT user_id, generation, tag, size, sha256, updated_at, device_name FROM blob_saves;
DROP TABLE blob_saves;
ALTER TABLE blob_saves_0002 RENAME TO blob_saves;

-- Versions that a write replaced or a delete removed; the newest SAVE_HISTORY are kept.
CREATE TABLE blob_history_0002 (
    user_id     TEXT   NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation  BIGINT NOT NULL,
    tag         TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    device_name TEXT,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, generation),
    FOREIGN KEY (user_id, generation) REFERENCES blob_data (user_id, generation)
);
INSERT INTO blob_history_0002
    (user_id, generation, tag, size, sha256, updated_at, device_name, replaced_at)
SELECT user_id, generation, tag, size, sha256, updated_at, device_name, replaced_at
FROM blob_history;
DROP TABLE blob_history;
ALTER TABLE blob_history_0002 RENAME TO blob_history;

CREATE UNIQUE INDEX IF NOT EXISTS blob_history_tag ON blob_history (user_id, tag);
