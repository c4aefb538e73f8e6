package sync

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

const server = "test"

// harness is a store, a notifier, a typing tracker and an engine, plus a
// tiny rooms layer that builds real signed events and persists them the
// way homeserver/rooms will: PersistEvents, then Notify.
type harness struct {
	t   testing.TB
	ctx context.Context
	st  store.Store
	n   *Notifier
	ty  *Typing
	e   *Engine
	key events.SigningKey
	// mu guards the rooms' bookkeeping, not the writes: concurrent sends
	// persist and notify concurrently, as the rooms layer will.
	mu    gosync.Mutex
	rooms map[string]*testRoom
}

type testRoom struct {
	id      string
	version events.RoomVersion
	last    string
	depth   int64
	members map[string]string // user → membership
	auth    []string
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "salon.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPostgres(t testing.TB) store.Store {
	t.Helper()
	s := pgtest.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends runs fn against SQLite and, when it is reachable, PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newHarness(t, openSQLite(t))) })
	t.Run("postgres", func(t *testing.T) { fn(t, newHarness(t, openPostgres(t))) })
}

func newHarness(t testing.TB, st store.Store) *harness {
	t.Helper()
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: context.Background(), st: st, n: NewNotifier(), key: key, rooms: map[string]*testRoom{}}
	h.ty = NewTyping(h.n)
	t.Cleanup(func() { _ = h.ty.Close() })
	h.e, err = New(h.ctx, Params{Store: st, Notifier: h.n, Typing: h.ty})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sk(s string) *string { return &s }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ev describes one event to send.
type ev struct {
	typ      string
	stateKey *string
	content  any
	device   string // sender device
	txn      string
	redacts  string
}

// build makes and signs an event of the room without persisting it.
func (h *harness) build(r *testRoom, sender string, e ev) (*events.Event, store.EventRow) {
	h.t.Helper()
	h.mu.Lock()
	prev := []string{}
	if r.last != "" {
		prev = []string{r.last}
	}
	auth := slices.Clone(r.auth)
	if auth == nil {
		auth = []string{}
	}
	depth := r.depth + 1
	h.mu.Unlock()
	pe, err := events.Build(events.Proto{
		RoomID:         r.id,
		Sender:         sender,
		Type:           e.typ,
		StateKey:       e.stateKey,
		Content:        mustJSON(h.t, e.content),
		Redacts:        e.redacts,
		OriginServerTS: time.Now().UnixMilli(),
		PrevEvents:     prev,
		AuthEvents:     auth,
		Depth:          depth,
	}, r.version, server, h.key)
	if err != nil {
		h.t.Fatal(err)
	}
	row := store.EventRow{
		EventID: pe.ID, RoomID: r.id, Type: pe.Type, StateKey: pe.StateKey, Sender: sender,
		JSON: pe.JSON, SenderDevice: e.device, TxnID: e.txn,
	}
	if e.typ == typeMember {
		row.Membership = pe.Membership()
	}
	return pe, row
}

// persist stores rows as one batch, then notifies the room's members and
// the targets of member events, like the rooms layer.
func (h *harness) persist(r *testRoom, b *store.EventBatch) {
	h.t.Helper()
	last, err := h.st.PersistEvents(h.ctx, b)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	wake := map[string]bool{}
	for u, m := range r.members {
		if m == join {
			wake[u] = true
		}
	}
	for _, e := range b.Events {
		r.last = e.EventID
		r.depth++
		if e.Type == typeMember {
			r.members[*e.StateKey] = e.Membership
			wake[*e.StateKey] = true
		}
	}
	users := make([]string, 0, len(wake))
	for u := range wake {
		users = append(users, u)
	}
	h.mu.Unlock()
	h.n.NotifyRange(b.Events[0].Pos, last, r.id, users)
}

