package sync

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	alice = "@alice:test"
	bob   = "@bob:test"
	carol = "@carol:test"
	dave  = "@dave:test"
)

func TestInitialSyncShape(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		h.join(r.id, bob)
		var msgs []string
		for i := range 3 {
			msgs = append(msgs, h.msg(r.id, alice, "hello "+string(rune('a'+i))).EventID)
		}
		resp, js := h.sync(Request{UserID: alice, DeviceID: "DEV"})
		if resp.NextBatch != (StreamToken{Pos: h.st.CurrentPos(), Typing: h.ty.current()}).String() {
			t.Fatalf("next_batch %q, head %d", resp.NextBatch, h.st.CurrentPos())
		}
		for _, k := range []string{"next_batch", "rooms", "presence", "account_data", "to_device", "device_lists",
			"device_one_time_keys_count", "device_unused_fallback_key_types"} {
			if _, ok := js.raw[k]; !ok {
				t.Errorf("response lacks %s", k)
			}
		}
		room, ok := js.Rooms.Join[r.id]
		if !ok {
			t.Fatalf("room not in join: %s", mustJSON(t, resp))
		}
		// Everything fits in the default limit of 10: 4 creation events,
		// bob's join and 3 messages.
		tl := room.Timeline.Events
		if len(tl) != 8 || room.Timeline.Limited {
			t.Fatalf("timeline %v limited %v", types(tl), room.Timeline.Limited)
		}
		if !slices.Equal(ids(tl[5:]), msgs) {
			t.Fatalf("messages %v, want %v", ids(tl[5:]), msgs)
		}
		if len(room.State.Events) != 0 {
			t.Fatalf("state before the first event: %v", types(room.State.Events))
		}
		e := tl[7]
		if e.RoomID != r.id || e.Sender != alice || e.Type != "m.room.message" || !strings.Contains(string(e.Content), "hello c") {
			t.Fatalf("client event %+v", e)
		}
		if _, ok := e.Unsigned["age"]; !ok {
			t.Fatalf("no age in %v", e.Unsigned)
		}
		if room.Timeline.PrevBatch != PrevBatchToken(1) {
			t.Fatalf("prev_batch %q", room.Timeline.PrevBatch)
		}
		var sum struct {
			Heroes  []string `json:"m.heroes"`
			Joined  int      `json:"m.joined_member_count"`
			Invited int      `json:"m.invited_member_count"`
		}
		if err := json.Unmarshal(mustJSON(t, room.Summary), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Joined != 2 || sum.Invited != 0 || !slices.Equal(sum.Heroes, []string{bob}) {
			t.Fatalf("summary %+v", sum)
		}
		for _, k := range []string{"state", "timeline", "ephemeral", "account_data", "summary"} {
			if _, ok := js.raw["rooms"]; !ok || !strings.Contains(string(mustJSON(t, resp.Rooms.Join[r.id])), `"`+k+`"`) {
				t.Errorf("joined room lacks %s", k)
			}
		}
		raw := string(mustJSON(t, resp))
		for _, want := range []string{`"device_one_time_keys_count":{"signed_curve25519":0}`, `"device_unused_fallback_key_types":[]`,
			`"device_lists":{"changed":[],"left":[]}`, `"presence":{"events":[]}`, `"invite":{}`, `"leave":{}`} {
			if !strings.Contains(raw, want) {
				t.Errorf("response lacks %s: %s", want, raw)
			}
		}
	})
}

