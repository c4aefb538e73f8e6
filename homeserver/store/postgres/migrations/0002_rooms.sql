CREATE TABLE rooms (
	room_id    TEXT PRIMARY KEY,
	version    TEXT NOT NULL,
	creator    TEXT NOT NULL,
	room_type  TEXT NOT NULL DEFAULT '',
	created_ts BIGINT NOT NULL,
	published  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE events (
	stream_pos    BIGINT PRIMARY KEY,
	event_id      TEXT NOT NULL UNIQUE,
	room_id       TEXT NOT NULL,
	type          TEXT NOT NULL,
	state_key     TEXT,
	sender        TEXT NOT NULL,
	json          TEXT NOT NULL,
	redacted_by   TEXT NOT NULL DEFAULT '',
	rel_type      TEXT NOT NULL DEFAULT '',
	relates_to    TEXT NOT NULL DEFAULT '',
	sender_device TEXT NOT NULL DEFAULT '',
	txn_id        TEXT NOT NULL DEFAULT '',
	membership    TEXT NOT NULL DEFAULT '',
	unsigned      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_room ON events (room_id, stream_pos);
CREATE INDEX events_state ON events (room_id, type, state_key, stream_pos) WHERE state_key IS NOT NULL;
CREATE INDEX events_rel ON events (relates_to, stream_pos) WHERE relates_to <> '';
CREATE INDEX events_txn ON events (sender, sender_device, txn_id) WHERE txn_id <> '';
CREATE TABLE current_state (
	room_id    TEXT NOT NULL,
	type       TEXT NOT NULL,
	state_key  TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	stream_pos BIGINT NOT NULL,
	PRIMARY KEY (room_id, type, state_key)
);
CREATE TABLE memberships (
	room_id    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	membership TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	stream_pos BIGINT NOT NULL,
	forgotten  BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE TABLE room_aliases (
	alias   TEXT PRIMARY KEY,
	room_id TEXT NOT NULL,
	creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);
CREATE TABLE account_data (
	user_id    TEXT NOT NULL,
	room_id    TEXT NOT NULL,
	type       TEXT NOT NULL,
	content    TEXT NOT NULL,
	stream_pos BIGINT NOT NULL,
	PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_pos ON account_data (user_id, stream_pos);
CREATE TABLE receipts (
	room_id    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	type       TEXT NOT NULL,
	thread_id  TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	ts         BIGINT NOT NULL,
	stream_pos BIGINT NOT NULL,
	PRIMARY KEY (room_id, user_id, type, thread_id)
);
CREATE INDEX receipts_pos ON receipts (room_id, stream_pos);
CREATE TABLE filters (
	user_id   TEXT NOT NULL,
	filter_id TEXT NOT NULL,
	json      TEXT NOT NULL,
	PRIMARY KEY (user_id, filter_id)
);
