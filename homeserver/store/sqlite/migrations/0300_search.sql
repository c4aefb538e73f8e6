-- Full-text search of room events (POST /search): one row per event with
-- searchable text, its rowid the event's stream position, the text in the
-- column of its key (body, name, topic); the room comes from events.
-- Contentless: the text is kept in events only.
-- The rule (which events, which key) is the one sqlstore.searchable
-- applies at write time.
CREATE VIRTUAL TABLE event_search USING fts5(body, name, topic,
	content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO event_search (rowid, body)
	SELECT stream_pos, json_extract(json, '$.content.body') FROM events
	WHERE type = 'm.room.message' AND state_key IS NULL AND redacted_by = ''
		AND json_type(json, '$.content.body') = 'text' AND json_extract(json, '$.content.body') <> '';
INSERT INTO event_search (rowid, name)
	SELECT stream_pos, json_extract(json, '$.content.name') FROM events
	WHERE type = 'm.room.name' AND state_key = '' AND redacted_by = ''
		AND json_type(json, '$.content.name') = 'text' AND json_extract(json, '$.content.name') <> '';
INSERT INTO event_search (rowid, topic)
	SELECT stream_pos, json_extract(json, '$.content.topic') FROM events
	WHERE type = 'm.room.topic' AND state_key = '' AND redacted_by = ''
		AND json_type(json, '$.content.topic') = 'text' AND json_extract(json, '$.content.topic') <> '';
