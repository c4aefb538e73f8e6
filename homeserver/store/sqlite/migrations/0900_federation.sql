-- This server's verify keys: the current one (expired_ts 0) and the old
-- ones /_matrix/key/v2/server lists in old_verify_keys.
CREATE TABLE federation_own_keys (
	key_id     TEXT PRIMARY KEY,
	public_key BLOB NOT NULL,
	created_ts INTEGER NOT NULL,
	expired_ts INTEGER NOT NULL DEFAULT 0
);
-- Other servers' verify keys, as fetched directly or through a notary.
CREATE TABLE federation_server_keys (
	server_name    TEXT NOT NULL,
	key_id         TEXT NOT NULL,
	public_key     BLOB NOT NULL,
	valid_until_ts INTEGER NOT NULL,
	expired_ts     INTEGER NOT NULL DEFAULT 0,
	fetched_ts     INTEGER NOT NULL,
	PRIMARY KEY (server_name, key_id)
);
-- The outbound queue: EDUs and PDUs per destination, in order. txn_id is
-- set once an item is part of a transaction sent (and maybe lost).
CREATE TABLE federation_outbox (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	destination TEXT NOT NULL,
	kind        TEXT NOT NULL,
	body        TEXT NOT NULL,
	created_ts  INTEGER NOT NULL,
	txn_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX federation_outbox_dest ON federation_outbox (destination, id);
CREATE TABLE federation_destinations (
	destination TEXT PRIMARY KEY,
	failures    INTEGER NOT NULL,
	retry_ts    INTEGER NOT NULL
);
-- Answers to inbound transactions, so a replay is answered the same.
CREATE TABLE federation_inbound_txns (
	origin    TEXT NOT NULL,
	txn_id    TEXT NOT NULL,
	answer    TEXT NOT NULL,
	ts        INTEGER NOT NULL,
	PRIMARY KEY (origin, txn_id)
);
CREATE INDEX federation_inbound_txns_ts ON federation_inbound_txns (ts);
