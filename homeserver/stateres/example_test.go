package stateres_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/stateres"
)

// memory is a Source over a map; a real one reads the store.
type memory map[string]*events.Event

func (m memory) Event(_ context.Context, id string) (*events.Event, error) {
	if ev, ok := m[id]; ok {
		return ev, nil
	}
	return nil, fmt.Errorf("%w: %s", stateres.ErrMissingEvent, id)
}

func (memory) Rejected(string) bool { return false }

// Two servers set the topic at the same time; both states hold the room's
// creation and alice's join and power levels.
func ExampleResolve() {
	m := memory{}
	add := func(id, typ, key, content string, ts int64, auth ...string) {
		m[id] = &events.Event{Version: events.RoomV11, ID: id, RoomID: "!r:a.test", Sender: "@alice:a.test",
			Type: typ, StateKey: &key, Content: json.RawMessage(content), OriginServerTS: ts, AuthEvents: auth}
	}
	add("$create", "m.room.create", "", `{"room_version":"11"}`, 1)
	add("$join", "m.room.member", "@alice:a.test", `{"membership":"join"}`, 2, "$create")
	add("$pl", "m.room.power_levels", "", `{"users":{"@alice:a.test":100}}`, 3, "$create", "$join")
	add("$t1", "m.room.topic", "", `{"topic":"from one server"}`, 10, "$create", "$join", "$pl")
	add("$t2", "m.room.topic", "", `{"topic":"from the other"}`, 11, "$create", "$join", "$pl")

	state := func(topic string) stateres.StateSet {
		s := stateres.StateSet{}
		for _, id := range []string{"$create", "$join", "$pl", topic} {
			s[m[id].Tuple()] = id
		}
		return s
	}
	got, err := stateres.Resolve(context.Background(), events.RoomV11,
		[]stateres.StateSet{state("$t1"), state("$t2")}, m, stateres.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got[events.StateTuple{Type: "m.room.topic"}])
	// Output: $t2
}
