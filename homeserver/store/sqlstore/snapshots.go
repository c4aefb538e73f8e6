package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/store"
)

// Room state snapshots (federation's state groups): PersistEvents keeps,
// for every timeline event, the state before and after it, and for every
// room the snapshot of its current state. A snapshot is stored as the
// changes to its parent; past a depth that grows with the state's size
// (a chain of minWholeDepth changes, or one entry in eight of the state)
// it is stored whole, so a read walks a bounded chain and a room of
// thousands writes a whole copy of its members rarely.

const minWholeDepth = 100

// snapshotInfo is what writing a child of a snapshot needs to know of it.
type snapshotInfo struct {
	id          int64 // 0: none (the empty state)
	depth, size int
}

func (i snapshotInfo) wholeNext() bool {
	return i.id != 0 && i.depth+1 > max(minWholeDepth, i.size/8)
}

type tupleKey struct{ typ, stateKey string }

// snapshotWriter keeps one room's snapshots within PersistEvents'
// transaction: cur mirrors the room's current_state, with pending the
// changes to it not written yet (after an event on another branch, whose
// own snapshots do not describe the current state).
type snapshotWriter struct {
	s       *Store
	q       Querier
	room    string
	known   bool // the room is stored here (an invite to a room not joined is not)
	loaded  bool
	stored  int64 // rooms.state_snapshot as read
	cur     snapshotInfo
	pending map[tupleKey]string
}

// snapshotWriters are the writers of one PersistEvents, by room.
type snapshotWriters map[string]*snapshotWriter

func (ws snapshotWriters) of(s *Store, q Querier, room string) *snapshotWriter {
	w := ws[room]
	if w == nil {
		w = &snapshotWriter{s: s, q: q, room: room, pending: map[tupleKey]string{}}
		ws[room] = w
	}
	return w
}

