package sqlstore

import (
	"context"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Threads = (*Store)(nil)

// threadRootsQuery names rel_type = 'm.thread' for the partial index
// events_thread.
const threadRootsQuery = `SELECT t.relates_to, MAX(t.stream_pos) AS latest FROM events t
	WHERE t.room_id = $1 AND t.rel_type = 'm.thread' AND t.relates_to <> '' AND t.redacted_by = ''
	GROUP BY t.relates_to
	HAVING ($2 = 0 OR MAX(t.stream_pos) < $2)
		AND ($3 = '' OR MAX(CASE WHEN t.sender = $3 THEN 1 ELSE 0 END) = 1
			OR EXISTS (SELECT 1 FROM events r WHERE r.event_id = t.relates_to AND r.sender = $3))
	ORDER BY latest DESC LIMIT $4`

func (s *Store) ThreadRoots(ctx context.Context, roomID, participant string, before int64, limit int) ([]store.ThreadRoot, error) {
	rows, err := s.db.Query(ctx, threadRootsQuery, roomID, before, participant, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ThreadRoot
	for rows.Next() {
		var t store.ThreadRoot
		if err := rows.Scan(&t.RootID, &t.LatestPos); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
