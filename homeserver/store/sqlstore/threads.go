package sqlstore

import (
	"context"
	"encoding/json"

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

// The event IDs go as a JSON array: one fixed query text however many.
// Each ID is looked up through events_rel (relates_to); "+room_id" keeps
// SQLite from walking every thread reply of the room instead.
const (
	withThreadsSQLite = `SELECT j.value FROM json_each($2) j WHERE EXISTS (SELECT 1 FROM events
		WHERE relates_to = j.value AND relates_to <> '' AND +room_id = $1 AND rel_type = 'm.thread' AND redacted_by = '')`
	withThreadsPostgres = `SELECT j.id FROM jsonb_array_elements_text($2::jsonb) AS j(id) WHERE EXISTS (SELECT 1 FROM events
		WHERE relates_to = j.id AND relates_to <> '' AND room_id = $1 AND rel_type = 'm.thread' AND redacted_by = '')`
)

// WithThreadsQuery is the SQLite query of WithThreads, for a plan test.
const WithThreadsQuery = withThreadsSQLite

func (s *Store) WithThreads(ctx context.Context, roomID string, eventIDs []string) ([]string, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	ids, err := json.Marshal(eventIDs)
	if err != nil {
		return nil, err
	}
	q := withThreadsSQLite
	if s.dialect == DialectPostgres {
		q = withThreadsPostgres
	}
	return s.queryStrings(ctx, q, roomID, string(ids))
}
