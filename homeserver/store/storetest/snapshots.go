package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// testStateSnapshots: the state before and after each timeline event, on
// a linear history, for an event on another branch (StateBefore), after a
// resolution that keeps another event or drops a tuple (State), and
// across a chain long enough to be stored whole again.
func testStateSnapshots(t *testing.T, s store.Store) {
	ctx := context.Background()
	const room = "!snap:test"
	persist := persister(t, s)
	es := func(id string) store.EventState {
		t.Helper()
		st, err := s.EventState(ctx, id)
		if err != nil {
			t.Fatalf("EventState(%s): %v", id, err)
		}
		return st
	}
	state := func(snap int64) map[string]string {
		t.Helper()
		refs, err := s.Snapshot(ctx, snap)
		if err != nil {
			t.Fatalf("Snapshot(%d): %v", snap, err)
		}
		out := map[string]string{}
		for _, r := range refs {
			out[r.Type+"|"+r.StateKey] = r.EventID
		}
		return out
	}
	want := func(what string, got, want map[string]string) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
		}
	}

	persist(&store.EventBatch{
		NewRoom: &store.Room{RoomID: room, Version: "11", Creator: "@a:test", CreatedTS: 1},
		Events: []store.EventRow{
			ev(room, "$create", "m.room.create", sk(""), "@a:test"),
			member(room, "$join-a", "@a:test", "join"),
			ev(room, "$topic1", "m.room.topic", sk(""), "@a:test"),
			ev(room, "$m1", "m.room.message", nil, "@a:test"),
		},
	})
	want("before the create event", state(es("$create").Before), map[string]string{})
	base := map[string]string{"m.room.create|": "$create", "m.room.member|@a:test": "$join-a"}
	want("after the join", state(es("$join-a").After), base)
	withTopic1 := maps.Clone(base)
	withTopic1["m.room.topic|"] = "$topic1"
	want("after the topic", state(es("$topic1").After), withTopic1)
	if m := es("$m1"); m.Before != m.After || m.Before != es("$topic1").After {
		t.Fatalf("a message shares the state before it: %+v, topic %+v", m, es("$topic1"))
	}

	// $topic2 was sent on another branch, after $join-a; the resolution
	// keeps $topic1 as the current topic.
	fork := ev(room, "$topic2", "m.room.topic", sk(""), "@b:test")
	fork.StateBefore = &store.StateSpec{Base: es("$join-a").After}
	persist(&store.EventBatch{Events: []store.EventRow{fork}, State: []store.StateRef{{Type: "m.room.topic", StateKey: "", EventID: "$topic1"}}})
	want("before the fork", state(es("$topic2").Before), base)
	withTopic2 := maps.Clone(base)
	withTopic2["m.room.topic|"] = "$topic2"
	want("after the fork", state(es("$topic2").After), withTopic2)
	persist(&store.EventBatch{Events: []store.EventRow{ev(room, "$m2", "m.room.message", nil, "@a:test")}})
	want("after the resolution", state(es("$m2").Before), withTopic1)

	// A branch given whole, and a resolution that keeps no topic at all.
	whole := ev(room, "$name", "m.room.name", sk(""), "@b:test")
	whole.StateBefore = &store.StateSpec{Delta: []store.StateRef{{Type: "m.room.create", EventID: "$create"}}}
	persist(&store.EventBatch{Events: []store.EventRow{whole}, State: []store.StateRef{{Type: "m.room.topic"}}})
	want("after a branch given whole", state(es("$name").After), map[string]string{"m.room.create|": "$create", "m.room.name|": "$name"})
	persist(&store.EventBatch{Events: []store.EventRow{ev(room, "$m3", "m.room.message", nil, "@a:test")}})
	afterDrop := maps.Clone(base)
	afterDrop["m.room.name|"] = "$name"
	want("after a dropped tuple", state(es("$m3").Before), afterDrop)

	// A soft-failed topic keeps its states, the current state does not
	// change; brought into the timeline later, it keeps them.
	soft := store.OutlierRow{EventID: "$soft-topic", RoomID: room, Status: store.StatusSoftFailed, JSON: []byte(`{}`),
		Type: "m.room.topic", StateKey: sk(""), KeepState: true, StateBefore: &store.StateSpec{Base: es("$join-a").After}}
	if err := s.PutOutliers(ctx, []store.OutlierRow{soft}); err != nil {
		t.Fatal(err)
	}
	softAfter := maps.Clone(base)
	softAfter["m.room.topic|"] = "$soft-topic"
	want("after a soft-failed event", state(es("$soft-topic").After), softAfter)
	want("before a soft-failed event", state(es("$soft-topic").Before), base)
	kept := es("$soft-topic")
	persist(&store.EventBatch{Events: []store.EventRow{ev(room, "$m4", "m.room.message", nil, "@a:test")}})
	want("after a soft-failed event, the current state", state(es("$m4").Before), afterDrop)
	// One soft-failed against the current state shares its snapshot.
	if err := s.PutOutliers(ctx, []store.OutlierRow{{EventID: "$soft-name", RoomID: room, Status: store.StatusSoftFailed, JSON: []byte(`{}`),
		Type: "m.room.name", StateKey: sk(""), KeepState: true}}); err != nil {
		t.Fatal(err)
	}
	if got := es("$soft-name").Before; got != es("$m4").After {
		t.Fatalf("a soft-failed event against the current state: before %d, the current state's snapshot %d", got, es("$m4").After)
	}
	softName := maps.Clone(afterDrop)
	softName["m.room.name|"] = "$soft-name"
	want("after a soft-failed event against the current state", state(es("$soft-name").After), softName)
	persist(&store.EventBatch{Events: []store.EventRow{ev(room, "$soft-topic", "m.room.topic", sk(""), "@b:test")},
		State: []store.StateRef{{Type: "m.room.topic"}}})
	if es("$soft-topic") != kept {
		t.Fatalf("a soft-failed event's states changed when it joined the timeline: %+v, was %+v", es("$soft-topic"), kept)
	}

	// A long chain of joins: each state is still exact.
	members := maps.Clone(afterDrop)
	for i := range 260 {
		user := fmt.Sprintf("@u%d:test", i)
		id := fmt.Sprintf("$join-%d", i)
		persist(&store.EventBatch{Events: []store.EventRow{member(room, id, user, "join")}})
		members["m.room.member|"+user] = id
		if i%37 == 0 || i == 259 {
			want(fmt.Sprintf("after join %d", i), state(es(id).After), members)
		}
	}

	if _, err := s.EventState(ctx, "$nowhere"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EventState of an unknown event: %v", err)
	}
	if _, err := s.Snapshot(ctx, 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Snapshot of an unknown ID: %v", err)
	}
}

