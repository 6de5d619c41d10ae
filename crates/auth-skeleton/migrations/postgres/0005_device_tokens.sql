-- Device tokens (OWASP "device cookies"): a client that signed in before presents one at login
-- and is then held to its own failure count instead of the per-email lockout, so whoever keeps
-- an account locked out does not lock out the devices its owner already uses. Only a SHA-256 of
-- the token's secret half is stored; `id` is the public half.
CREATE TABLE IF NOT EXISTS auth_device_tokens (
    id          TEXT    PRIMARY KEY NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    secret_hash BYTEA   NOT NULL,
    failures    BIGINT  NOT NULL DEFAULT 0,
    -- The account's security stamp when the token was issued or last used to sign in: a
    -- token from before the latest credential event is "stale" (see ADR 14).
    security_stamp BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS auth_device_tokens_user_id ON auth_device_tokens (user_id);
CREATE INDEX IF NOT EXISTS auth_device_tokens_expires_at ON auth_device_tokens (expires_at);
