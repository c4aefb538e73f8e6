-- Thread replies by room, for listing a room's threads.
CREATE INDEX events_thread ON events (room_id, stream_pos) WHERE rel_type = 'm.thread';
