package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

const deviceCols = `user_id, device_id, display_name, token_hash, last_seen_ip, last_seen_ts, created_ts`

func scanDevice(r Row) (store.Device, error) {
	var d store.Device
	err := r.Scan(&d.UserID, &d.DeviceID, &d.DisplayName, &d.TokenHash, &d.LastSeenIP, &d.LastSeenTS, &d.CreatedTS)
	return d, err
}

func (s *Store) UpsertDevice(ctx context.Context, d store.Device) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (user_id, device_id) DO UPDATE SET token_hash = excluded.token_hash,
				last_seen_ip = excluded.last_seen_ip, last_seen_ts = excluded.last_seen_ts,
				display_name = CASE WHEN excluded.display_name = '' THEN devices.display_name ELSE excluded.display_name END`,
			d.UserID, d.DeviceID, d.DisplayName, d.TokenHash, d.LastSeenIP, d.LastSeenTS, d.CreatedTS)
		return err
	}))
}

func (s *Store) DeviceByToken(ctx context.Context, tokenHash []byte) (store.Device, error) {
	d, err := scanDevice(s.db.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE token_hash = $1`, tokenHash))
	return d, s.mapErr(err)
}

func (s *Store) DevicesByTokens(ctx context.Context, tokenHashes [][]byte) ([]store.Device, error) {
	var out []store.Device
	err := chunked(tokenHashes, func(part []any, in string) error {
		rows, err := s.db.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE token_hash IN (`+in+`)`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, s.mapErr(err)
}

func (s *Store) Device(ctx context.Context, userID, deviceID string) (store.Device, error) {
	d, err := scanDevice(s.db.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID))
	return d, s.mapErr(err)
}

func (s *Store) Devices(ctx context.Context, userID string) ([]store.Device, error) {
	rows, err := s.db.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE user_id = $1 ORDER BY device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) SetDeviceName(ctx context.Context, userID, deviceID, name string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`, userID, deviceID, name)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) TouchDevice(ctx context.Context, userID, deviceID, ip string, ts int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `UPDATE devices SET last_seen_ip = $3, last_seen_ts = $4 WHERE user_id = $1 AND device_id = $2`, userID, deviceID, ip, ts)
		return err
	}))
}

func (s *Store) DeleteDevices(ctx context.Context, userID string, ids []string, keep string) ([]string, error) {
	var deleted []string
	err := s.db.Tx(ctx, func(q Querier) error {
		deleted = deleted[:0]
		if ids == nil {
			rows, err := q.Query(ctx, `SELECT device_id FROM devices WHERE user_id = $1 AND device_id <> $2`, userID, keep)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for _, id := range ids {
			n, err := q.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, id)
			if err != nil {
				return err
			}
			// A logged-out device gets no more pushes, and its refresh
			// tokens go with it.
			if err := deleteDeviceSessions(ctx, q, userID, id); err != nil {
				return err
			}
			if n > 0 {
				deleted = append(deleted, id)
				if err := deleteDeviceData(ctx, q, userID, id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	s.keyCounts.changed(userID)
	return deleted, s.mapErr(err)
}

func (s *Store) CreateLoginToken(ctx context.Context, tokenHash []byte, userID string, expiresTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`, tokenHash, userID, expiresTS)
		return err
	}))
}

func (s *Store) ConsumeLoginToken(ctx context.Context, tokenHash []byte, nowTS int64) (string, error) {
	var userID string
	var exp int64
	err := s.db.Tx(ctx, func(q Querier) error {
		if err := q.QueryRow(ctx, `DELETE FROM login_tokens WHERE token_hash = $1 RETURNING user_id, expires_ts`, tokenHash).Scan(&userID, &exp); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `DELETE FROM login_tokens WHERE expires_ts < $1`, nowTS)
		return err
	})
	if err != nil {
		return "", s.mapErr(err)
	}
	if exp < nowTS {
		return "", errNotFound
	}
	return userID, nil
}
