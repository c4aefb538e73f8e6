-- Who may fetch media. restricted: uploaded while the "authenticated media
-- freeze" was on, so served only through /_matrix/client/v1/media; media
-- from before keeps being served on the legacy endpoints.
ALTER TABLE media ADD COLUMN restricted BOOLEAN NOT NULL DEFAULT FALSE;

-- media_refs: which stored events reference which mxc:// URIs, for
-- media.restrict_to_rooms (media is served to those who may see one of
-- them). Written as events are stored; filled here from the events
-- already stored.
CREATE TABLE media_refs (
	mxc      TEXT NOT NULL,
	room_id  TEXT NOT NULL,
	event_id TEXT NOT NULL,
	PRIMARY KEY (mxc, event_id)
);
INSERT INTO media_refs (mxc, room_id, event_id)
SELECT u, room_id, event_id FROM (
	SELECT json::json #>> '{content,url}' AS u, room_id, event_id FROM events
	UNION ALL SELECT json::json #>> '{content,avatar_url}', room_id, event_id FROM events
	UNION ALL SELECT json::json #>> '{content,file,url}', room_id, event_id FROM events
	UNION ALL SELECT json::json #>> '{content,info,thumbnail_url}', room_id, event_id FROM events
	UNION ALL SELECT json::json #>> '{content,info,thumbnail_file,url}', room_id, event_id FROM events
) AS refs WHERE u LIKE 'mxc://%'
ON CONFLICT (mxc, event_id) DO NOTHING;
