-- Tokens sent by mail (verification, password reset, email change): only a SHA-256 is kept,
-- bound to the user and to the address the mail went to.
CREATE TABLE IF NOT EXISTS auth_mailed_tokens (
    token_hash BLOB    PRIMARY KEY NOT NULL,
    purpose    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS auth_mailed_tokens_user ON auth_mailed_tokens (user_id, purpose);
CREATE INDEX IF NOT EXISTS auth_mailed_tokens_expires_at ON auth_mailed_tokens (expires_at);

-- Mail waiting for delivery, written in the same transaction as the token it carries. A row is
-- deleted once delivered, and dropped unsent once `discard_after` passes (its link is dead).
CREATE TABLE IF NOT EXISTS auth_mail_outbox (
    id              TEXT    PRIMARY KEY NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    discard_after   INTEGER NOT NULL,
    last_error      TEXT
);

CREATE INDEX IF NOT EXISTS auth_mail_outbox_due ON auth_mail_outbox (next_attempt_at);
