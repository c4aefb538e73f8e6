-- Refresh tokens (hashed) and the expiry of the access tokens issued with
-- them; at most two per device (the newest and the one it replaced, until
-- the new tokens are first used).
CREATE TABLE refresh_tokens (
	token_hash        BYTEA PRIMARY KEY,
	user_id           TEXT NOT NULL,
	device_id         TEXT NOT NULL,
	access_hash       BYTEA NOT NULL UNIQUE,
	access_expires_ts BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (user_id, device_id);
