-- One note per user. No ON DELETE CASCADE: the app's AccountDataHook deletes the note in the
-- account-deletion transaction, and the foreign key makes a forgotten hook fail loudly.
CREATE TABLE IF NOT EXISTS notes (
    user_id    TEXT    PRIMARY KEY NOT NULL REFERENCES auth_users (id),
    text       TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
