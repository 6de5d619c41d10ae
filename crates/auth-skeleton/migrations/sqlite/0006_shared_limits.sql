-- Rate limits kept in the database (RATE_LIMIT_STORE=database), shared by every process on this
-- file: one row per limit and key, holding its GCRA state.
CREATE TABLE IF NOT EXISTS auth_rate_limits (
    bucket BLOB    PRIMARY KEY NOT NULL,  -- SHA-256 of the limit's name and the key, first 16 bytes
    tat    INTEGER NOT NULL               -- theoretical arrival time of the next attempt, µs since the epoch
) WITHOUT ROWID;
