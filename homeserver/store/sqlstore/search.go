package sqlstore

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Search = (*Store)(nil)

// Dialect names a backend where the two SQL dialects differ: full-text
// search is SQLite's FTS5 on one side, PostgreSQL's tsvector on the other.
type Dialect int

const (
	// DialectSQLite is the default for a DB that does not say.
	DialectSQLite Dialect = iota
	DialectPostgres
)

// Dialecter is implemented by a DB whose dialect is not SQLite's.
type Dialecter interface{ Dialect() Dialect }

func dialectOf(db DB) Dialect {
	if d, ok := db.(Dialecter); ok {
		return d.Dialect()
	}
	return DialectSQLite
}

// searchable returns the indexed key and text of an event, ok false for
// events that are not indexed. The migration that built the index for
// existing events applies the same rule in SQL.
func searchable(e *store.EventRow) (key, text string, ok bool) {
	switch {
	case e.Type == "m.room.message" && e.StateKey == nil:
		key = "content.body"
	case e.Type == "m.room.name" && e.StateKey != nil && *e.StateKey == "":
		key = "content.name"
	case e.Type == "m.room.topic" && e.StateKey != nil && *e.StateKey == "":
		key = "content.topic"
	default:
		return "", "", false
	}
	if e.RedactedBy != "" {
		return "", "", false
	}
	var ev struct {
		Content map[string]json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(e.JSON, &ev); err != nil {
		return "", "", false
	}
	raw, found := ev.Content[strings.TrimPrefix(key, "content.")]
	if !found || json.Unmarshal(raw, &text) != nil || text == "" {
		return "", "", false
	}
	return key, text, true
}

// indexEvent adds an event's text to the search index inside the write
// transaction that stores it.
func (s *Store) indexEvent(ctx context.Context, q Querier, e *store.EventRow) error {
	key, text, ok := searchable(e)
	if !ok {
		return nil
	}
	var err error
	if s.dialect == DialectPostgres {
		_, err = q.Exec(ctx, `INSERT INTO event_search (stream_pos, field, vec) VALUES ($1, $2, to_tsvector('simple', $3))`, e.Pos, key, text)
	} else {
		_, err = q.Exec(ctx, `INSERT INTO event_search (rowid, field, value) VALUES ($1, $2, $3)`, e.Pos, key, text)
	}
	return err
}

// unindexEvent takes a redacted event out of the search index.
func (s *Store) unindexEvent(ctx context.Context, q Querier, eventID string) error {
	if s.dialect == DialectPostgres {
		_, err := q.Exec(ctx, `DELETE FROM event_search WHERE stream_pos = (SELECT stream_pos FROM events WHERE event_id = $1)`, eventID)
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM event_search WHERE rowid = (SELECT stream_pos FROM events WHERE event_id = $1)`, eventID)
	return err
}

// The queries take the room and key lists as JSON arrays, so each is one
// fixed text (prepared once) whatever the number of rooms.
const (
	searchSQLite = `SELECT e.stream_pos, e.event_id, e.room_id, e.sender, e.type, -bm25(event_search)
		FROM event_search JOIN events e ON e.stream_pos = event_search.rowid
		WHERE event_search MATCH $1
			AND e.room_id IN (SELECT value FROM json_each($2))
			AND event_search.field IN (SELECT value FROM json_each($3))
		ORDER BY `
	searchPostgres = `SELECT e.stream_pos, e.event_id, e.room_id, e.sender, e.type, ts_rank(s.vec, query)
		FROM event_search s JOIN events e ON e.stream_pos = s.stream_pos, to_tsquery('simple', $1) query
		WHERE s.vec @@ query
			AND e.room_id IN (SELECT jsonb_array_elements_text($2::jsonb))
			AND s.field IN (SELECT jsonb_array_elements_text($3::jsonb))
		ORDER BY `
)

func (s *Store) SearchEvents(ctx context.Context, q store.SearchQuery) ([]store.SearchMatch, error) {
	if len(q.RoomIDs) == 0 || len(q.Terms) == 0 || q.Limit <= 0 {
		return nil, nil
	}
	rooms, err := json.Marshal(q.RoomIDs)
	if err != nil {
		return nil, err
	}
	if q.Keys == nil {
		q.Keys = []string{"content.body", "content.name", "content.topic"}
	}
	keys, err := json.Marshal(q.Keys)
	if err != nil {
		return nil, err
	}
	// Every term must match, as a word or a word's beginning. Terms are
	// letters and digits only (the caller splits the search text), so
	// they need no escaping beyond the quotes FTS5 wants.
	var query, sql string
	parts := make([]string, len(q.Terms))
	if s.dialect == DialectPostgres {
		for i, t := range q.Terms {
			parts[i] = "'" + strings.ReplaceAll(t, "'", "''") + "':*"
		}
		query, sql = strings.Join(parts, " & "), searchPostgres
	} else {
		for i, t := range q.Terms {
			parts[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"*`
		}
		query, sql = strings.Join(parts, " "), searchSQLite
	}
	if q.ByRank {
		sql += `6 DESC, 1 DESC`
	} else {
		sql += `1 DESC`
	}
	sql += ` LIMIT $4`
	rows, err := s.db.Query(ctx, sql, query, string(rooms), string(keys), q.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SearchMatch
	for rows.Next() {
		var m store.SearchMatch
		if err := rows.Scan(&m.Pos, &m.EventID, &m.RoomID, &m.Sender, &m.Type, &m.Rank); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
