-- MSC4140: the delay_id of a delayed event once sent, which its sender
-- sees in the event's unsigned data.
ALTER TABLE events ADD COLUMN delay_id TEXT NOT NULL DEFAULT '';
