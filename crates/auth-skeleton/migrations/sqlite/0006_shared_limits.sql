-- Rate limits kept in the database (RATE_LIMIT_STORE=database), shared by every process on this
-- file: one row per limit and key, holding its GCRA state.
CREATE TABLE IF NOT EXISTS auth_rate_limits (
    bucket BLOB    PRIMARY KEY NOT NULL,  -- SHA-256 of the limit's name and the key, first 16 bytes
    tat    INTEGER NOT NULL               -- theoretical arrival time of the next attempt, µs since the epoch
) WITHOUT ROWID;

-- A session changed in place (its secret, owner or lifetime, or `last_seen_at` moved back, by
-- SQL: the services only move `last_seen_at` forward) moves the change counter, as its deletion
-- does, so that session caches drop it.
CREATE TRIGGER IF NOT EXISTS auth_sessions_changed_count
AFTER UPDATE OF id, user_id, secret_hash, created_at, expires_at ON auth_sessions
BEGIN
    UPDATE auth_change_counter SET changes = changes + 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS auth_sessions_idled_count
AFTER UPDATE OF last_seen_at ON auth_sessions WHEN NEW.last_seen_at < OLD.last_seen_at
BEGIN
    UPDATE auth_change_counter SET changes = changes + 1 WHERE id = 1;
END;
