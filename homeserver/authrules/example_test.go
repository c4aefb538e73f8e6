package authrules_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

func stateEvent(id, sender, typ, stateKey, content string) *events.Event {
	return &events.Event{
		Version: events.RoomV11, ID: id, RoomID: "!r:example.org", Sender: sender,
		Type: typ, StateKey: &stateKey, Content: json.RawMessage(content),
	}
}

// The rooms layer keeps current state as a map; StateMap converts it
// without copying. AuthEventTuples says which of it a new event cites.
func ExampleAllowed() {
	const alice, bob = "@alice:example.org", "@bob:example.org"
	roomState := map[events.StateTuple]*events.Event{}
	for _, ev := range []*events.Event{
		stateEvent("$create", alice, "m.room.create", "", `{"room_version":"11"}`),
		stateEvent("$alice", alice, "m.room.member", alice, `{"membership":"join"}`),
		stateEvent("$pl", alice, "m.room.power_levels", "", `{"users":{"@alice:example.org":100}}`),
		stateEvent("$jr", alice, "m.room.join_rules", "", `{"join_rule":"public"}`),
		stateEvent("$bob", bob, "m.room.member", bob, `{"membership":"join"}`),
	} {
		roomState[ev.Tuple()] = ev
	}
	st := authrules.StateMap(roomState)

	topic := stateEvent("$topic", bob, "m.room.topic", "", `{"topic":"hello"}`)
	for _, t := range authrules.AuthEventTuples(topic.Version, topic.Type, topic.StateKey, topic.Sender, topic.Content) {
		if ev := roomState[t]; ev != nil {
			topic.AuthEvents = append(topic.AuthEvents, ev.ID)
		}
	}
	fmt.Println("auth events:", topic.AuthEvents)

	err := authrules.Allowed(topic, st)
	fmt.Println(errors.Is(err, authrules.ErrForbidden), err)

	adminTopic := stateEvent("$topic2", alice, "m.room.topic", "", `{"topic":"hello"}`)
	fmt.Println(authrules.Allowed(adminTopic, st))
	// Output:
	// auth events: [$create $pl $bob]
	// true forbidden: sender's power level 0 is below 50 required for m.room.topic
	// <nil>
}
