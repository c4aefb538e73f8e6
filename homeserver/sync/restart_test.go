package sync

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// reopenable opens a store of each backend together with a function that
// opens the same database again.
func reopenable(t *testing.T, fn func(t *testing.T, open func() store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "salon.db")
		fn(t, func() store.Store {
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{Synchronous: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		fn(t, func() store.Store {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// syncView is what a client keeps of one joined room's sync.
type syncView struct {
	next      string
	timeline  []string
	contents  []string
	limited   bool
	prevBatch string
	state     []string
}

// view keeps the stream part of next_batch: the typing part is counted
// per run on purpose (see Typing).
func view(t *testing.T, resp *Response, js syncJSON, roomID string) syncView {
	t.Helper()
	tok, err := ParseStreamToken(resp.NextBatch)
	if err != nil {
		t.Fatal(err)
	}
	next := fmt.Sprint(tok.Pos)
	r, ok := js.Rooms.Join[roomID]
	if !ok {
		return syncView{next: next}
	}
	var contents []string
	for _, e := range r.Timeline.Events {
		contents = append(contents, string(e.Content))
	}
	return syncView{next, ids(r.Timeline.Events), contents, r.Timeline.Limited, r.Timeline.PrevBatch, ids(r.State.Events)}
}

// TestRestartSameSync: the store answers the timeline of a woken sync from
// memory filled at commit; a restarted server, reading the database, must
// give the same tokens and events for the same since tokens, also when
// more events arrived than the timeline limit (limited, prev_batch, the
// state that changed in the gap) and after a redaction.
func TestRestartSameSync(t *testing.T) {
	reopenable(t, func(t *testing.T, open func() store.Store) {
		st := open()
		h := newHarness(t, st)
		r := h.createRoom("!room:test", alice)
		h.join(r.id, bob)
		for i := range 12 {
			h.msg(r.id, alice, fmt.Sprint("before ", i))
		}
		first, _ := h.sync(Request{UserID: bob})
		name := h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Gap"}})
		var msgs []store.EventRow
		for i := range 40 {
			msgs = append(msgs, h.msg(r.id, alice, fmt.Sprint("after ", i)))
		}
		mid, _ := h.sync(Request{UserID: bob, Since: first.NextBatch, Filter: timelineFilter(100)})
		red := h.send(r.id, alice, ev{typ: "m.room.redaction", content: map[string]any{}, redacts: msgs[38].EventID})
		for i := range 5 {
			msgs = append(msgs, h.msg(r.id, alice, fmt.Sprint("late ", i)))
		}

		reqs := []Request{
			{UserID: bob},
			{UserID: bob, Since: first.NextBatch},
			{UserID: bob, Since: first.NextBatch, Filter: timelineFilter(100)},
			{UserID: bob, Since: mid.NextBatch},
			{UserID: bob, Since: mid.NextBatch, Filter: timelineFilter(3)},
		}
		var before []syncView
		for _, req := range reqs {
			resp, js := h.sync(req)
			before = append(before, view(t, resp, js, r.id))
		}
		// Since the first sync, 46 events: limited to the default 10, the
		// name change of the gap as state.
		if v := before[1]; !v.limited || len(v.timeline) != DefaultTimelineLimit ||
			v.timeline[9] != msgs[len(msgs)-1].EventID || !slices.Equal(v.state, []string{name.EventID}) {
			t.Fatalf("limited incremental sync: %+v", v)
		}
		// The ten: after 36..39, the redaction, late 0..4; /messages goes
		// back from the first of them.
		if v := before[1]; v.timeline[0] != msgs[36].EventID || v.prevBatch != PrevBatchToken(msgs[36].Pos) {
			t.Fatalf("timeline starts at %s, prev_batch %s", v.timeline[0], v.prevBatch)
		}
		// With a limit above the count, the whole gap and not limited.
		if v := before[2]; v.limited || len(v.timeline) != 47 || len(v.state) != 0 {
			t.Fatalf("unlimited incremental sync: limited %v, %d events, state %v", v.limited, len(v.timeline), v.state)
		}
		if v := before[3]; v.limited || !slices.Contains(v.timeline, red.EventID) || len(v.timeline) != 6 {
			t.Fatalf("since mid: %+v", v)
		}
		if v := before[4]; !v.limited || len(v.timeline) != 3 {
			t.Fatalf("since mid, limit 3: %+v", v)
		}
		// The initial sync's timeline holds the redacted message, redacted.
		if i := slices.Index(before[0].timeline, msgs[38].EventID); i < 0 || before[0].contents[i] != "{}" {
			t.Fatalf("redacted message in the initial sync: %+v", before[0])
		}

		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		h2 := newHarness(t, open())
		for i, req := range reqs {
			resp, js := h2.sync(req)
			if got := view(t, resp, js, r.id); fmt.Sprint(got) != fmt.Sprint(before[i]) {
				t.Errorf("request %d after restart:\n got  %+v\n want %+v", i, got, before[i])
			}
		}
		// The redacted message is sent redacted on both sides.
		resp, js := h2.sync(Request{UserID: bob, Since: mid.NextBatch})
		_ = resp
		for _, e := range js.Rooms.Join[r.id].Timeline.Events {
			if e.EventID == msgs[38].EventID {
				t.Fatal("the redacted event is in the timeline after mid, but it was sent before")
			}
		}
	})
}
