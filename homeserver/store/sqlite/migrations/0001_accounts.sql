CREATE TABLE accounts (
	localpart     TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL DEFAULT '',
	admin         INTEGER NOT NULL DEFAULT 0,
	deactivated   INTEGER NOT NULL DEFAULT 0,
	created_ts    INTEGER NOT NULL
);
CREATE TABLE profiles (
	user_id     TEXT PRIMARY KEY,
	displayname TEXT NOT NULL DEFAULT '',
	avatar_url  TEXT NOT NULL DEFAULT ''
);
CREATE TABLE devices (
	user_id      TEXT NOT NULL,
	device_id    TEXT NOT NULL,
	display_name TEXT NOT NULL DEFAULT '',
	token_hash   BLOB NOT NULL UNIQUE,
	last_seen_ip TEXT NOT NULL DEFAULT '',
	last_seen_ts INTEGER NOT NULL DEFAULT 0,
	created_ts   INTEGER NOT NULL,
	PRIMARY KEY (user_id, device_id)
);
CREATE TABLE login_tokens (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL,
	expires_ts INTEGER NOT NULL
);