// load reads the room's current snapshot; a room stored before snapshots
// were kept gets one made from its current_state.
func (w *snapshotWriter) load(ctx context.Context) error {
	if w.loaded {
		return nil
	}
	w.loaded = true
	// One read per batch, on every send: the room's snapshot with what
	// writing its child needs.
	var id, depth, size sql.NullInt64
	err := w.q.QueryRow(ctx, `SELECT r.state_snapshot, s.depth, s.size FROM rooms r
		LEFT JOIN state_snapshots s ON s.id = r.state_snapshot WHERE r.room_id = $1`, w.room).Scan(&id, &depth, &size)
	if w.s.db.IsNoRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	w.known = true
	if id.Valid {
		if !depth.Valid {
			return errNotFound
		}
		w.stored = id.Int64
		w.cur = snapshotInfo{id: id.Int64, depth: int(depth.Int64), size: int(size.Int64)}
		return nil
	}
	rows, err := w.q.Query(ctx, `SELECT type, state_key, event_id FROM current_state WHERE room_id = $1`, w.room)
	if err != nil {
		return err
	}
	var whole []store.StateRef
	for rows.Next() {
		var r store.StateRef
		if err := rows.Scan(&r.Type, &r.StateKey, &r.EventID); err != nil {
			rows.Close()
			return err
		}
		whole = append(whole, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	w.cur, err = w.write(ctx, snapshotInfo{}, whole)
	return err
}

// current is the snapshot of the room's current state, pending changes
// written.
func (w *snapshotWriter) current(ctx context.Context) (snapshotInfo, error) {
	if len(w.pending) == 0 {
		return w.cur, nil
	}
	delta := make([]store.StateRef, 0, len(w.pending))
	for k, id := range w.pending {
		delta = append(delta, store.StateRef{Type: k.typ, StateKey: k.stateKey, EventID: id})
	}
	cur, err := w.write(ctx, w.cur, delta)
	if err != nil {
		return snapshotInfo{}, err
	}
	w.cur, w.pending = cur, map[tupleKey]string{}
	return cur, nil
}

// event records the state before and after one timeline event.
func (w *snapshotWriter) event(ctx context.Context, e *store.EventRow) error {
	if err := w.load(ctx); err != nil || !w.known {
		return err
	}
	after, err := w.record(ctx, e.EventID, e.Type, e.StateKey, e.StateBefore)
	if err != nil {
		return err
	}
	switch {
	case e.StateBefore == nil:
		w.cur = after
	case e.StateKey != nil:
		w.pending[tupleKey{e.Type, *e.StateKey}] = e.EventID // current_state took it too
	}
	return nil
}

// outlier records the state before and after a soft-failed event, which
// other events may cite: the current state is not changed.
func (w *snapshotWriter) outlier(ctx context.Context, o *store.OutlierRow) error {
	if err := w.load(ctx); err != nil || !w.known {
		return err
	}
	_, err := w.record(ctx, o.EventID, o.Type, o.StateKey, o.StateBefore)
	return err
}

// record writes the snapshots before and after an event (the state
// before: spec, or the current state when spec is nil) and returns the
// one after. An event that has them already keeps them (a soft-failed
// event that a resolution later brought into the timeline).
func (w *snapshotWriter) record(ctx context.Context, eventID, typ string, stateKey *string, spec *store.StateSpec) (snapshotInfo, error) {
	var before snapshotInfo
	var err error
	if spec != nil {
		var base snapshotInfo
		if spec.Base != 0 {
			if base, err = w.s.snapshotInfo(ctx, w.q, spec.Base); err != nil {
				return snapshotInfo{}, err
			}
		}
		before = base
		if len(spec.Delta) > 0 || spec.Base == 0 {
			if before, err = w.write(ctx, base, spec.Delta); err != nil {
				return snapshotInfo{}, err
			}
		}
	} else if before, err = w.current(ctx); err != nil {
		return snapshotInfo{}, err
	}
	after := before
	if stateKey != nil {
		if after, err = w.write(ctx, before, []store.StateRef{{Type: typ, StateKey: *stateKey, EventID: eventID}}); err != nil {
			return snapshotInfo{}, err
		}
	}
	_, err = w.q.Exec(ctx, `INSERT INTO event_state (event_id, state_before, state_after) VALUES ($1, $2, $3)
		ON CONFLICT (event_id) DO NOTHING`, eventID, before.id, after.id)
	return after, err
}

// finish applies the batch's resolved state (refs) to the current
// snapshot and records it as the room's.
func (w *snapshotWriter) finish(ctx context.Context, refs []store.StateRef) error {
	if err := w.load(ctx); err != nil || !w.known {
		return err
	}
	for _, r := range refs {
		w.pending[tupleKey{r.Type, r.StateKey}] = r.EventID
	}
	cur, err := w.current(ctx)
	if err != nil || cur.id == w.stored {
		return err
	}
	_, err = w.q.Exec(ctx, `UPDATE rooms SET state_snapshot = $2 WHERE room_id = $1`, w.room, cur.id)
	return err
}

// write stores a snapshot: delta applied to parent, or whole when parent
// is none or its chain is long enough.
func (w *snapshotWriter) write(ctx context.Context, parent snapshotInfo, delta []store.StateRef) (snapshotInfo, error) {
	if parent.wholeNext() {
		whole, err := w.s.readSnapshot(ctx, w.q, parent.id)
		if err != nil {
			return snapshotInfo{}, err
		}
		delta, parent = applyRefs(whole, delta), snapshotInfo{}
	}
	info := snapshotInfo{size: parent.size}
	var parentID any
	if parent.id != 0 {
		info.depth, parentID = parent.depth+1, parent.id
	}
	for _, r := range delta {
		if r.EventID != "" {
			info.size++
		}
	}
	if err := w.q.QueryRow(ctx, `INSERT INTO state_snapshots (room_id, parent, depth, size) VALUES ($1, $2, $3, $4) RETURNING id`,
		w.room, parentID, info.depth, info.size).Scan(&info.id); err != nil {
		return snapshotInfo{}, err
	}
	for _, r := range delta {
		if parent.id == 0 && r.EventID == "" {
			continue // nothing to take out of a whole state
		}
		if _, err := w.q.Exec(ctx, `INSERT INTO state_snapshot_entries (snapshot, type, state_key, event_id) VALUES ($1, $2, $3, $4)
			ON CONFLICT (snapshot, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
			info.id, r.Type, r.StateKey, r.EventID); err != nil {
			return snapshotInfo{}, err
		}
	}
	return info, nil
}

func (s *Store) snapshotInfo(ctx context.Context, q Querier, id int64) (snapshotInfo, error) {
	info := snapshotInfo{id: id}
	err := q.QueryRow(ctx, `SELECT depth, size FROM state_snapshots WHERE id = $1`, id).Scan(&info.depth, &info.size)
	if s.db.IsNoRows(err) {
		return info, errNotFound
	}
	return info, err
}

// readSnapshot materialises a snapshot: its chain of parents read in one
// query, applied from the whole state at its root down.
func (s *Store) readSnapshot(ctx context.Context, q Querier, id int64) ([]store.StateRef, error) {
	if _, err := s.snapshotInfo(ctx, q, id); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `WITH RECURSIVE chain(id, parent, depth) AS (
			SELECT id, parent, depth FROM state_snapshots WHERE id = $1
			UNION ALL
			SELECT s.id, s.parent, s.depth FROM state_snapshots s JOIN chain c ON s.id = c.parent)
		SELECT e.type, e.state_key, e.event_id FROM chain c JOIN state_snapshot_entries e ON e.snapshot = c.id
		ORDER BY c.depth`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[tupleKey]string{}
	for rows.Next() {
		var k tupleKey
		var ev string
		if err := rows.Scan(&k.typ, &k.stateKey, &ev); err != nil {
			return nil, err
		}
		if ev == "" {
			delete(set, k)
		} else {
			set[k] = ev
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return sortedRefs(set), nil
}

// applyRefs is whole with delta applied.
func applyRefs(whole, delta []store.StateRef) []store.StateRef {
	set := make(map[tupleKey]string, len(whole)+len(delta))
	for _, r := range whole {
		set[tupleKey{r.Type, r.StateKey}] = r.EventID
	}
	for _, r := range delta {
		if r.EventID == "" {
			delete(set, tupleKey{r.Type, r.StateKey})
		} else {
			set[tupleKey{r.Type, r.StateKey}] = r.EventID
		}
	}
	return sortedRefs(set)
}

func sortedRefs(set map[tupleKey]string) []store.StateRef {
	out := make([]store.StateRef, 0, len(set))
	for k, ev := range set {
		out = append(out, store.StateRef{Type: k.typ, StateKey: k.stateKey, EventID: ev})
	}
	slices.SortFunc(out, func(a, b store.StateRef) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.StateKey, b.StateKey)
	})
	return out
}

func (s *Store) EventState(ctx context.Context, eventID string) (store.EventState, error) {
	var st store.EventState
	err := s.db.QueryRow(ctx, `SELECT state_before, state_after FROM event_state WHERE event_id = $1`, eventID).Scan(&st.Before, &st.After)
	return st, s.mapErr(err)
}

func (s *Store) Snapshot(ctx context.Context, id int64) ([]store.StateRef, error) {
	refs, err := s.readSnapshot(ctx, s.db, id)
	return refs, s.mapErr(err)
}