// createRoom makes a room with create, creator join, power levels and
// join rules (public), and returns it.
func (h *harness) createRoom(id, creator string) *testRoom {
	h.t.Helper()
	r := &testRoom{id: id, version: events.RoomV10, members: map[string]string{}}
	var rows []store.EventRow
	add := func(e ev) {
		pe, row := h.build(r, creator, e)
		r.last = pe.ID
		r.depth++
		if e.typ == "m.room.create" || e.typ == "m.room.power_levels" || e.typ == "m.room.join_rules" {
			r.auth = append(r.auth, pe.ID)
		}
		rows = append(rows, row)
	}
	add(ev{typ: "m.room.create", stateKey: sk(""), content: map[string]any{"creator": creator, "room_version": "10"}})
	add(ev{typ: typeMember, stateKey: sk(creator), content: map[string]any{"membership": "join", "displayname": "creator"}})
	add(ev{typ: "m.room.power_levels", stateKey: sk(""), content: map[string]any{"users": map[string]int{creator: 100}}})
	add(ev{typ: "m.room.join_rules", stateKey: sk(""), content: map[string]any{"join_rule": "public"}})
	// persist counts depth again; undo the local bookkeeping first.
	r.last, r.depth = "", 0
	h.mu.Lock()
	h.rooms[id] = r
	h.mu.Unlock()
	h.persist(r, &store.EventBatch{NewRoom: &store.Room{RoomID: id, Version: "10", Creator: creator, CreatedTS: 1}, Events: rows})
	return r
}

// send persists one event and returns its row (with Pos).
func (h *harness) send(roomID, sender string, e ev) store.EventRow {
	h.t.Helper()
	h.mu.Lock()
	r := h.rooms[roomID]
	h.mu.Unlock()
	_, row := h.build(r, sender, e)
	b := &store.EventBatch{Events: []store.EventRow{row}}
	if e.typ == "m.room.redaction" {
		target, err := h.st.Event(h.ctx, e.redacts)
		if err != nil {
			h.t.Fatal(err)
		}
		red, err := events.Redact(r.version, target.JSON)
		if err != nil {
			h.t.Fatal(err)
		}
		b.Redactions = []store.Redaction{{EventID: e.redacts, RedactedJSON: red, By: row.EventID}}
	}
	h.persist(r, b)
	return b.Events[0]
}

func (h *harness) msg(roomID, sender, body string) store.EventRow {
	h.t.Helper()
	return h.send(roomID, sender, ev{typ: "m.room.message", content: map[string]any{"msgtype": "m.text", "body": body}})
}

func (h *harness) member(roomID, sender, target, membership string) store.EventRow {
	h.t.Helper()
	return h.send(roomID, sender, ev{typ: typeMember, stateKey: sk(target), content: map[string]any{"membership": membership}})
}

func (h *harness) join(roomID, user string) store.EventRow {
	h.t.Helper()
	return h.member(roomID, user, user, join)
}

// sync runs a sync and returns the response decoded generically.
func (h *harness) sync(req Request) (*Response, syncJSON) {
	h.t.Helper()
	resp, err := h.e.Sync(h.ctx, req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, decode(h.t, resp)
}

// syncJSON is a response as a client decodes it.
type syncJSON struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]roomJSON `json:"join"`
		Invite map[string]struct {
			InviteState struct {
				Events []eventJSON `json:"events"`
			} `json:"invite_state"`
		} `json:"invite"`
		Knock map[string]json.RawMessage `json:"knock"`
		Leave map[string]roomJSON        `json:"leave"`
	} `json:"rooms"`
	AccountData struct {
		Events []eventJSON `json:"events"`
	} `json:"account_data"`
	raw map[string]json.RawMessage
}

type roomJSON struct {
	Summary  map[string]json.RawMessage   `json:"summary"`
	State    struct{ Events []eventJSON } `json:"state"`
	Timeline struct {
		Events    []eventJSON `json:"events"`
		Limited   bool        `json:"limited"`
		PrevBatch string      `json:"prev_batch"`
	} `json:"timeline"`
	Ephemeral   struct{ Events []eventJSON } `json:"ephemeral"`
	AccountData struct{ Events []eventJSON } `json:"account_data"`
	Unread      *UnreadCounts                `json:"unread_notifications"`
	raw         map[string]json.RawMessage
}

type eventJSON struct {
	EventID  string          `json:"event_id"`
	Type     string          `json:"type"`
	Sender   string          `json:"sender"`
	StateKey *string         `json:"state_key"`
	RoomID   string          `json:"room_id"`
	Content  json.RawMessage `json:"content"`
	Unsigned map[string]any  `json:"unsigned"`
}

func decode(t testing.TB, resp *Response) syncJSON {
	t.Helper()
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var out syncJSON
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out.raw); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(evs []eventJSON) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

func types(evs []eventJSON) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
		if e.StateKey != nil && *e.StateKey != "" {
			out[i] += "/" + *e.StateKey
		}
	}
	return out
}

func timelineFilter(limit int) Filter {
	var f Filter
	f.Room.Timeline.Limit = &limit
	return f
}
