CREATE TABLE device_keys (
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	key_json  TEXT NOT NULL,
	PRIMARY KEY (user_id, device_id)
);
-- seq is the upload order: keys are handed out oldest first (MSC4225).
CREATE TABLE one_time_keys (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	algorithm TEXT NOT NULL,
	key_id    TEXT NOT NULL,
	key_json  TEXT NOT NULL,
	UNIQUE (user_id, device_id, algorithm, key_id)
);
CREATE INDEX one_time_keys_claim ON one_time_keys (user_id, device_id, algorithm, seq);
CREATE TABLE fallback_keys (
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	algorithm TEXT NOT NULL,
	key_id    TEXT NOT NULL,
	key_json  TEXT NOT NULL,
	used      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, device_id, algorithm)
);
CREATE TABLE cross_signing_keys (
	user_id  TEXT NOT NULL,
	key_type TEXT NOT NULL,
	key_json TEXT NOT NULL,
	PRIMARY KEY (user_id, key_type)
);
CREATE TABLE key_signatures (
	target_user   TEXT NOT NULL,
	target_key    TEXT NOT NULL,
	signer_user   TEXT NOT NULL,
	signer_key_id TEXT NOT NULL,
	signature     TEXT NOT NULL,
	PRIMARY KEY (target_user, target_key, signer_user, signer_key_id)
);
CREATE TABLE device_list_changes (
	user_id    TEXT PRIMARY KEY,
	stream_pos INTEGER NOT NULL
);
CREATE INDEX device_list_changes_pos ON device_list_changes (stream_pos);
CREATE TABLE to_device (
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	stream_pos INTEGER NOT NULL,
	sender     TEXT NOT NULL,
	type       TEXT NOT NULL,
	content    TEXT NOT NULL,
	PRIMARY KEY (user_id, device_id, stream_pos)
);
CREATE TABLE to_device_txns (
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	txn_id     TEXT NOT NULL,
	body_hash  BLOB NOT NULL,
	created_ts INTEGER NOT NULL,
	PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX to_device_txns_created ON to_device_txns (created_ts);
CREATE TABLE stream_head (
	id         INTEGER PRIMARY KEY,
	stream_pos INTEGER NOT NULL
);
CREATE TABLE dehydrated_devices (
	user_id     TEXT PRIMARY KEY,
	device_id   TEXT NOT NULL,
	device_data TEXT NOT NULL
);
