package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.RefreshTokens = (*Store)(nil)

func (s *Store) AddRefreshToken(ctx context.Context, r store.RefreshToken) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2`, r.UserID, r.DeviceID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, device_id, access_hash, access_expires_ts) VALUES ($1, $2, $3, $4, $5)`,
			r.TokenHash, r.UserID, r.DeviceID, r.AccessHash, r.AccessExpiresTS)
		return err
	}))
}

func (s *Store) RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken) (store.RefreshToken, error) {
	err := s.db.Tx(ctx, func(q Querier) error {
		var user, device string
		if err := q.QueryRow(ctx, `SELECT user_id, device_id FROM refresh_tokens WHERE token_hash = $1`, oldHash).Scan(&user, &device); err != nil {
			return err
		}
		// The device must still hold an access token of this refresh
		// chain: a new login or a logout ends the chain.
		n, err := q.Exec(ctx, `UPDATE devices SET token_hash = $3 WHERE user_id = $1 AND device_id = $2
			AND token_hash IN (SELECT access_hash FROM refresh_tokens WHERE user_id = $1 AND device_id = $2)`, user, device, next.AccessHash)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2`, user, device); err != nil {
				return err
			}
			return errNotFound
		}
		if _, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2 AND token_hash <> $3`, user, device, oldHash); err != nil {
			return err
		}
		next.UserID, next.DeviceID = user, device
		_, err = q.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, device_id, access_hash, access_expires_ts) VALUES ($1, $2, $3, $4, $5)`,
			next.TokenHash, user, device, next.AccessHash, next.AccessExpiresTS)
		return err
	})
	return next, s.mapErr(err)
}

func (s *Store) UseAccessToken(ctx context.Context, accessHash []byte) (int64, error) {
	var user, device string
	var exp, others int64
	err := s.db.QueryRow(ctx, `SELECT user_id, device_id, access_expires_ts,
			(SELECT COUNT(*) FROM refresh_tokens o WHERE o.user_id = r.user_id AND o.device_id = r.device_id AND o.access_hash <> r.access_hash)
		FROM refresh_tokens r WHERE access_hash = $1`, accessHash).Scan(&user, &device, &exp, &others)
	if err != nil {
		return 0, s.mapErr(err)
	}
	if others > 0 {
		if err := s.db.Tx(ctx, func(q Querier) error {
			_, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2 AND access_hash <> $3`, user, device, accessHash)
			return err
		}); err != nil {
			return 0, s.mapErr(err)
		}
	}
	return exp, nil
}
