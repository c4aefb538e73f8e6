CREATE TABLE sso_identities (
	idp_id     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	created_ts INTEGER NOT NULL,
	PRIMARY KEY (idp_id, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);
CREATE TABLE sso_used_ids (
	scope      TEXT NOT NULL,
	id         TEXT NOT NULL,
	expires_ts INTEGER NOT NULL,
	PRIMARY KEY (scope, id)
);
CREATE INDEX sso_used_ids_expiry ON sso_used_ids (expires_ts);
