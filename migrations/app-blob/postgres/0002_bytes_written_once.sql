-- A version's bytes move out of its meta row into `blob_data`, where they are written once, when
-- the version is created, and deleted when no version refers to them any more. Moving a version
-- into the history then copies its small meta row only, and no statement ever updates a
-- `blob_data` row (each rewrite would store the value again in TOAST and in the WAL).
-- See docs/adr/0012-save-bytes-written-once.md.
--
-- sqlx runs this file in one transaction: the database is either still at 0001 or fully moved.

CREATE TABLE IF NOT EXISTS blob_data (
    user_id    TEXT   NOT NULL REFERENCES blob_counters (user_id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    data       BYTEA  NOT NULL,
    PRIMARY KEY (user_id, generation)
);

-- A generation is either current or in the history, never both (archiving gave the save a new
-- generation in the same transaction), so the two copies cannot collide.
INSERT INTO blob_data (user_id, generation, data)
SELECT user_id, generation, data FROM blob_saves;
INSERT INTO blob_data (user_id, generation, data)
SELECT user_id, generation, data FROM blob_history;

-- Dropping a column only hides it: PostgreSQL frees the old values as the rows are replaced or
-- pruned by later writes and vacuumed, or at once with VACUUM FULL.
ALTER TABLE blob_saves DROP COLUMN data;
ALTER TABLE blob_history DROP COLUMN data;

-- A version's meta can never outlive its bytes.
ALTER TABLE blob_saves ADD CONSTRAINT blob_saves_data
    FOREIGN KEY (user_id, generation) REFERENCES blob_data (user_id, generation);
ALTER TABLE blob_history ADD CONSTRAINT blob_history_data
    FOREIGN KEY (user_id, generation) REFERENCES blob_data (user_id, generation);
