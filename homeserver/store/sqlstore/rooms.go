package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
)

var _ store.Rooms = (*Store)(nil)
var _ store.UserData = (*Store)(nil)

// loadPos sets the stream head from what the database holds.
func (s *Store) loadPos(ctx context.Context) error {
	var pos int64
	for _, q := range []string{
		`SELECT COALESCE(MAX(stream_pos), 0) FROM events`,
		`SELECT COALESCE(MAX(stream_pos), 0) FROM account_data`,
		`SELECT COALESCE(MAX(stream_pos), 0) FROM receipts`,
		`SELECT COALESCE(MAX(stream_pos), 0) FROM device_list_changes`,
		`SELECT COALESCE(MAX(stream_pos), 0) FROM stream_head`,
	} {
		var p int64
		if err := s.db.QueryRow(ctx, q).Scan(&p); err != nil {
			return err
		}
		pos = max(pos, p)
	}
	s.pos.Store(pos)
	return nil
}

// CurrentPos is the last committed stream position.
func (s *Store) CurrentPos() int64 { return s.pos.Load() }

// streamTx runs fn in a write transaction holding the stream lock; next
// hands out positions. The head moves only when the transaction commits,
// so readers never see a position whose data is not there yet. committed,
// if not nil, runs after the commit and before the head moves: it tells
// the memo what was written.
func (s *Store) streamTx(ctx context.Context, fn func(q Querier, next func() int64) error, committed func()) (int64, error) {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	last := s.pos.Load()
	err := s.db.Tx(ctx, func(q Querier) error {
		last = s.pos.Load()
		return fn(q, func() int64 { last++; return last })
	})
	if err != nil {
		return 0, s.mapErr(err)
	}
	if committed != nil {
		committed()
	}
	s.pos.Store(last)
	return last, nil
}

const eventCols = `stream_pos, event_id, room_id, type, state_key, sender, json, redacted_by, rel_type, relates_to, sender_device, txn_id, membership, unsigned, delay_id`

func scanEvent(r Row) (store.EventRow, error) {
	var e store.EventRow
	var js, us string
	err := r.Scan(&e.Pos, &e.EventID, &e.RoomID, &e.Type, &e.StateKey, &e.Sender, &js, &e.RedactedBy,
		&e.RelType, &e.RelatesTo, &e.SenderDevice, &e.TxnID, &e.Membership, &us, &e.DelayID)
	e.JSON = []byte(js)
	if us != "" {
		e.Unsigned = []byte(us)
	}
	return e, err
}

func (s *Store) queryEvents(ctx context.Context, q string, args ...any) ([]store.EventRow, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.EventRow
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) PersistEvents(ctx context.Context, b *store.EventBatch) (int64, error) {
	return s.streamTx(ctx, func(q Querier, next func() int64) error {
		if r := b.NewRoom; r != nil {
			if _, err := q.Exec(ctx, `INSERT INTO rooms (room_id, version, creator, room_type, created_ts, published)
				VALUES ($1, $2, $3, $4, $5, $6)`, r.RoomID, r.Version, r.Creator, r.RoomType, r.CreatedTS, r.Published); err != nil {
				return err
			}
		}
		snaps := snapshotWriters{}
		past, err := pastPositions(ctx, q, b)
		if err != nil {
			return err
		}
		for i := range b.Events {
			e := &b.Events[i]
			if b.Backfill || e.Past {
				e.Pos = past()
			} else {
				e.Pos = next()
			}
			if b.Backfill {
				moved, err := s.moveJoinState(ctx, q, e)
				if err != nil {
					return err
				}
				if moved {
					continue
				}
			}
			if _, err := q.Exec(ctx, `INSERT INTO events (`+eventCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
				e.Pos, e.EventID, e.RoomID, e.Type, e.StateKey, e.Sender, string(e.JSON), e.RedactedBy,
				e.RelType, e.RelatesTo, e.SenderDevice, e.TxnID, e.Membership, string(e.Unsigned), e.DelayID); err != nil {
				return err
			}
			if err := s.indexEvent(ctx, q, e); err != nil {
				return err
			}
			if b.Backfill {
				continue // history only
			}
			if err := snaps.of(s, q, e.RoomID).event(ctx, e); err != nil {
				return err
			}
			if e.StateKey == nil {
				continue
			}
			if _, err := q.Exec(ctx, `INSERT INTO current_state (room_id, type, state_key, event_id, stream_pos) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, stream_pos = excluded.stream_pos`,
				e.RoomID, e.Type, *e.StateKey, e.EventID, e.Pos); err != nil {
				return err
			}
			if e.Type == "m.room.member" {
				if _, err := q.Exec(ctx, `INSERT INTO memberships (room_id, user_id, membership, event_id, stream_pos, forgotten) VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership, event_id = excluded.event_id,
						stream_pos = excluded.stream_pos, forgotten = excluded.forgotten`,
					e.RoomID, *e.StateKey, e.Membership, e.EventID, e.Pos, false); err != nil {
					return err
				}
			}
		}
		for _, r := range b.Redactions {
			if _, err := q.Exec(ctx, `UPDATE events SET json = $2, redacted_by = $3 WHERE event_id = $1`, r.EventID, string(r.RedactedJSON), r.By); err != nil {
				return err
			}
			if err := s.unindexEvent(ctx, q, r.EventID); err != nil {
				return err
			}
		}
		if err := s.persistDAG(ctx, q, b); err != nil {
			return err
		}
		if room := b.BatchRoom(); room != "" && !b.Backfill {
			snaps.of(s, q, room)
		}
		for room, w := range snaps {
			var refs []store.StateRef
			if room == b.BatchRoom() {
				refs = b.State
			}
			if err := w.finish(ctx, refs); err != nil {
				return err
			}
		}
		return nil
	}, func() { s.memo.persisted(b) })
}

