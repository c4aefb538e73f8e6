package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Delayed = (*Store)(nil)

const delayedCols = `delay_id, user_id, device_id, room_id, type, state_key, content, delay_ms, running_since, fire_ts`

func (s *Store) queryDelayed(ctx context.Context, q string, args ...any) ([]store.DelayedEvent, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DelayedEvent
	for rows.Next() {
		var d store.DelayedEvent
		var c string
		if err := rows.Scan(&d.DelayID, &d.UserID, &d.DeviceID, &d.RoomID, &d.Type, &d.StateKey, &c, &d.DelayMS, &d.RunningSince, &d.FireTS); err != nil {
			return nil, err
		}
		d.Content = []byte(c)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) AddDelayed(ctx context.Context, d store.DelayedEvent) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO delayed_events (`+delayedCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			d.DelayID, d.UserID, d.DeviceID, d.RoomID, d.Type, d.StateKey, string(d.Content), d.DelayMS, d.RunningSince, d.FireTS)
		return err
	}))
}

func (s *Store) DelayedEvent(ctx context.Context, delayID string) (store.DelayedEvent, error) {
	out, err := s.queryDelayed(ctx, `SELECT `+delayedCols+` FROM delayed_events WHERE delay_id = $1`, delayID)
	if err != nil {
		return store.DelayedEvent{}, err
	}
	if len(out) == 0 {
		return store.DelayedEvent{}, errNotFound
	}
	return out[0], nil
}

func (s *Store) UserDelayed(ctx context.Context, userID string) ([]store.DelayedEvent, error) {
	return s.queryDelayed(ctx, `SELECT `+delayedCols+` FROM delayed_events WHERE user_id = $1 ORDER BY fire_ts, delay_id`, userID)
}

func (s *Store) CountUserDelayed(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM delayed_events WHERE user_id = $1`, userID).Scan(&n)
	return n, s.mapErr(err)
}

func (s *Store) NextDelayed(ctx context.Context, limit int) ([]store.DelayedEvent, error) {
	return s.queryDelayed(ctx, `SELECT `+delayedCols+` FROM delayed_events ORDER BY fire_ts, delay_id LIMIT $1`, limit)
}

func (s *Store) RestartDelayed(ctx context.Context, delayID string, runningSince, fireTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE delayed_events SET running_since = $2, fire_ts = $3 WHERE delay_id = $1`, delayID, runningSince, fireTS)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) DeleteDelayed(ctx context.Context, delayID string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `DELETE FROM delayed_events WHERE delay_id = $1`, delayID)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

const finalisedCols = `delay_id, user_id, device_id, room_id, type, state_key, content, delay_ms, running_since, finalised_ts, outcome, reason, event_id, error`

func (s *Store) FinaliseDelayed(ctx context.Context, delayID, outcome, reason string, finalisedTS int64) (store.DelayedEvent, error) {
	var d store.DelayedEvent
	err := s.db.Tx(ctx, func(q Querier) error {
		var c string
		err := q.QueryRow(ctx, `SELECT `+delayedCols+` FROM delayed_events WHERE delay_id = $1`, delayID).Scan(
			&d.DelayID, &d.UserID, &d.DeviceID, &d.RoomID, &d.Type, &d.StateKey, &c, &d.DelayMS, &d.RunningSince, &d.FireTS)
		if err != nil {
			return err
		}
		d.Content = []byte(c)
		if n, err := q.Exec(ctx, `DELETE FROM delayed_events WHERE delay_id = $1`, delayID); err != nil {
			return err
		} else if n == 0 {
			return errNotFound
		}
		if _, err := q.Exec(ctx, `INSERT INTO delayed_events_finalised (`+finalisedCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '', '')`,
			d.DelayID, d.UserID, d.DeviceID, d.RoomID, d.Type, d.StateKey, c, d.DelayMS, d.RunningSince, finalisedTS, outcome, reason); err != nil {
			return err
		}
		// Retention: 7 days, and the user's newest 1,000.
		if _, err := q.Exec(ctx, `DELETE FROM delayed_events_finalised WHERE user_id = $1 AND finalised_ts < $2`,
			d.UserID, finalisedTS-store.FinalisedRetention); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `DELETE FROM delayed_events_finalised WHERE user_id = $1 AND delay_id NOT IN (
			SELECT delay_id FROM delayed_events_finalised WHERE user_id = $1 ORDER BY finalised_ts DESC, delay_id DESC LIMIT $2)`,
			d.UserID, store.FinalisedPerUser)
		return err
	})
	if err != nil {
		return store.DelayedEvent{}, s.mapErr(err)
	}
	return d, nil
}

func (s *Store) SetFinalisedResult(ctx context.Context, delayID, outcome, eventID string, errJSON []byte) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE delayed_events_finalised SET outcome = $2, event_id = $3, error = $4 WHERE delay_id = $1`,
			delayID, outcome, eventID, string(errJSON))
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) RescheduleDelayed(ctx context.Context, d store.DelayedEvent) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM delayed_events_finalised WHERE delay_id = $1`, d.DelayID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO delayed_events (`+delayedCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			d.DelayID, d.UserID, d.DeviceID, d.RoomID, d.Type, d.StateKey, string(d.Content), d.DelayMS, d.RunningSince, d.FireTS)
		return err
	}))
}

func (s *Store) queryFinalised(ctx context.Context, q string, args ...any) ([]store.FinalisedDelayed, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []store.FinalisedDelayed
	for rows.Next() {
		var f store.FinalisedDelayed
		var c, e string
		if err := rows.Scan(&f.DelayID, &f.UserID, &f.DeviceID, &f.RoomID, &f.Type, &f.StateKey, &c, &f.DelayMS, &f.RunningSince,
			&f.FinalisedTS, &f.Outcome, &f.Reason, &f.EventID, &e); err != nil {
			return nil, err
		}
		f.Content = []byte(c)
		f.FireTS = f.RunningSince + f.DelayMS
		if e != "" {
			f.Error = []byte(e)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *Store) FinalisedDelayed(ctx context.Context, delayID string) (store.FinalisedDelayed, error) {
	out, err := s.queryFinalised(ctx, `SELECT `+finalisedCols+` FROM delayed_events_finalised WHERE delay_id = $1`, delayID)
	if err != nil {
		return store.FinalisedDelayed{}, err
	}
	if len(out) == 0 {
		return store.FinalisedDelayed{}, errNotFound
	}
	return out[0], nil
}

func (s *Store) UserFinalisedDelayed(ctx context.Context, userID string) ([]store.FinalisedDelayed, error) {
	return s.queryFinalised(ctx, `SELECT `+finalisedCols+` FROM delayed_events_finalised WHERE user_id = $1 ORDER BY finalised_ts, delay_id`, userID)
}

func (s *Store) CreateOpenIDToken(ctx context.Context, tokenHash []byte, userID string, expiresTS int64) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM openid_tokens WHERE expires_ts < $1`, expiresTS-24*3600*1000); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`, tokenHash, userID, expiresTS)
		return err
	}))
}

func (s *Store) OpenIDToken(ctx context.Context, tokenHash []byte, nowTS int64) (string, error) {
	var userID string
	var exp int64
	err := s.db.QueryRow(ctx, `SELECT user_id, expires_ts FROM openid_tokens WHERE token_hash = $1`, tokenHash).Scan(&userID, &exp)
	if err != nil {
		return "", s.mapErr(err)
	}
	if exp < nowTS {
		return "", errNotFound
	}
	return userID, nil
}
