-- Accounts made from LDAP entries: the entry's stable ID (entryUUID or DN)
-- names the account, so a renamed entry keeps its Matrix user.
CREATE TABLE ldap_users (
	entry_id         TEXT PRIMARY KEY,
	localpart        TEXT NOT NULL UNIQUE,
	dn               TEXT NOT NULL,
	display_name     TEXT NOT NULL,
	mail             TEXT NOT NULL,
	missing_since_ts INTEGER NOT NULL,
	updated_ts       INTEGER NOT NULL
);
-- Room memberships the LDAP group sync made (invites and joins), so it
-- removes only those and never members added by hand.
CREATE TABLE ldap_memberships (
	room_id  TEXT NOT NULL,
	user_id  TEXT NOT NULL,
	grp      TEXT NOT NULL,
	added_ts INTEGER NOT NULL,
	PRIMARY KEY (room_id, user_id)
);