// testPast: the state a join brought stored before the room's timeline,
// backfilled history below it; neither is seen as new, backfilled state
// changes nothing of the room's state, and pages read the whole history
// in order.
func testPast(t *testing.T, s store.Store) {
	ctx := context.Background()
	const room = "!past:test"
	persist := persister(t, s)
	head := s.CurrentPos()
	past := func(e store.EventRow) store.EventRow { e.Past = true; return e }
	persist(&store.EventBatch{
		NewRoom: &store.Room{RoomID: room, Version: "11", Creator: "@a:remote", CreatedTS: 1},
		Events: []store.EventRow{
			past(ev(room, "$create", "m.room.create", sk(""), "@a:remote")),
			past(member(room, "$join-a", "@a:remote", "join")),
			past(ev(room, "$topic-new", "m.room.topic", sk(""), "@a:remote")),
			member(room, "$join-b", "@b:test", "join"),
		},
		Extremities: []string{"$join-b"},
	})
	if got := s.CurrentPos(); got != head+1 {
		t.Fatalf("the stream moved by %d for one event at its head", got-head)
	}
	persist(&store.EventBatch{Backfill: true, Events: []store.EventRow{
		ev(room, "$m1", "m.room.message", nil, "@a:remote"),
		ev(room, "$topic-old", "m.room.topic", sk(""), "@a:remote"),
		ev(room, "$m2", "m.room.message", nil, "@a:remote"),
	}})
	persist(&store.EventBatch{Backfill: true, Events: []store.EventRow{ev(room, "$m0", "m.room.message", nil, "@a:remote")}})
	persist(&store.EventBatch{Events: []store.EventRow{ev(room, "$m3", "m.room.message", nil, "@b:test")}})

	rows, err := s.RoomEvents(ctx, room, math.MinInt64, s.CurrentPos()+1, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range rows {
		order = append(order, r.EventID)
		past := r.Pos < 0
		if past != (r.EventID != "$join-b" && r.EventID != "$m3") {
			t.Fatalf("%s at %d", r.EventID, r.Pos)
		}
		if strings.HasPrefix(r.EventID, "$m") && r.EventID != "$m3" && r.Pos >= store.BackfillTop {
			t.Fatalf("backfilled %s at %d, above %d", r.EventID, r.Pos, store.BackfillTop)
		}
	}
	want := []string{"$m0", "$m1", "$topic-old", "$m2", "$create", "$join-a", "$topic-new", "$join-b", "$m3"}
	if !slices.Equal(order, want) {
		t.Fatalf("history %v, want %v", order, want)
	}
	if got := s.CurrentPos(); got != head+2 {
		t.Fatalf("backfill moved the stream: %d", got-head)
	}
	cur, err := s.CurrentState(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cur {
		if r.EventID == "$topic-old" {
			t.Fatal("a backfilled topic is in the current state")
		}
	}
	if len(cur) != 4 {
		t.Fatalf("current state %d events, want 4", len(cur))
	}
	topicAt := func(pos int64) string {
		t.Helper()
		rows, err := s.StateAt(ctx, room, pos)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Type == "m.room.topic" {
				return r.EventID
			}
		}
		return ""
	}
	if got := topicAt(s.CurrentPos()); got != "$topic-new" {
		t.Fatalf("topic now %q", got)
	}
	if got := topicAt(rows[2].Pos); got != "$topic-old" {
		t.Fatalf("topic in the backfilled past %q", got)
	}
	if st, err := s.EventState(ctx, "$join-b"); err != nil || st.Before == 0 {
		t.Fatalf("the join's state: %+v, %v", st, err)
	} else if refs, err := s.Snapshot(ctx, st.Before); err != nil || len(refs) != 3 {
		t.Fatalf("the state before the join: %v, %v", refs, err)
	}
	if _, err := s.EventState(ctx, "$m1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a backfilled event has states: %v", err)
	}
	hist, err := s.StateHistory(ctx, room, "m.room.topic", "")
	if err != nil || len(hist) != 2 || hist[0].EventID != "$topic-old" || hist[1].EventID != "$topic-new" {
		t.Fatalf("topic history %v, %v", hist, err)
	}

	// Backfill reaches the join's state: its events move into the
	// history, and stay the room's state.
	persist(&store.EventBatch{Backfill: true, Events: []store.EventRow{
		ev(room, "$create", "m.room.create", sk(""), "@a:remote"),
		member(room, "$join-a", "@a:remote", "join"),
		ev(room, "$m-1", "m.room.message", nil, "@a:remote"),
	}})
	rows, err = s.RoomEvents(ctx, room, math.MinInt64, store.BackfillTop, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	order = order[:0]
	for _, r := range rows {
		order = append(order, r.EventID)
	}
	if want := []string{"$create", "$join-a", "$m-1", "$m0", "$m1", "$topic-old", "$m2"}; !slices.Equal(order, want) {
		t.Fatalf("history after the join's state moved %v, want %v", order, want)
	}
	if cur, err := s.CurrentState(ctx, room); err != nil || len(cur) != 4 {
		t.Fatalf("current state after the move: %d events, %v", len(cur), err)
	}
	if got := topicAt(s.CurrentPos()); got != "$topic-new" {
		t.Fatalf("topic now %q after the move", got)
	}
	ms, err := s.RoomMemberships(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.UserID == "@a:remote" && (m.EventID != "$join-a" || m.Pos >= store.BackfillTop) {
			t.Fatalf("a's membership after the move: %+v", m)
		}
	}
}