// moveJoinState moves an event of the state a join brought (a Past event,
// between the backfilled history and the timeline) to the position
// backfill gave it, among the history it belongs to: its row, the
// current state and memberships that cite it, its search entry. It
// reports false when the event is not one.
func (s *Store) moveJoinState(ctx context.Context, q Querier, e *store.EventRow) (bool, error) {
	var old int64
	err := q.QueryRow(ctx, `SELECT stream_pos FROM events WHERE event_id = $1 AND room_id = $2`, e.EventID, e.RoomID).Scan(&old)
	if s.db.IsNoRows(err) || (err == nil && !store.InJoinState(old)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := s.unindexEvent(ctx, q, e.EventID); err != nil {
		return false, err
	}
	for _, table := range []string{"events", "current_state", "memberships"} {
		if _, err := q.Exec(ctx, `UPDATE `+table+` SET stream_pos = $1 WHERE event_id = $2`, e.Pos, e.EventID); err != nil {
			return false, err
		}
	}
	row, err := scanEvent(q.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE event_id = $1`, e.EventID))
	if err != nil {
		return false, err
	}
	*e = row
	return true, s.indexEvent(ctx, q, e)
}

// pastPositions allocates the positions of a batch's past events: a block
// below every stored position of their range (store.PastTop), handed out
// in the batch's order.
func pastPositions(ctx context.Context, q Querier, b *store.EventBatch) (func() int64, error) {
	n := 0
	for _, e := range b.Events {
		if b.Backfill || e.Past {
			n++
		}
	}
	if n == 0 {
		return nil, nil // no past event: never called
	}
	top, floor := store.PastTop, store.BackfillTop
	if b.Backfill {
		top, floor = store.BackfillTop-1, math.MinInt64
	}
	var low sql.NullInt64
	if err := q.QueryRow(ctx, `SELECT MIN(stream_pos) FROM events WHERE stream_pos <= $1 AND stream_pos >= $2`, top, floor).Scan(&low); err != nil {
		return nil, err
	}
	next := top - int64(n) + 1
	if low.Valid {
		next = low.Int64 - int64(n)
	}
	return func() int64 { next++; return next - 1 }, nil
}

func (s *Store) Room(ctx context.Context, roomID string) (store.Room, error) {
	var r store.Room
	err := s.db.QueryRow(ctx, `SELECT room_id, version, creator, room_type, created_ts, published FROM rooms WHERE room_id = $1`, roomID).
		Scan(&r.RoomID, &r.Version, &r.Creator, &r.RoomType, &r.CreatedTS, &r.Published)
	return r, s.mapErr(err)
}

func (s *Store) SetPublished(ctx context.Context, roomID string, published bool) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE rooms SET published = $2 WHERE room_id = $1`, roomID, published)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) PublishedRooms(ctx context.Context) ([]string, error) {
	return s.queryStrings(ctx, `SELECT room_id FROM rooms WHERE published ORDER BY created_ts, room_id`)
}

func (s *Store) queryStrings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) Event(ctx context.Context, eventID string) (store.EventRow, error) {
	if e, ok := s.memo.event(eventID); ok {
		return e, nil
	}
	e, err := scanEvent(s.db.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE event_id = $1`, eventID))
	return e, s.mapErr(err)
}

// txnEventQuery names txn_id <> ” so the partial index events_txn
// applies: without it SQLite scans every event on every send.
const txnEventQuery = `SELECT ` + eventCols + ` FROM events WHERE sender = $1 AND sender_device = $2 AND txn_id = $3 AND txn_id <> '' AND room_id = $4`

// relationsQuery likewise names relates_to <> ” for events_rel.
const relationsQuery = `SELECT ` + eventCols + ` FROM events WHERE relates_to = $1 AND relates_to <> '' AND room_id = $2
		AND ($3 = '' OR rel_type = $3) AND ($4 = '' OR type = $4) AND stream_pos < $5
		ORDER BY stream_pos DESC LIMIT $6`

// HotQueries are the queries run on every send or sync, with sample
// arguments, so a backend test can check that each uses an index.
func HotQueries() map[string][]any {
	return map[string][]any{
		txnEventQuery:    {"@a:t", "DEV", "txn", "!r:t"},
		relationsQuery:   {"$e", "!r:t", "", "", int64(10), 10},
		threadRootsQuery: {"!r:t", int64(0), "", 10},
		`SELECT ` + eventCols + ` FROM events WHERE room_id = $1 AND stream_pos > $2 AND stream_pos < $3 ORDER BY stream_pos DESC LIMIT $4`: {"!r:t", int64(0), int64(10), 10},
		`SELECT ` + eventCols + ` FROM events WHERE room_id = $1 AND type = $2 AND state_key = $3 ORDER BY stream_pos`:                      {"!r:t", "m.room.member", "@a:t"},
		`SELECT ` + eventCols + ` FROM events WHERE event_id = $1`:                                                                          {"$e"},
		`SELECT ` + receiptCols + ` FROM receipts WHERE room_id = $1 AND user_id = $2 AND type = $3 AND thread_id = ''`:                     {"!r:t", "@a:t", "m.read"},
		`SELECT ` + membershipCols + ` FROM memberships WHERE user_id = $1 ORDER BY stream_pos`:                                             {"@a:t"},
		bumpQuery(2):                           {"!a:t", "!b:t"},
		fmt.Sprintf(relationsPageQuery, "ASC"): {"$e", "!r:t", "", "", int64(0), int64(10), 10},
	}
}

func (s *Store) TxnEvent(ctx context.Context, userID, deviceID, roomID, txnID string) (store.EventRow, error) {
	e, err := scanEvent(s.db.QueryRow(ctx, txnEventQuery, userID, deviceID, txnID, roomID))
	return e, s.mapErr(err)
}

func (s *Store) CurrentState(ctx context.Context, roomID string) ([]store.EventRow, error) {
	return s.queryEvents(ctx, `SELECT `+prefixed("e.", eventCols)+` FROM current_state c JOIN events e ON e.stream_pos = c.stream_pos
		WHERE c.room_id = $1 ORDER BY e.stream_pos`, roomID)
}

func (s *Store) StateAt(ctx context.Context, roomID string, pos int64) ([]store.EventRow, error) {
	return s.queryEvents(ctx, `SELECT `+eventCols+` FROM events WHERE stream_pos IN (
		SELECT MAX(stream_pos) FROM events WHERE room_id = $1 AND state_key IS NOT NULL AND stream_pos <= $2 GROUP BY type, state_key)
		ORDER BY stream_pos`, roomID, pos)
}

func (s *Store) RoomEvents(ctx context.Context, roomID string, after, before int64, limit int, desc bool) ([]store.EventRow, error) {
	if evs, ok := s.memo.roomEvents(roomID, after, before, limit, desc); ok {
		return evs, nil
	}
	order := "ASC"
	if desc {
		order = "DESC"
	}
	return s.queryEvents(ctx, `SELECT `+eventCols+` FROM events WHERE room_id = $1 AND stream_pos > $2 AND stream_pos < $3
		ORDER BY stream_pos `+order+` LIMIT $4`, roomID, after, before, limit)
}

func (s *Store) LastEvent(ctx context.Context, roomID string) (store.EventRow, error) {
	if e, ok := s.memo.lastEvent(roomID); ok {
		return e, nil
	}
	e, err := scanEvent(s.db.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE room_id = $1 ORDER BY stream_pos DESC LIMIT 1`, roomID))
	return e, s.mapErr(err)
}

