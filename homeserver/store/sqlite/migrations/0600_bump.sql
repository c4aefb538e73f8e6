-- Sliding sync orders rooms by their last "proper" activity (MSC4186
-- bump_stamp): the newest event of one of these types. The list of types
-- must match store.BumpTypes and sqlstore's query word for word, so the
-- planner can use this partial index.
CREATE INDEX events_bump ON events (room_id, stream_pos)
	WHERE type IN ('m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start', 'm.beacon_info');
