-- A counter that moves whenever a session ends early or an account's email or verification
-- changes, whichever process or instance did it. Services that answer session checks from
-- memory read it to learn that their copy may be stale. The triggers keep it honest for every
-- writer: the services, the admin CLI and any app that deletes accounts.
CREATE TABLE IF NOT EXISTS auth_change_counter (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    changes BIGINT  NOT NULL
);

INSERT INTO auth_change_counter (id, changes) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

-- Moves the counter once per transaction, however many rows it touched: a purge of thousands of
-- sessions must not update one row thousands of times (each update a new row version) while
-- holding the lock every other revocation waits for.
CREATE OR REPLACE FUNCTION auth_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('auth_skeleton.counted_in', true) IS DISTINCT FROM txid_current()::text THEN
        PERFORM set_config('auth_skeleton.counted_in', txid_current()::text, true);
        UPDATE auth_change_counter SET changes = changes + 1 WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$;

-- Deferred to commit, so the counter row is always the last lock a transaction takes: two
-- transactions cannot deadlock over it, and it is held only for the commit.
DROP TRIGGER IF EXISTS auth_sessions_deleted_count ON auth_sessions;
CREATE CONSTRAINT TRIGGER auth_sessions_deleted_count AFTER DELETE ON auth_sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION auth_count_change();

DROP TRIGGER IF EXISTS auth_users_changed_count ON auth_users;
CREATE CONSTRAINT TRIGGER auth_users_changed_count AFTER UPDATE OF email, email_verified ON auth_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION auth_count_change();

DROP TRIGGER IF EXISTS auth_users_deleted_count ON auth_users;
CREATE CONSTRAINT TRIGGER auth_users_deleted_count AFTER DELETE ON auth_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION auth_count_change();