func (s *Store) StateHistory(ctx context.Context, roomID, typ, stateKey string) ([]store.EventRow, error) {
	k := histKey{roomID, typ, stateKey}
	rows, ok, gen := s.memo.stateHistory(k)
	if ok {
		return rows, nil
	}
	rows, err := s.queryEvents(ctx, `SELECT `+eventCols+` FROM events WHERE room_id = $1 AND type = $2 AND state_key = $3
		ORDER BY stream_pos`, roomID, typ, stateKey)
	if err == nil {
		s.memo.storeHistory(k, rows, gen)
	}
	return rows, err
}

func (s *Store) Relations(ctx context.Context, roomID, eventID, relType, evType string, before int64, limit int) ([]store.EventRow, error) {
	if before <= 0 {
		before = 1 << 62
	}
	return s.queryEvents(ctx, relationsQuery, eventID, roomID, relType, evType, before, limit)
}

// relationsPageQuery is relationsQuery with both bounds; %s is the order.
// relationsRecurseQuery follows relations of relations up to depth $8 (a
// recursive CTE both SQLite and PostgreSQL run; UNION drops the rows a
// cycle would repeat, the depth bound ends it) and filters what it found.
// Each step looks its children up in events_rel and the outer query its
// rows by event_id (naming the room as $2 there made SQLite walk the
// room's index instead; the room is carried in the CTE). The CTE itself
// is scanned, so it is not in HotQueries; only recurse=true runs it.
const (
	relationsPageQuery = `SELECT ` + eventCols + ` FROM events WHERE relates_to = $1 AND relates_to <> '' AND room_id = $2
		AND ($3 = '' OR rel_type = $3) AND ($4 = '' OR type = $4) AND stream_pos > $5 AND stream_pos < $6
		ORDER BY stream_pos %s LIMIT $7`
	relationsRecurseQuery = `WITH RECURSIVE rel(event_id, room_id, depth) AS (
			SELECT event_id, room_id, 1 FROM events WHERE relates_to = $1 AND relates_to <> '' AND room_id = $2
			UNION
			SELECT e.event_id, e.room_id, rel.depth + 1 FROM rel JOIN events e ON e.relates_to = rel.event_id
				WHERE e.relates_to <> '' AND e.room_id = rel.room_id AND rel.depth < $8)
		SELECT ` + eventCols + ` FROM events WHERE event_id IN (SELECT event_id FROM rel)
		AND ($3 = '' OR rel_type = $3) AND ($4 = '' OR type = $4) AND stream_pos > $5 AND stream_pos < $6
		ORDER BY stream_pos %s LIMIT $7`
)

