package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

func (s *Store) CreateLDAPAccount(ctx context.Context, a store.Account, displayName string, u store.LDAPUser) error {
	defer s.memo.profileChanged(a.UserID)
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO accounts (localpart, user_id, password_hash, admin, deactivated, created_ts)
			VALUES ($1, $2, $3, $4, $5, $6)`, a.Localpart, a.UserID, a.PasswordHash, a.Admin, a.Deactivated, a.CreatedTS); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO profiles (user_id, displayname, avatar_url) VALUES ($1, $2, '')
			ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, avatar_url = ''`, a.UserID, displayName); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO ldap_users (entry_id, localpart, dn, display_name, mail, missing_since_ts, updated_ts)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.EntryID, a.Localpart, u.DN, u.DisplayName, u.Mail, u.MissingSinceTS, u.UpdatedTS)
		return err
	}))
}

const ldapUserCols = `entry_id, localpart, dn, display_name, mail, missing_since_ts, updated_ts`

func scanLDAPUser(r Row) (store.LDAPUser, error) {
	var u store.LDAPUser
	err := r.Scan(&u.EntryID, &u.Localpart, &u.DN, &u.DisplayName, &u.Mail, &u.MissingSinceTS, &u.UpdatedTS)
	return u, err
}

func (s *Store) LDAPUserByEntry(ctx context.Context, entryID string) (store.LDAPUser, error) {
	u, err := scanLDAPUser(s.db.QueryRow(ctx, `SELECT `+ldapUserCols+` FROM ldap_users WHERE entry_id = $1`, entryID))
	return u, s.mapErr(err)
}

func (s *Store) LDAPUserByLocalpart(ctx context.Context, localpart string) (store.LDAPUser, error) {
	u, err := scanLDAPUser(s.db.QueryRow(ctx, `SELECT `+ldapUserCols+` FROM ldap_users WHERE localpart = $1`, localpart))
	return u, s.mapErr(err)
}

func (s *Store) LDAPUsers(ctx context.Context) ([]store.LDAPUser, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ldapUserCols+` FROM ldap_users ORDER BY localpart`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LDAPUser
	for rows.Next() {
		u, err := scanLDAPUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *Store) UpdateLDAPUser(ctx context.Context, u store.LDAPUser) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE ldap_users SET dn = $2, display_name = $3, mail = $4, updated_ts = $5 WHERE entry_id = $1`,
			u.EntryID, u.DN, u.DisplayName, u.Mail, u.UpdatedTS)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) SetLDAPMissing(ctx context.Context, entryID string, sinceTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE ldap_users SET missing_since_ts = $2 WHERE entry_id = $1`, entryID, sinceTS)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) LDAPMemberships(ctx context.Context, roomID string) ([]store.LDAPMembership, error) {
	rows, err := s.db.Query(ctx, `SELECT room_id, user_id, grp, added_ts FROM ldap_memberships WHERE room_id = $1 ORDER BY user_id`, roomID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LDAPMembership
	for rows.Next() {
		var m store.LDAPMembership
		if err := rows.Scan(&m.RoomID, &m.UserID, &m.Group, &m.AddedTS); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Store) PutLDAPMemberships(ctx context.Context, ms ...store.LDAPMembership) error {
	if len(ms) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, m := range ms {
			if _, err := q.Exec(ctx, `INSERT INTO ldap_memberships (room_id, user_id, grp, added_ts) VALUES ($1, $2, $3, $4)
				ON CONFLICT (room_id, user_id) DO UPDATE SET grp = excluded.grp, added_ts = excluded.added_ts`,
				m.RoomID, m.UserID, m.Group, m.AddedTS); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) DeleteLDAPMemberships(ctx context.Context, roomID string, userIDs ...string) error {
	if len(userIDs) == 0 {
		return nil
	}
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		for _, u := range userIDs {
			if _, err := q.Exec(ctx, `DELETE FROM ldap_memberships WHERE room_id = $1 AND user_id = $2`, roomID, u); err != nil {
				return err
			}
		}
		return nil
	}))
}
