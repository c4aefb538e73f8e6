CREATE TABLE delayed_events (
	delay_id      TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	room_id       TEXT NOT NULL,
	type          TEXT NOT NULL,
	state_key     TEXT,
	content       TEXT NOT NULL,
	delay_ms      INTEGER NOT NULL,
	running_since INTEGER NOT NULL,
	fire_ts       INTEGER NOT NULL
);
CREATE INDEX delayed_events_fire ON delayed_events (fire_ts);
CREATE INDEX delayed_events_user ON delayed_events (user_id);
CREATE TABLE openid_tokens (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL,
	expires_ts INTEGER NOT NULL
);
