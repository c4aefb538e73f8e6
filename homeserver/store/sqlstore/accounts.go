package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

var (
	errNotFound = store.ErrNotFound
	errExists   = store.ErrExists
)

var _ store.Store = (*Store)(nil)

func (s *Store) CreateAccount(ctx context.Context, a store.Account, displayName string) error {
	defer s.memo.profileChanged(a.UserID)
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO accounts (localpart, user_id, password_hash, admin, deactivated, created_ts)
			VALUES ($1, $2, $3, $4, $5, $6)`, a.Localpart, a.UserID, a.PasswordHash, a.Admin, a.Deactivated, a.CreatedTS); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO profiles (user_id, displayname, avatar_url) VALUES ($1, $2, '')
			ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, avatar_url = ''`, a.UserID, displayName)
		return err
	}))
}

func (s *Store) Account(ctx context.Context, localpart string) (store.Account, error) {
	var a store.Account
	err := s.db.QueryRow(ctx, `SELECT localpart, user_id, password_hash, admin, deactivated, created_ts
		FROM accounts WHERE localpart = $1`, localpart).
		Scan(&a.Localpart, &a.UserID, &a.PasswordHash, &a.Admin, &a.Deactivated, &a.CreatedTS)
	return a, s.mapErr(err)
}

func (s *Store) SetPasswordHash(ctx context.Context, localpart, hash string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE accounts SET password_hash = $2 WHERE localpart = $1 AND NOT deactivated`, localpart, hash)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) DeactivateAccount(ctx context.Context, localpart string) error {
	var userID string
	defer func() { s.memo.profileChanged(userID); s.keyCounts.changed(userID) }()
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if err := q.QueryRow(ctx, `SELECT user_id FROM accounts WHERE localpart = $1`, localpart).Scan(&userID); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE accounts SET deactivated = $2, password_hash = '' WHERE localpart = $1`, localpart, true); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE profiles SET displayname = '', avatar_url = '' WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if err := deleteUserKeyBackups(ctx, q, userID); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM devices WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if err := deleteUserKeys(ctx, q, userID); err != nil {
			return err
		}
		if err := deleteDeviceSessions(ctx, q, userID, ""); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `DELETE FROM login_tokens WHERE user_id = $1`, userID)
		return err
	}))
}

// Profile is read on every unread count (push rules match the display
// name), so answers are kept in the memo until a write changes them.
func (s *Store) Profile(ctx context.Context, userID string) (store.Profile, error) {
	e, ok, gen := s.memo.profile(userID)
	if ok {
		if !e.found {
			return store.Profile{}, errNotFound
		}
		return e.p, nil
	}
	var p store.Profile
	err := s.mapErr(s.db.QueryRow(ctx, `SELECT displayname, avatar_url FROM profiles WHERE user_id = $1`, userID).
		Scan(&p.DisplayName, &p.AvatarURL))
	if err == nil || errors.Is(err, errNotFound) {
		s.memo.storeProfile(userID, profileEntry{p, err == nil, time.Now()}, gen)
	}
	return p, err
}

func (s *Store) SetDisplayName(ctx context.Context, userID, name string) error {
	return s.updateProfile(ctx, `UPDATE profiles SET displayname = $2 WHERE user_id = $1`, userID, name)
}

func (s *Store) SetAvatarURL(ctx context.Context, userID, url string) error {
	return s.updateProfile(ctx, `UPDATE profiles SET avatar_url = $2 WHERE user_id = $1`, userID, url)
}

func (s *Store) updateProfile(ctx context.Context, q, userID, v string) error {
	defer s.memo.profileChanged(userID)
	return s.mapErr(s.db.Tx(ctx, func(tx Querier) error {
		n, err := tx.Exec(ctx, q, userID, v)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) DeactivatedMembers(ctx context.Context) ([]string, error) {
	return s.queryStrings(ctx, `SELECT DISTINCT m.user_id FROM memberships m JOIN accounts a ON a.user_id = m.user_id
		WHERE a.deactivated AND m.membership IN ('join', 'invite', 'knock') ORDER BY m.user_id`)
}
