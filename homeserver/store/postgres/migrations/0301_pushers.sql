-- Users' pushers (POST /pushers/set): one per user, app ID and push key.
CREATE TABLE pushers (
	user_id             TEXT NOT NULL,
	kind                TEXT NOT NULL,
	app_id              TEXT NOT NULL,
	pushkey             TEXT NOT NULL,
	app_display_name    TEXT NOT NULL,
	device_display_name TEXT NOT NULL,
	profile_tag         TEXT NOT NULL,
	lang                TEXT NOT NULL,
	data                TEXT NOT NULL,
	device_id           TEXT NOT NULL,
	created_ts          BIGINT NOT NULL,
	PRIMARY KEY (user_id, app_id, pushkey)
);
CREATE INDEX pushers_key ON pushers (app_id, pushkey);
