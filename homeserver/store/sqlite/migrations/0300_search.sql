-- Full-text search of room events (POST /search): one row per event with
-- searchable text, keyed by the event's stream position. The rule (which
-- events, which key) is the one sqlstore.searchable applies at write time.
CREATE VIRTUAL TABLE event_search USING fts5(field UNINDEXED, value, tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO event_search (rowid, field, value)
	SELECT stream_pos, 'content.body', json_extract(json, '$.content.body') FROM events
	WHERE type = 'm.room.message' AND state_key IS NULL AND redacted_by = ''
		AND json_type(json, '$.content.body') = 'text' AND json_extract(json, '$.content.body') <> '';
INSERT INTO event_search (rowid, field, value)
	SELECT stream_pos, 'content.name', json_extract(json, '$.content.name') FROM events
	WHERE type = 'm.room.name' AND state_key = '' AND redacted_by = ''
		AND json_type(json, '$.content.name') = 'text' AND json_extract(json, '$.content.name') <> '';
INSERT INTO event_search (rowid, field, value)
	SELECT stream_pos, 'content.topic', json_extract(json, '$.content.topic') FROM events
	WHERE type = 'm.room.topic' AND state_key = '' AND redacted_by = ''
		AND json_type(json, '$.content.topic') = 'text' AND json_extract(json, '$.content.topic') <> '';
