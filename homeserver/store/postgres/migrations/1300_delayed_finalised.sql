-- MSC4140: delayed events once sent or cancelled ("finalised"), kept for
-- GET /delayed_events and for answering a retried action; 7 days or
-- 1,000 per user, whichever is less.
CREATE TABLE delayed_events_finalised (
	delay_id      TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	room_id       TEXT NOT NULL,
	type          TEXT NOT NULL,
	state_key     TEXT,
	content       TEXT NOT NULL,
	delay_ms      BIGINT NOT NULL,
	running_since BIGINT NOT NULL,
	finalised_ts  BIGINT NOT NULL,
	outcome       TEXT NOT NULL,
	reason        TEXT NOT NULL,
	event_id      TEXT NOT NULL DEFAULT '',
	error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX delayed_events_finalised_user ON delayed_events_finalised (user_id, finalised_ts);
