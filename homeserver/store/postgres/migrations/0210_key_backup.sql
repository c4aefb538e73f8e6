-- Server-side key backups (spec "Server-side key backups").
-- key_backup_users hands out version numbers (never reused, so a stale
-- client cannot write into a newer backup) and is the row every backup
-- write of a user locks first.
CREATE TABLE key_backup_users (
	user_id      TEXT PRIMARY KEY,
	last_version BIGINT NOT NULL
);
CREATE TABLE key_backup_versions (
	user_id   TEXT NOT NULL,
	version   BIGINT NOT NULL,
	algorithm TEXT NOT NULL,
	auth_data TEXT NOT NULL,
	etag      BIGINT NOT NULL DEFAULT 0,
	key_count BIGINT NOT NULL DEFAULT 0,
	deleted   BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (user_id, version)
);
CREATE TABLE key_backup_keys (
	user_id             TEXT NOT NULL,
	version             BIGINT NOT NULL,
	room_id             TEXT NOT NULL,
	session_id          TEXT NOT NULL,
	first_message_index BIGINT NOT NULL,
	forwarded_count     BIGINT NOT NULL,
	is_verified         BOOLEAN NOT NULL,
	session_data        TEXT NOT NULL,
	PRIMARY KEY (user_id, version, room_id, session_id)
);