func (s *Store) RelationsPage(ctx context.Context, q store.RelationsQuery) ([]store.EventRow, error) {
	before := q.Before
	if before <= 0 {
		before = 1 << 62
	}
	order := "DESC"
	if q.Forward {
		order = "ASC"
	}
	args := []any{q.EventID, q.RoomID, q.RelType, q.EventType, q.After, before, q.Limit}
	if q.Depth <= 1 {
		return s.queryEvents(ctx, fmt.Sprintf(relationsPageQuery, order), args...)
	}
	return s.queryEvents(ctx, fmt.Sprintf(relationsRecurseQuery, order), append(args, q.Depth)...)
}

const membershipCols = `room_id, user_id, membership, event_id, stream_pos, forgotten`

func (s *Store) queryMemberships(ctx context.Context, q string, args ...any) ([]store.Membership, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Membership
	for rows.Next() {
		var m store.Membership
		if err := rows.Scan(&m.RoomID, &m.UserID, &m.Membership, &m.EventID, &m.Pos, &m.Forgotten); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Store) UserMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	return s.queryMemberships(ctx, `SELECT `+membershipCols+` FROM memberships WHERE user_id = $1 ORDER BY stream_pos`, userID)
}

func (s *Store) RoomMemberships(ctx context.Context, roomID string) ([]store.Membership, error) {
	return s.queryMemberships(ctx, `SELECT `+membershipCols+` FROM memberships WHERE room_id = $1 ORDER BY stream_pos`, roomID)
}

