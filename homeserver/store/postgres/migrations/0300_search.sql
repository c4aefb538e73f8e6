-- Full-text search of room events (POST /search): one row per event with
-- searchable text, keyed by the event's stream position. The rule (which
-- events, which key) is the one sqlstore.searchable applies at write time.
CREATE TABLE event_search (
	stream_pos BIGINT PRIMARY KEY,
	room_id    TEXT NOT NULL,
	field      TEXT NOT NULL,
	vec        TSVECTOR NOT NULL
);
INSERT INTO event_search (stream_pos, room_id, field, vec)
	SELECT stream_pos, room_id, 'content.body', to_tsvector('simple', json::jsonb -> 'content' ->> 'body') FROM events
	WHERE type = 'm.room.message' AND state_key IS NULL AND redacted_by = ''
		AND jsonb_typeof(json::jsonb -> 'content' -> 'body') = 'string' AND json::jsonb -> 'content' ->> 'body' <> '';
INSERT INTO event_search (stream_pos, room_id, field, vec)
	SELECT stream_pos, room_id, 'content.name', to_tsvector('simple', json::jsonb -> 'content' ->> 'name') FROM events
	WHERE type = 'm.room.name' AND state_key = '' AND redacted_by = ''
		AND jsonb_typeof(json::jsonb -> 'content' -> 'name') = 'string' AND json::jsonb -> 'content' ->> 'name' <> '';
INSERT INTO event_search (stream_pos, room_id, field, vec)
	SELECT stream_pos, room_id, 'content.topic', to_tsvector('simple', json::jsonb -> 'content' ->> 'topic') FROM events
	WHERE type = 'm.room.topic' AND state_key = '' AND redacted_by = ''
		AND jsonb_typeof(json::jsonb -> 'content' -> 'topic') = 'string' AND json::jsonb -> 'content' ->> 'topic' <> '';
-- fastupdate off: a pending list of unmerged entries made every search
-- scan it (20 ms for a rare word after a burst of writes, measured).
CREATE INDEX event_search_vec ON event_search USING GIN (vec) WITH (fastupdate = off);
