package rooms

import (
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// TestDroppedTuples: a tuple the resolved state keeps no event of leaves
// the current state — one of the current state's, and the received
// event's own when the resolution kept none for it; tuples kept (by any
// event) and a non-state event drop nothing.
func TestDroppedTuples(t *testing.T) {
	st := func(id, typ, key string) *events.Event {
		return &events.Event{ID: id, Type: typ, StateKey: &key}
	}
	create, topic, name := st("$c", "m.room.create", ""), st("$t", "m.room.topic", ""), st("$n", "m.room.name", "")
	bob := st("$b", "m.room.member", "@bob:b.test")
	msg := &events.Event{ID: "$m", Type: "m.room.message"}
	newTopic := st("$t2", "m.room.topic", "")
	alias := st("$a", "m.room.canonical_alias", "")
	state := func(evs ...*events.Event) authrules.StateMap {
		m := authrules.StateMap{}
		for _, e := range evs {
			m[e.Tuple()] = e
		}
		return m
	}
	cur := state(create, topic, name, bob)
	for _, c := range []struct {
		name string
		next authrules.StateMap
		ev   *events.Event
		want []store.StateRef
	}{
		{"nothing dropped", state(create, topic, name, bob), msg, nil},
		{"a tuple kept by another event", state(create, newTopic, name, bob), newTopic, nil},
		{"topic and member dropped", state(create, name), msg, []store.StateRef{
			{Type: "m.room.member", StateKey: "@bob:b.test"}, {Type: "m.room.topic"},
		}},
		{"the event's own topic dropped too", state(create, name, bob), newTopic, []store.StateRef{{Type: "m.room.topic"}}},
		{"a new tuple the resolution refused", state(create, topic, name, bob), alias, []store.StateRef{{Type: "m.room.canonical_alias"}}},
	} {
		got := droppedTuples(cur, c.next, c.ev)
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
