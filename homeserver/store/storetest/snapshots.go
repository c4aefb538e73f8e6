package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
	persist := func(b *store.EventBatch) {
		t.Helper()
		if _, err := s.PersistEvents(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
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
		Type: "m.room.topic", StateKey: sk(""), StateBefore: &store.StateSpec{Base: es("$join-a").After}}
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
