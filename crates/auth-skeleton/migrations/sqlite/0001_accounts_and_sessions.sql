-- Accounts and sessions. Times are Unix milliseconds; ids are opaque text.
CREATE TABLE IF NOT EXISTS auth_users (
    id             TEXT    PRIMARY KEY NOT NULL,
    email          TEXT    NOT NULL UNIQUE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Only a SHA-256 of the token's secret half is stored; `id` is the public half.
CREATE TABLE IF NOT EXISTS auth_sessions (
    id           TEXT    PRIMARY KEY NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    device_name  TEXT
);

CREATE INDEX IF NOT EXISTS auth_sessions_user_id ON auth_sessions (user_id);
CREATE INDEX IF NOT EXISTS auth_sessions_expires_at ON auth_sessions (expires_at);
