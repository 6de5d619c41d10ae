-- State that several instances of an app on this database share.

-- Rate limits (RATE_LIMIT_STORE=database): one row per limit and key, holding its GCRA state.
-- UNLOGGED: no write-ahead log per login attempt; a crash empties the table, which only forgives.
CREATE UNLOGGED TABLE IF NOT EXISTS auth_rate_limits (
    bucket BYTEA  PRIMARY KEY,  -- SHA-256 of the limit's name and the key, first 16 bytes
    tat    BIGINT NOT NULL      -- theoretical arrival time of the next attempt, µs since the epoch
);

-- Ended sessions and changed accounts are announced on the channel `auth_skeleton_sessions`, so
-- that every instance drops its cached copy at once: `s:<session id>`, `u:<user id>`, or `*`
-- (drop everything) when one statement ended many. NOTIFY is delivered at commit, and only then.
CREATE OR REPLACE FUNCTION auth_announce_sessions_ended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone_id TEXT;
BEGIN
    IF (SELECT count(*) FROM gone) > 64 THEN
        PERFORM pg_notify('auth_skeleton_sessions', '*');
    ELSE
        FOR gone_id IN SELECT id FROM gone LOOP
            PERFORM pg_notify('auth_skeleton_sessions', 's:' || gone_id);
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;

-- An account matters to a cached session through its email and verification, and its existence.
CREATE OR REPLACE FUNCTION auth_announce_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_ids TEXT[];
    changed_id  TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(id) INTO changed_ids FROM changed;
    ELSE
        SELECT array_agg(o.id) INTO changed_ids
        FROM changed o JOIN updated n ON n.id = o.id
        WHERE o.email IS DISTINCT FROM n.email OR o.email_verified IS DISTINCT FROM n.email_verified;
    END IF;
    IF cardinality(changed_ids) > 64 THEN
        PERFORM pg_notify('auth_skeleton_sessions', '*');
    ELSIF changed_ids IS NOT NULL THEN
        FOREACH changed_id IN ARRAY changed_ids LOOP
            PERFORM pg_notify('auth_skeleton_sessions', 'u:' || changed_id);
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS auth_sessions_deleted_announce ON auth_sessions;
CREATE TRIGGER auth_sessions_deleted_announce AFTER DELETE ON auth_sessions
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_sessions_ended();

-- Updates are announced only when they change what a cached session holds: a password rehash or
-- the lock taken on the account row moves nothing.
DROP TRIGGER IF EXISTS auth_users_updated_announce ON auth_users;
CREATE TRIGGER auth_users_updated_announce AFTER UPDATE ON auth_users
    REFERENCING OLD TABLE AS changed NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_users_changed();

DROP TRIGGER IF EXISTS auth_users_deleted_announce ON auth_users;
CREATE TRIGGER auth_users_deleted_announce AFTER DELETE ON auth_users
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_users_changed();

-- A session changed in place (its secret, owner or lifetime, or `last_seen_at` moved back, by
-- SQL: the services only move `last_seen_at` forward) is announced and counted as ended, so that
-- caches drop it.
CREATE OR REPLACE FUNCTION auth_announce_sessions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_ids TEXT[];
    changed_id  TEXT;
BEGIN
    SELECT array_agg(o.id) INTO changed_ids FROM changed o
    WHERE NOT EXISTS (
        SELECT 1 FROM updated n
        WHERE n.id = o.id AND n.user_id = o.user_id AND n.secret_hash = o.secret_hash
          AND n.created_at = o.created_at AND n.expires_at = o.expires_at
          -- The services only move it forward; moved back, the session may be idle past its end.
          AND n.last_seen_at >= o.last_seen_at
    );
    IF cardinality(changed_ids) > 64 THEN
        PERFORM pg_notify('auth_skeleton_sessions', '*');
    ELSIF changed_ids IS NOT NULL THEN
        FOREACH changed_id IN ARRAY changed_ids LOOP
            PERFORM pg_notify('auth_skeleton_sessions', 's:' || changed_id);
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS auth_sessions_updated_announce ON auth_sessions;
CREATE TRIGGER auth_sessions_updated_announce AFTER UPDATE ON auth_sessions
    REFERENCING OLD TABLE AS changed NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_sessions_changed();

DROP TRIGGER IF EXISTS auth_sessions_changed_count ON auth_sessions;
CREATE CONSTRAINT TRIGGER auth_sessions_changed_count
    AFTER UPDATE OF id, user_id, secret_hash, created_at, expires_at ON auth_sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION auth_count_change();

DROP TRIGGER IF EXISTS auth_sessions_idled_count ON auth_sessions;
CREATE CONSTRAINT TRIGGER auth_sessions_idled_count AFTER UPDATE OF last_seen_at ON auth_sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.last_seen_at < OLD.last_seen_at) EXECUTE FUNCTION auth_count_change();

-- TRUNCATE fires no row or DELETE trigger: it ends everything, and says so.
CREATE OR REPLACE FUNCTION auth_announce_everything() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_skeleton_sessions', '*');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS auth_sessions_truncated_announce ON auth_sessions;
CREATE TRIGGER auth_sessions_truncated_announce AFTER TRUNCATE ON auth_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_everything();
DROP TRIGGER IF EXISTS auth_sessions_truncated_count ON auth_sessions;
CREATE TRIGGER auth_sessions_truncated_count AFTER TRUNCATE ON auth_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auth_count_change();

DROP TRIGGER IF EXISTS auth_users_truncated_announce ON auth_users;
CREATE TRIGGER auth_users_truncated_announce AFTER TRUNCATE ON auth_users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_announce_everything();
DROP TRIGGER IF EXISTS auth_users_truncated_count ON auth_users;
CREATE TRIGGER auth_users_truncated_count AFTER TRUNCATE ON auth_users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_count_change();
