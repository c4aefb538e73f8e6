-- The media repository. Content is stored once per SHA-256 (media_blobs);
-- media IDs and thumbnails point at blobs. The blob files themselves live
-- outside the database (DATA_DIR/media/ or an object store).
CREATE TABLE media_blobs (
	sha256     BYTEA PRIMARY KEY,
	size       BIGINT NOT NULL,
	created_ts BIGINT NOT NULL
);
CREATE TABLE media (
	media_id     TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	sha256       BYTEA REFERENCES media_blobs (sha256),
	size         BIGINT NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	upload_name  TEXT NOT NULL DEFAULT '',
	created_ts   BIGINT NOT NULL,
	uploaded_ts  BIGINT NOT NULL DEFAULT 0,
	expires_ts   BIGINT NOT NULL DEFAULT 0,
	referenced   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX media_user_id ON media (user_id);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_unreferenced ON media (created_ts) WHERE NOT referenced;
CREATE TABLE media_thumbnails (
	source_sha256 BYTEA NOT NULL REFERENCES media_blobs (sha256),
	width         BIGINT NOT NULL,
	height        BIGINT NOT NULL,
	method        TEXT NOT NULL,
	content_type  TEXT NOT NULL,
	sha256        BYTEA NOT NULL REFERENCES media_blobs (sha256),
	size          BIGINT NOT NULL,
	created_ts    BIGINT NOT NULL,
	PRIMARY KEY (source_sha256, width, height, method, content_type)
);
CREATE INDEX media_thumbnails_sha256 ON media_thumbnails (sha256);
