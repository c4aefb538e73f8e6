-- Shared rooms (federation): a room's forward extremities, the events
-- with no successor yet that a new event names as its prev_events.
CREATE TABLE room_extremities (
	room_id  TEXT NOT NULL,
	event_id TEXT NOT NULL,
	PRIMARY KEY (room_id, event_id)
);
-- Events kept outside the timeline, which /sync and /messages never read:
-- outliers (the state and auth chain a join brought), rejected and
-- soft-failed events. status: outlier, rejected, soft_failed.
CREATE TABLE room_outliers (
	event_id TEXT PRIMARY KEY,
	room_id  TEXT NOT NULL,
	status   TEXT NOT NULL,
	json     TEXT NOT NULL
);
CREATE INDEX room_outliers_room ON room_outliers (room_id);
