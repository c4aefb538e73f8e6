-- The room state before and after each timeline event (federation's state
-- groups). A snapshot is a whole state (parent NULL) or the changes to
-- its parent's; depth counts the parents above it, size the tuples it
-- holds (an upper bound). An entry with event_id '' takes the tuple out.
CREATE TABLE state_snapshots (
	id      INTEGER PRIMARY KEY,
	room_id TEXT NOT NULL,
	parent  INTEGER,
	depth   INTEGER NOT NULL,
	size    INTEGER NOT NULL
);
CREATE TABLE state_snapshot_entries (
	snapshot  INTEGER NOT NULL,
	type      TEXT NOT NULL,
	state_key TEXT NOT NULL,
	event_id  TEXT NOT NULL,
	PRIMARY KEY (snapshot, type, state_key)
);
CREATE TABLE event_state (
	event_id     TEXT PRIMARY KEY,
	state_before INTEGER NOT NULL,
	state_after  INTEGER NOT NULL
);
-- The snapshot of the room's current state (NULL: not kept yet, for a
-- room stored before snapshots were: made from current_state when needed).
ALTER TABLE rooms ADD COLUMN state_snapshot INTEGER;