func (s *Store) Forget(ctx context.Context, roomID, userID string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE memberships SET forgotten = $3 WHERE room_id = $1 AND user_id = $2`, roomID, userID, true)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) RoomPositions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT room_id, MAX(stream_pos) FROM events GROUP BY room_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var p int64
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, rows.Err()
}

func (s *Store) CreateAlias(ctx context.Context, alias, roomID, creator string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO room_aliases (alias, room_id, creator) VALUES ($1, $2, $3)`, alias, roomID, creator)
		return err
	}))
}

func (s *Store) Alias(ctx context.Context, alias string) (string, string, error) {
	var roomID, creator string
	err := s.db.QueryRow(ctx, `SELECT room_id, creator FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID, &creator)
	return roomID, creator, s.mapErr(err)
}

func (s *Store) DeleteAlias(ctx context.Context, alias string) error {
	return s.mapErr(s.db.Tx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `DELETE FROM room_aliases WHERE alias = $1`, alias)
		if err == nil && n == 0 {
			return errNotFound
		}
		return err
	}))
}

func (s *Store) RoomAliases(ctx context.Context, roomID string) ([]string, error) {
	return s.queryStrings(ctx, `SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`, roomID)
}

func (s *Store) PutAccountData(ctx context.Context, userID, roomID, typ string, content []byte) (int64, error) {
	var pos int64
	return s.streamTx(ctx, func(q Querier, next func() int64) error {
		pos = next()
		_, err := q.Exec(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
			userID, roomID, typ, string(content), pos)
		return err
	}, func() { s.memo.accountData(userID, pos) })
}

func (s *Store) PutAccountDataBatch(ctx context.Context, userID, roomID string, contents map[string][]byte) (int64, error) {
	if len(contents) == 0 {
		return 0, errors.New("store: PutAccountDataBatch with nothing to store")
	}
	var pos int64
	return s.streamTx(ctx, func(q Querier, next func() int64) error {
		pos = next()
		for typ, content := range contents {
			if _, err := q.Exec(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
				userID, roomID, typ, string(content), pos); err != nil {
				return err
			}
		}
		return nil
	}, func() { s.memo.accountData(userID, pos) })
}

func (s *Store) AccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error) {
	var c string
	err := s.db.QueryRow(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`, userID, roomID, typ).Scan(&c)
	return []byte(c), s.mapErr(err)
}

func (s *Store) AccountDataSince(ctx context.Context, userID string, since, to int64) ([]store.AccountDataRow, error) {
	if since >= to || !s.memo.accountDataAfter(userID, since) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT user_id, room_id, type, content, stream_pos FROM account_data
		WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`, userID, since, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AccountDataRow
	for rows.Next() {
		var a store.AccountDataRow
		var c string
		if err := rows.Scan(&a.UserID, &a.RoomID, &a.Type, &c, &a.Pos); err != nil {
			return nil, err
		}
		a.Content = []byte(c)
		out = append(out, a)
	}
	return out, rows.Err()
}

const receiptCols = `room_id, user_id, type, event_id, thread_id, ts, stream_pos`

func (s *Store) PutReceipt(ctx context.Context, r store.Receipt) (int64, error) {
	return s.streamTx(ctx, func(q Querier, next func() int64) error {
		r.Pos = next()
		_, err := q.Exec(ctx, `INSERT INTO receipts (`+receiptCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (room_id, user_id, type, thread_id) DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts,
				stream_pos = excluded.stream_pos`,
			r.RoomID, r.UserID, r.Type, r.EventID, r.ThreadID, r.TS, r.Pos)
		return err
	}, func() { s.memo.receiptPut(r) })
}

