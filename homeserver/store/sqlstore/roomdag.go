package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.RoomDAG = (*Store)(nil)

func (s *Store) Extremities(ctx context.Context, roomID string) ([]string, error) {
	return s.queryStrings(ctx, `SELECT event_id FROM room_extremities WHERE room_id = $1 ORDER BY event_id`, roomID)
}

func (s *Store) Outlier(ctx context.Context, eventID string) (store.OutlierRow, error) {
	var o store.OutlierRow
	var js string
	err := s.db.QueryRow(ctx, `SELECT event_id, room_id, status, json FROM room_outliers WHERE event_id = $1`, eventID).
		Scan(&o.EventID, &o.RoomID, &o.Status, &js)
	o.JSON = []byte(js)
	return o, s.mapErr(err)
}

func (s *Store) PutOutliers(ctx context.Context, rows []store.OutlierRow) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error { return s.putOutliers(ctx, q, rows) }))
}

func (s *Store) putOutliers(ctx context.Context, q Querier, rows []store.OutlierRow) error {
	snaps := snapshotWriters{}
	for i := range rows {
		o := &rows[i]
		n, err := q.Exec(ctx, `INSERT INTO room_outliers (event_id, room_id, status, json)
			SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM events WHERE event_id = $1)
			ON CONFLICT (event_id) DO NOTHING`, o.EventID, o.RoomID, o.Status, string(o.JSON))
		if err != nil {
			return err
		}
		if n > 0 && o.KeepState {
			if err := snaps.of(s, q, o.RoomID).outlier(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) CreateRoom(ctx context.Context, r store.Room) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO rooms (room_id, version, creator, room_type, created_ts, published)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_id) DO NOTHING`,
			r.RoomID, r.Version, r.Creator, r.RoomType, r.CreatedTS, r.Published)
		return err
	}))
}

// persistDAG writes a batch's extremities, outliers and resolved state,
// inside PersistEvents' transaction, after its events. A timeline event
// leaves the outliers.
func (s *Store) persistDAG(ctx context.Context, q Querier, b *store.EventBatch) error {
	for _, e := range b.Events {
		if _, err := q.Exec(ctx, `DELETE FROM room_outliers WHERE event_id = $1`, e.EventID); err != nil {
			return err
		}
	}
	if err := s.putOutliers(ctx, q, b.Outliers); err != nil {
		return err
	}
	roomID := b.BatchRoom()
	for _, st := range b.State {
		if st.EventID == "" {
			if _, err := q.Exec(ctx, `DELETE FROM current_state WHERE room_id = $1 AND type = $2 AND state_key = $3`, roomID, st.Type, st.StateKey); err != nil {
				return err
			}
			if st.Type == "m.room.member" {
				if _, err := q.Exec(ctx, `DELETE FROM memberships WHERE room_id = $1 AND user_id = $2`, roomID, st.StateKey); err != nil {
					return err
				}
			}
			continue
		}
		var pos int64
		var membership string
		if err := q.QueryRow(ctx, `SELECT stream_pos, membership FROM events WHERE event_id = $1 AND room_id = $2`, st.EventID, roomID).
			Scan(&pos, &membership); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO current_state (room_id, type, state_key, event_id, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, stream_pos = excluded.stream_pos`,
			roomID, st.Type, st.StateKey, st.EventID, pos); err != nil {
			return err
		}
		if st.Type == "m.room.member" {
			if _, err := q.Exec(ctx, `INSERT INTO memberships (room_id, user_id, membership, event_id, stream_pos, forgotten) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership, event_id = excluded.event_id,
					stream_pos = excluded.stream_pos, forgotten = excluded.forgotten`,
				roomID, st.StateKey, membership, st.EventID, pos, false); err != nil {
				return err
			}
		}
	}
	if b.Extremities == nil {
		return nil
	}
	if _, err := q.Exec(ctx, `DELETE FROM room_extremities WHERE room_id = $1`, roomID); err != nil {
		return err
	}
	for _, id := range b.Extremities {
		if _, err := q.Exec(ctx, `INSERT INTO room_extremities (room_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, roomID, id); err != nil {
			return err
		}
	}
	return nil
}
