package rooms

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Reads by other servers (Server-Server API, "Retrieving events",
// "Backfilling and retrieving missing events"). A server may read what
// one of its users may read: an event is visible to it when the history
// visibility rules let one of its users (joined, invited or once a member)
// see it, or when the room was world_readable at the event. A server
// none of whose users ever could read anything, in a room that was never
// world_readable, reads nothing at all.

// maxAuthChain bounds the auth chain walked for one answer.
const maxAuthChain = 20_000

// errServerNoRead answers a server that may read nothing of a room, or
// asks about a room that does not exist.
var errServerNoRead = mxerr.Forbid("This server is not allowed to read this room")

// ServerReader judges one server's reads of one room.
type ServerReader struct {
	Server  string
	RoomID  string
	Version events.RoomVersion
	// readers are those of the server's users with any membership in the
	// room, plus one without membership that reads world_readable history.
	readers []*Reader
}

// NewServerReader loads what is needed to judge a server's reads of a
// room. It returns M_FORBIDDEN when the server may read nothing there.
func (s *Service) NewServerReader(ctx context.Context, roomID, server string) (*ServerReader, error) {
	// The stored room, not the room's lock: see ServerACL.
	info, err := s.p.Store.Room(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errServerNoRead
	}
	if err != nil {
		return nil, err
	}
	sr := &ServerReader{Server: server, RoomID: roomID, Version: events.RoomVersion(info.Version)}
	ms, err := s.p.Store.RoomMemberships(ctx, roomID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if !strings.HasSuffix(m.UserID, ":"+server) {
			continue
		}
		rd, err := s.NewReader(ctx, roomID, m.UserID)
		if errors.Is(err, errNoRead) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sr.readers = append(sr.readers, rd)
	}
	vis, err := s.p.Store.StateHistory(ctx, roomID, "m.room.history_visibility", "")
	if err != nil {
		return nil, err
	}
	world := &Reader{RoomID: roomID, vis: vis}
	world.parseVisibility()
	if world.everReadable() {
		sr.readers = append(sr.readers, world)
	}
	if len(sr.readers) == 0 {
		return nil, errServerNoRead
	}
	return sr, nil
}

// CanRead reports whether one of the server's users (or anyone, for
// world_readable history) may read the event.
func (sr *ServerReader) CanRead(ev store.EventRow) bool {
	for _, rd := range sr.readers {
		if rd.CanRead(ev) {
			return true
		}
	}
	return false
}

// Shown is the event as the server may have it: as stored when it may
// read it, else redacted (the DAG stays whole; the content does not
// leave).
func (sr *ServerReader) Shown(ev store.EventRow) (json.RawMessage, error) {
	if sr.CanRead(ev) {
		return ev.JSON, nil
	}
	return events.Redact(sr.Version, ev.JSON)
}

// ServerPDU is an event as another server gets it.
type ServerPDU struct {
	EventID string
	JSON    json.RawMessage
}

// ServerEvent returns one event for GET /event: M_NOT_FOUND when there is
// no such event, M_FORBIDDEN when the server may not read it.
func (s *Service) ServerEvent(ctx context.Context, server, eventID string) (roomID string, pdu json.RawMessage, err error) {
	row, err := s.p.Store.Event(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, mxerr.NotFoundf("Event not found")
	}
	if err != nil {
		return "", nil, err
	}
	sr, err := s.NewServerReader(ctx, row.RoomID, server)
	if err != nil {
		return row.RoomID, nil, err
	}
	if !sr.CanRead(row) {
		return row.RoomID, nil, errServerNoRead
	}
	return row.RoomID, row.JSON, nil
}

// roomEvent loads an event of roomID the server may read.
func (s *Service) roomEvent(ctx context.Context, sr *ServerReader, eventID string) (store.EventRow, error) {
	row, err := s.p.Store.Event(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && row.RoomID != sr.RoomID) {
		return row, mxerr.NotFoundf("Event not found in this room")
	}
	if err != nil {
		return row, err
	}
	if !sr.CanRead(row) {
		return row, errServerNoRead
	}
	return row, nil
}

// ServerState is the room's state before an event (GET /state and
// /state_ids) and the auth chain of that state.
func (s *Service) ServerState(ctx context.Context, server, roomID, eventID string) (state, authChain []ServerPDU, err error) {
	sr, err := s.NewServerReader(ctx, roomID, server)
	if err != nil {
		return nil, nil, err
	}
	row, err := s.roomEvent(ctx, sr, eventID)
	if err != nil {
		return nil, nil, err
	}
	if state, err = s.stateBeforeRow(ctx, row); err != nil {
		return nil, nil, err
	}
	authChain, err = s.authChain(ctx, sr, state)
	return state, authChain, err
}

// stateBeforeRow is the room state before a timeline event, from its
// snapshot (events of it may be outliers: the state a join brought); an
// event stored before snapshots were kept has the state read from the
// timeline up to it.
func (s *Service) stateBeforeRow(ctx context.Context, row store.EventRow) ([]ServerPDU, error) {
	set, _, ok, err := s.eventState(ctx, row.EventID, false)
	if err != nil {
		return nil, err
	}
	if !ok {
		rows, err := s.p.Store.StateAt(ctx, row.RoomID, row.Pos-1)
		if err != nil {
			return nil, err
		}
		state := make([]ServerPDU, 0, len(rows))
		for _, r := range rows {
			state = append(state, ServerPDU{EventID: r.EventID, JSON: r.JSON})
		}
		return state, nil
	}
	state := make([]ServerPDU, 0, len(set))
	for _, id := range set {
		ev, err := s.anyEvent(ctx, id)
		if err != nil {
			return nil, err
		}
		state = append(state, ServerPDU{EventID: id, JSON: ev.JSON})
	}
	slices.SortFunc(state, func(a, b ServerPDU) int { return strings.Compare(a.EventID, b.EventID) })
	return state, nil
}

// anyEvent is a stored event of the timeline, or one kept outside it as
// an outlier (the state and auth chain a join brought); ErrNotFound
// otherwise (rejected and soft-failed events included).
func (s *Service) anyEvent(ctx context.Context, id string) (store.EventRow, error) {
	row, err := s.p.Store.Event(ctx, id)
	if !errors.Is(err, store.ErrNotFound) {
		return row, err
	}
	if o, oerr := s.p.Store.Outlier(ctx, id); oerr == nil && o.Status == store.StatusOutlier {
		return store.EventRow{EventID: o.EventID, RoomID: o.RoomID, JSON: o.JSON}, nil
	}
	return row, err
}

// ServerAuthChain is the auth chain of one event (GET /event_auth).
func (s *Service) ServerAuthChain(ctx context.Context, server, roomID, eventID string) ([]ServerPDU, error) {
	sr, err := s.NewServerReader(ctx, roomID, server)
	if err != nil {
		return nil, err
	}
	row, err := s.roomEvent(ctx, sr, eventID)
	if err != nil {
		return nil, err
	}
	return s.authChain(ctx, sr, []ServerPDU{{EventID: row.EventID, JSON: row.JSON}})
}

// authChain walks the auth events of from, transitively, and returns
// them (not from itself unless cited), each once. The create event is
// always part of it, also in room versions whose events do not cite it
// (v12).
func (s *Service) authChain(ctx context.Context, sr *ServerReader, from []ServerPDU) ([]ServerPDU, error) {
	seen := map[string]bool{}
	var queue []string
	push := func(pdu json.RawMessage) error {
		ev, err := events.Parse(sr.Version, pdu)
		if err != nil {
			return err
		}
		for _, id := range ev.AuthEvents {
			if !seen[id] {
				seen[id] = true
				queue = append(queue, id)
			}
		}
		return nil
	}
	for _, p := range from {
		if err := push(p.JSON); err != nil {
			return nil, err
		}
	}
	if create, err := s.p.Store.StateHistory(ctx, sr.RoomID, "m.room.create", ""); err == nil && len(create) > 0 && !seen[create[0].EventID] {
		seen[create[0].EventID] = true
		queue = append(queue, create[0].EventID)
	}
	var out []ServerPDU
	for len(queue) > 0 && len(out) < maxAuthChain {
		id := queue[0]
		queue = queue[1:]
		row, err := s.anyEvent(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && row.RoomID != sr.RoomID) {
			continue // not here (an outlier this server never had)
		}
		if err != nil {
			return nil, err
		}
		// Auth events are state: whoever may read the room has them.
		out = append(out, ServerPDU{EventID: row.EventID, JSON: row.JSON})
		if err := push(row.JSON); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// depthItem is an event waiting in a walk back through prev_events,
// deepest first.
type depthItem struct {
	row   store.EventRow
	depth int64
	prev  []string
}

type depthHeap []depthItem

func (h depthHeap) Len() int { return len(h) }
func (h depthHeap) Less(i, j int) bool {
	if h[i].depth != h[j].depth {
		return h[i].depth > h[j].depth
	}
	return h[i].row.Pos > h[j].row.Pos
}
func (h depthHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *depthHeap) Push(x any)   { *h = append(*h, x.(depthItem)) }
func (h *depthHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// walkBack visits the events of the room reachable backwards from start
// through prev_events, deepest first, each once, until visit returns
// false. Events this server does not have (or of another room) are
// skipped. Events in stop, and events of a depth under minDepth, are
// neither visited nor walked through.
func (s *Service) walkBack(ctx context.Context, sr *ServerReader, start []string, stop map[string]bool, minDepth int64, visit func(depthItem) bool) error {
	seen := map[string]bool{}
	h := &depthHeap{}
	add := func(id string) error {
		if seen[id] || stop[id] {
			return nil
		}
		seen[id] = true
		row, err := s.p.Store.Event(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && row.RoomID != sr.RoomID) {
			return nil
		}
		if err != nil {
			return err
		}
		ev, err := events.Parse(sr.Version, row.JSON)
		if err != nil {
			return err
		}
		if ev.Depth < minDepth {
			return nil
		}
		heap.Push(h, depthItem{row: row, depth: ev.Depth, prev: ev.PrevEvents})
		return nil
	}
	for _, id := range start {
		if err := add(id); err != nil {
			return err
		}
	}
	for h.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := heap.Pop(h).(depthItem)
		if !visit(it) {
			return nil
		}
		for _, p := range it.prev {
			if err := add(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// ServerBackfill is GET /backfill: up to limit events preceding and
// including the events in from, newest first. Events the server may not
// read come redacted.
func (s *Service) ServerBackfill(ctx context.Context, server, roomID string, from []string, limit int) ([]ServerPDU, error) {
	sr, err := s.NewServerReader(ctx, roomID, server)
	if err != nil {
		return nil, err
	}
	return s.collectBack(ctx, sr, from, nil, 0, limit)
}

// collectBack walks back from start (walkBack: stop, minDepth) and returns
// up to limit events as the server may see them, newest first.
func (s *Service) collectBack(ctx context.Context, sr *ServerReader, start []string, stop map[string]bool, minDepth int64, limit int) ([]ServerPDU, error) {
	var out []ServerPDU
	var werr error
	err := s.walkBack(ctx, sr, start, stop, minDepth, func(it depthItem) bool {
		pdu, err := sr.Shown(it.row)
		if err != nil {
			werr = err
			return false
		}
		out = append(out, ServerPDU{EventID: it.row.EventID, JSON: pdu})
		return len(out) < limit
	})
	if werr != nil {
		return nil, werr
	}
	return out, err
}

// ServerMissingEvents is POST /get_missing_events: up to limit events
// before latest (latest themselves excluded) that are not before or among
// earliest, with a depth of at least minDepth, oldest first. Events the
// server may not read come redacted.
func (s *Service) ServerMissingEvents(ctx context.Context, server, roomID string, earliest, latest []string, limit int, minDepth int64) ([]ServerPDU, error) {
	sr, err := s.NewServerReader(ctx, roomID, server)
	if err != nil {
		return nil, err
	}
	stop := map[string]bool{}
	for _, id := range earliest {
		stop[id] = true
	}
	var start []string
	for _, id := range latest {
		row, err := s.p.Store.Event(ctx, id)
		if err != nil || row.RoomID != roomID {
			continue
		}
		ev, err := events.Parse(sr.Version, row.JSON)
		if err != nil {
			return nil, err
		}
		start = append(start, ev.PrevEvents...)
	}
	out, err := s.collectBack(ctx, sr, start, stop, minDepth, limit)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out) // oldest first
	return out, nil
}

// ServerACL is the content of the room's current m.room.server_acl (nil
// when it has none, or when the room is not known here). Every served
// read asks it, so it never waits for the room's lock: a received PDU
// holds that lock while it fetches events from the very server whose
// read this may be (two servers each fetching from the other would wait
// 30 s and fail). When the lock is taken, the stored current state
// answers.
func (s *Service) ServerACL(ctx context.Context, roomID string) (json.RawMessage, error) {
	tuple := events.StateTuple{Type: "m.room.server_acl"}
	s.mu.RLock()
	r := s.rooms[roomID]
	s.mu.RUnlock()
	if r != nil && r.mu.TryLock() {
		if r.state != nil {
			ev := r.state[tuple]
			r.mu.Unlock()
			if ev == nil {
				return nil, nil
			}
			return ev.Content, nil
		}
		r.mu.Unlock()
	}
	rows, err := s.p.Store.CurrentState(ctx, roomID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	for _, row := range rows {
		if row.Type == tuple.Type && row.StateKey != nil && *row.StateKey == "" {
			var c struct {
				Content json.RawMessage `json:"content"`
			}
			if err := json.Unmarshal(row.JSON, &c); err != nil {
				return nil, err
			}
			return c.Content, nil
		}
	}
	return nil, nil
}

// AddRemoteMember stores a membership event of a user of another server
// (join, leave or knock by themselves), signed with that server's key and
// checked by the auth rules against the current state, the way a remote
// membership event lands once the membership handshakes exist. Until then
// it is how tests give a room a member of another server; nothing in the
// server calls it.
func (s *Service) AddRemoteMember(ctx context.Context, roomID, userID, membership string, key events.SigningKey) (string, error) {
	server := ""
	if i := strings.IndexByte(userID, ':'); i > 0 {
		server = userID[i+1:]
	}
	if server == "" || server == s.p.ServerName {
		return "", mxerr.InvalidParamf("%s is not a user of another server", userID)
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	notify := func() {}
	defer func() { notify() }()
	defer r.mu.Unlock()
	if events.SenderChoosesEventID(r.version) {
		return "", mxerr.InvalidParamf("room version %s is not supported here", r.version)
	}
	content, _ := json.Marshal(map[string]string{"membership": membership})
	stateKey := userID
	var authIDs []string
	for _, t := range authrules.AuthEventTuples(r.version, "m.room.member", &stateKey, userID, content) {
		if a, ok := r.state[t]; ok {
			authIDs = append(authIDs, a.ID)
		}
	}
	proto := events.Proto{RoomID: r.id, Sender: userID, Type: "m.room.member", StateKey: &stateKey, Content: content,
		OriginServerTS: s.p.Now().UnixMilli(), AuthEvents: authIDs, Depth: 1}
	for _, p := range r.prevEvents() {
		proto.PrevEvents = append(proto.PrevEvents, p.ID)
		proto.Depth = max(proto.Depth, p.Depth+1)
	}
	ev, err := events.Build(proto, r.version, server, key)
	if err != nil {
		return "", err
	}
	if err := authrules.Allowed(ev, r.state); err != nil {
		return "", mxerr.Forbid("%v", err)
	}
	row := eventRow(r, ev, r.state[ev.Tuple()])
	r.state[ev.Tuple()] = ev
	r.derived.Store(nil)
	batch := &store.EventBatch{Events: []store.EventRow{row}}
	r.advance(ev, batch)
	_, n, err := s.commitLater(ctx, r, batch, userID)
	if err != nil {
		return "", err
	}
	notify = n
	return ev.ID, nil
}