func (s *Store) ReceiptsSince(ctx context.Context, roomIDs []string, since, to int64) ([]store.Receipt, error) {
	if since >= to {
		return nil, nil
	}
	var out []store.Receipt
	for _, id := range s.memo.receiptsAfter(roomIDs, since) {
		rows, err := s.db.Query(ctx, `SELECT `+receiptCols+` FROM receipts WHERE room_id = $1 AND stream_pos > $2 AND stream_pos <= $3
			ORDER BY stream_pos`, id, since, to)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var r store.Receipt
			if err := rows.Scan(&r.RoomID, &r.UserID, &r.Type, &r.EventID, &r.ThreadID, &r.TS, &r.Pos); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) UserReceipt(ctx context.Context, roomID, userID, typ string) (store.Receipt, error) {
	k := receiptKey{roomID, userID, typ}
	e, ok, gen := s.memo.userReceipt(k)
	if ok {
		if !e.found {
			return store.Receipt{}, errNotFound
		}
		return e.r, nil
	}
	var r store.Receipt
	err := s.mapErr(s.db.QueryRow(ctx, `SELECT `+receiptCols+` FROM receipts WHERE room_id = $1 AND user_id = $2 AND type = $3 AND thread_id = ''`,
		roomID, userID, typ).Scan(&r.RoomID, &r.UserID, &r.Type, &r.EventID, &r.ThreadID, &r.TS, &r.Pos))
	switch {
	case err == nil:
		s.memo.storeReceipt(k, receiptEntry{r, true}, gen)
	case errors.Is(err, errNotFound):
		s.memo.storeReceipt(k, receiptEntry{}, gen)
	}
	return r, err
}

func (s *Store) UserThreadReceipts(ctx context.Context, roomID, userID, typ string) ([]store.Receipt, error) {
	k := receiptKey{roomID, userID, typ}
	rs, ok, gen := s.memo.userThreadReceipts(k)
	if ok {
		return rs, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+receiptCols+` FROM receipts WHERE room_id = $1 AND user_id = $2 AND type = $3 AND thread_id <> ''`,
		roomID, userID, typ)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Receipt
	for rows.Next() {
		var r store.Receipt
		if err := rows.Scan(&r.RoomID, &r.UserID, &r.Type, &r.EventID, &r.ThreadID, &r.TS, &r.Pos); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.memo.storeThreadReceipts(k, out, gen)
	return out, nil
}

func (s *Store) PutFilter(ctx context.Context, userID string, filter []byte) (string, error) {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	err := s.db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO filters (user_id, filter_id, json) VALUES ($1, $2, $3)`, userID, id, string(filter))
		return err
	})
	return id, s.mapErr(err)
}

func (s *Store) Filter(ctx context.Context, userID, filterID string) ([]byte, error) {
	var j string
	err := s.db.QueryRow(ctx, `SELECT json FROM filters WHERE user_id = $1 AND filter_id = $2`, userID, filterID).Scan(&j)
	return []byte(j), s.mapErr(err)
}

func prefixed(p, cols string) string { return p + strings.ReplaceAll(cols, ", ", ", "+p) }

// bumpTypesSQL is store.BumpTypes as the literal list of the events_bump
// partial index (migration 0600), which the planner only uses when the
// query repeats it.
const bumpTypesSQL = `('m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start', 'm.beacon_info')`

// bumpChunk bounds the room IDs of one query (SQLite's default limit on
// host parameters is far above it).
const bumpChunk = 500

func (s *Store) BumpPositions(ctx context.Context, roomIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(roomIDs))
	for len(roomIDs) > 0 {
		n := min(len(roomIDs), bumpChunk)
		chunk := roomIDs[:n]
		roomIDs = roomIDs[n:]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.Query(ctx, bumpQuery(len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var p int64
			if err := rows.Scan(&id, &p); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bumpQuery is BumpPositions' query for n room IDs.
func bumpQuery(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$")
		b.WriteString(strconv.Itoa(i + 1))
	}
	return `SELECT room_id, MAX(stream_pos) FROM events WHERE room_id IN (` + b.String() + `)
			AND type IN ` + bumpTypesSQL + ` GROUP BY room_id`
}
