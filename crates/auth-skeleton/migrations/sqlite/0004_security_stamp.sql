-- A per-account security stamp: every credential event (password set or reset, sessions
-- revoked, address changed, a pending change cancelled) moves it, and an email-change link
-- works only while the stamp is the one it was mailed under. So whoever held the account before
-- its owner took it back cannot move it to their own address afterwards.
ALTER TABLE auth_users ADD COLUMN security_stamp BIGINT NOT NULL DEFAULT 0;

-- The stamp a token was mailed under; NULL for tokens that are not bound to it.
ALTER TABLE auth_mailed_tokens ADD COLUMN security_stamp BIGINT;

-- Email-change links mailed before stamps existed cannot be told from an attacker's: they end.
DELETE FROM auth_mailed_tokens WHERE purpose = 'change_email';
