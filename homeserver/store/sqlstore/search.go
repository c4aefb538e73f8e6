package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
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
		_, err = q.Exec(ctx, `INSERT INTO event_search (stream_pos, room_id, field, vec) VALUES ($1, $2, $3, to_tsvector('simple', $4))`, e.Pos, e.RoomID, key, text)
	} else {
		_, err = q.Exec(ctx, `INSERT INTO event_search (rowid, `+strings.TrimPrefix(key, "content.")+`) VALUES ($1, $2)`, e.Pos, text)
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

const (
	// The MATCH expression names the columns of the keys searched. SQLite
	// takes the rooms as a JSON array, so the query is one fixed text
	// (prepared once) whatever their number.
	searchSQLite = `SELECT e.stream_pos, e.event_id, e.room_id, e.sender, e.type, -bm25(event_search) AS score
		FROM event_search JOIN events e ON e.stream_pos = event_search.rowid
		WHERE event_search MATCH $1 AND e.room_id IN (SELECT value FROM json_each($2))
		ORDER BY %s LIMIT $3`
	// PostgreSQL finds, orders and cuts the matches on the index table
	// alone (the room is kept beside the text); only the page joins
	// events. MATERIALIZED keeps it from walking the whole table
	// backwards in position order when a word is common.
	searchPostgres = `WITH m AS MATERIALIZED (
			SELECT s.stream_pos AS pos, ts_rank(s.vec, query) AS rank FROM event_search s, to_tsquery('simple', $1) query
			WHERE s.vec @@ query AND s.room_id = ANY($2) AND s.field = ANY($3)
			ORDER BY %s LIMIT $4)
		SELECT e.stream_pos, e.event_id, e.room_id, e.sender, e.type, m.rank FROM m
		JOIN events e ON e.stream_pos = m.pos ORDER BY %s`
)

func (s *Store) SearchEvents(ctx context.Context, q store.SearchQuery) ([]store.SearchMatch, error) {
	// A NUL ends an FTS5 string early (an SQL error) and PostgreSQL
	// refuses it in text: part of the second guard below.
	terms := make([]string, 0, len(q.Terms))
	for _, t := range q.Terms {
		if t = strings.ReplaceAll(t, "\x00", ""); t != "" {
			terms = append(terms, t)
		}
	}
	q.Terms = terms
	if len(q.RoomIDs) == 0 || len(q.Terms) == 0 || q.Limit <= 0 {
		return nil, nil
	}
	if q.Keys == nil {
		q.Keys = []string{"content.body", "content.name", "content.topic"}
	}
	// Equal ranks come oldest first (Synapse's order, which Complement's
	// search tests expect).
	order := "pos DESC"
	if q.ByRank {
		order = "rank DESC, pos"
	}
	sqliteOrder := map[bool]string{false: "e.stream_pos DESC", true: "score DESC, e.stream_pos"}
	// Every term must match, as a word or a word's beginning. Terms are
	// letters and digits only (the caller splits the search text); the
	// quoting below is a second guard.
	parts := make([]string, len(q.Terms))
	var rows Rows
	var err error
	if s.dialect == DialectPostgres {
		for i, t := range q.Terms {
			parts[i] = "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(t) + "':*"
		}
		rows, err = s.db.Query(ctx, fmt.Sprintf(searchPostgres, order, order), strings.Join(parts, " & "), q.RoomIDs, q.Keys, q.Limit)
	} else {
		for i, t := range q.Terms {
			parts[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"*`
		}
		cols := make([]string, len(q.Keys))
		for i, k := range q.Keys {
			switch k {
			case "content.body", "content.name", "content.topic":
				cols[i] = strings.TrimPrefix(k, "content.")
			default:
				return nil, fmt.Errorf("search: unknown key %q", k)
			}
		}
		rooms, jerr := json.Marshal(q.RoomIDs)
		if jerr != nil {
			return nil, jerr
		}
		match := "{" + strings.Join(cols, " ") + "} : (" + strings.Join(parts, " ") + ")"
		rows, err = s.db.Query(ctx, fmt.Sprintf(searchSQLite, sqliteOrder[q.ByRank]), match, string(rooms), q.Limit)
	}
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
