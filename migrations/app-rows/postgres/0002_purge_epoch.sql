-- The purge epoch: how many purges have removed some of the user's tombstones. A cursor carries
-- the epoch it was minted under; only a purge after it (and past its position) answers 410.
-- Purges that ran before this migration count as one, so cursors minted before it (read as
-- epoch 0) still get 410 exactly when their position is below the horizon.
ALTER TABLE rows_users ADD COLUMN purge_epoch BIGINT NOT NULL DEFAULT 0;
UPDATE rows_users SET purge_epoch = 1 WHERE horizon > 0;