func TestIncrementalOnlyNew(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		r2 := h.createRoom("!other:test", alice)
		h.msg(r.id, alice, "old")
		first, _ := h.sync(Request{UserID: alice})
		m1 := h.msg(r.id, alice, "new 1")
		m2 := h.msg(r.id, alice, "new 2")
		resp, js := h.sync(Request{UserID: alice, Since: first.NextBatch})
		if _, ok := js.Rooms.Join[r2.id]; ok {
			t.Fatal("unchanged room in incremental sync")
		}
		room := js.Rooms.Join[r.id]
		if got := ids(room.Timeline.Events); !slices.Equal(got, []string{m1.EventID, m2.EventID}) || room.Timeline.Limited {
			t.Fatalf("timeline %v limited %v", got, room.Timeline.Limited)
		}
		if len(room.State.Events) != 0 {
			t.Fatalf("state in unlimited incremental: %v", types(room.State.Events))
		}
		// Nothing new: an empty response at once with timeout 0.
		again, js := h.sync(Request{UserID: alice, Since: resp.NextBatch})
		if len(js.Rooms.Join) != 0 || again.NextBatch != resp.NextBatch {
			t.Fatalf("empty sync: %s", mustJSON(t, again))
		}
	})
}

func TestLimitedAndPrevBatch(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		var msgs []int64
		for range 15 {
			msgs = append(msgs, h.msg(r.id, alice, "m").Pos)
		}
		resp, js := h.sync(Request{UserID: alice, Filter: timelineFilter(5)})
		room := js.Rooms.Join[r.id]
		if len(room.Timeline.Events) != 5 || !room.Timeline.Limited {
			t.Fatalf("timeline %d limited %v", len(room.Timeline.Events), room.Timeline.Limited)
		}
		if room.Timeline.PrevBatch != PrevBatchToken(msgs[10]) {
			t.Fatalf("prev_batch %q, want t%d", room.Timeline.PrevBatch, msgs[10])
		}
		if b, err := MessagesBound(room.Timeline.PrevBatch); err != nil || b != msgs[10] {
			t.Fatalf("bound %d %v", b, err)
		}
		// The state at the start of the timeline: all four creation events.
		if got := types(room.State.Events); len(got) != 4 {
			t.Fatalf("state %v", got)
		}

		// Incremental, limited: the name change in the gap comes as state.
		name := h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Gap"}})
		for range 7 {
			h.msg(r.id, alice, "more")
		}
		_, js = h.sync(Request{UserID: alice, Since: resp.NextBatch, Filter: timelineFilter(5)})
		room = js.Rooms.Join[r.id]
		if len(room.Timeline.Events) != 5 || !room.Timeline.Limited {
			t.Fatalf("incremental timeline %d limited %v", len(room.Timeline.Events), room.Timeline.Limited)
		}
		if got := ids(room.State.Events); !slices.Equal(got, []string{name.EventID}) {
			t.Fatalf("gap state %v", types(room.State.Events))
		}
	})
}

func TestFullStateAndStateAtTimelineStart(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	old := h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Old"}})
	for range 5 {
		h.msg(r.id, alice, "m")
	}
	h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "New"}})
	h.msg(r.id, alice, "last")
	resp, js := h.sync(Request{UserID: alice, Filter: timelineFilter(2)})
	room := js.Rooms.Join[r.id]
	// The timeline holds the new name; the state holds the old one.
	var stateName string
	for _, e := range room.State.Events {
		if e.Type == "m.room.name" {
			stateName = e.EventID
		}
	}
	if stateName != old.EventID || room.Timeline.Events[0].Type != "m.room.name" {
		t.Fatalf("state %v timeline %v", types(room.State.Events), types(room.Timeline.Events))
	}
	if _, ok := room.Summary["m.heroes"]; ok {
		t.Fatal("heroes for a named room")
	}
	// full_state on an incremental sync with nothing new: every joined room
	// with its full state, an empty timeline, no waiting.
	start := time.Now()
	_, js = h.sync(Request{UserID: alice, Since: resp.NextBatch, FullState: true, Timeout: time.Minute})
	if time.Since(start) > 5*time.Second {
		t.Fatal("full_state waited")
	}
	room = js.Rooms.Join[r.id]
	if len(room.Timeline.Events) != 0 || len(room.State.Events) != 5 {
		t.Fatalf("full_state: timeline %v state %v", types(room.Timeline.Events), types(room.State.Events))
	}
}
