package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// TestCreate is rule 1, which v11 changed by dropping the creator check.
func TestCreate(t *testing.T) {
	table := []struct {
		name    string
		version events.RoomVersion
		sender  string
		roomID  string
		prev    []string
		content string
		want    bool
	}{
		{"v10_valid", "10", alice, roomID, nil, `{"creator":"@alice:a.test","room_version":"10"}`, true},
		{"v10_without_creator", "10", alice, roomID, nil, `{"room_version":"10"}`, false},
		{"v10_creator_need_not_be_sender", "10", alice, roomID, nil, `{"creator":"@bob:b.test","room_version":"10"}`, true},
		{"v11_without_creator", "11", alice, roomID, nil, `{"room_version":"11"}`, true},
		{"v11_with_creator", "11", alice, roomID, nil, `{"creator":"@alice:a.test","room_version":"11"}`, true},
		{"v11_with_other_keys", "11", alice, roomID, nil, `{"room_version":"11","m.federate":false,"type":"m.space"}`, true},
		{"v10_prev_events", "10", alice, roomID, []string{"$x"}, `{"creator":"@alice:a.test","room_version":"10"}`, false},
		{"v11_prev_events", "11", alice, roomID, []string{"$x"}, `{"room_version":"11"}`, false},
		{"v10_sender_on_other_server", "10", bob, roomID, nil, `{"creator":"@bob:b.test","room_version":"10"}`, false},
		{"v11_sender_on_other_server", "11", bob, roomID, nil, `{"room_version":"11"}`, false},
		{"v11_sender_without_server", "11", "@alice", "!room", nil, `{"room_version":"11"}`, false},
		{"v11_unknown_room_version", "11", alice, roomID, nil, `{"room_version":"9999"}`, false},
		{"v11_room_version_not_string", "11", alice, roomID, nil, `{"room_version":11}`, false},
		{"v10_room_version_mismatch", "10", alice, roomID, nil, `{"creator":"@alice:a.test","room_version":"11"}`, false},
		{"v11_no_room_version", "11", alice, roomID, nil, `{}`, false},
		// No room_version means version 1, right for a v1 room only.
		{"v1_no_room_version", "1", alice, roomID, nil, `{"creator":"@alice:a.test"}`, true},
		{"v2_no_room_version", "2", alice, roomID, nil, `{"creator":"@alice:a.test"}`, false},
		{"v11_content_not_object", "11", alice, roomID, nil, `[]`, false},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events.Event{
				Version: tc.version, ID: "$create", RoomID: tc.roomID, Sender: tc.sender,
				Type: typeCreate, StateKey: sk(""), Content: json.RawMessage(tc.content), PrevEvents: tc.prev,
			}
			// The create event is checked against nothing.
			check(t, ev, StateMap{}, tc.want)
		})
	}
	t.Run("unsupported_version", func(t *testing.T) {
		ev := &events.Event{Version: "13", RoomID: roomID, Sender: alice, Type: typeCreate, StateKey: sk(""),
			Content: json.RawMessage(`{"creator":"@alice:a.test","room_version":"13"}`)}
		err := Allowed(ev, StateMap{})
		if !errors.Is(err, ErrUnsupportedRoomVersion) || errors.Is(err, ErrForbidden) {
			t.Fatalf("Allowed(v13): %v, want ErrUnsupportedRoomVersion only", err)
		}
	})
}

// TestCreateInAuthState is rule 2.4 seen from Allowed: other events need
// the room's create event.
func TestCreateInAuthState(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s/no_create_event", v), func(t *testing.T) {
			f := newRoom(t, v)
			delete(f.st, events.StateTuple{Type: typeCreate})
			check(t, f.ev("m.room.message", alice, nil, `{}`), f.st, false)
		})
		t.Run(fmt.Sprintf("v%s/create_of_another_room", v), func(t *testing.T) {
			f := newRoom(t, v)
			f.create.RoomID = "!other:a.test"
			f.create.ID = "$other" // names the room from v12
			check(t, f.ev("m.room.message", alice, nil, `{}`), f.st, false)
		})
	}
}

// TestFederate is rule 3: m.federate false keeps out users of other
// servers than the creator's.
func TestFederate(t *testing.T) {
	table := []struct {
		name     string
		federate string // raw JSON, "" to omit
		ev       func(f *fixture) *events.Event
		want     bool
	}{
		{"false_local_message", "false", func(f *fixture) *events.Event { return f.ev("m.room.message", alice, nil, `{}`) }, true},
		{"false_remote_message", "false", func(f *fixture) *events.Event { return f.ev("m.room.message", mod, nil, `{}`) }, false},
		{"false_remote_join", "false", func(f *fixture) *events.Event { return f.member(carol, carol, MembershipJoin) }, false},
		{"false_local_invites_remote", "false", func(f *fixture) *events.Event { return f.member(alice, carol, MembershipInvite) }, true},
		{"true_remote_message", "true", func(f *fixture) *events.Event { return f.ev("m.room.message", mod, nil, `{}`) }, true},
		{"absent_remote_message", "", func(f *fixture) *events.Event { return f.ev("m.room.message", mod, nil, `{}`) }, true},
		{"not_boolean_remote_message", `"false"`, func(f *fixture) *events.Event { return f.ev("m.room.message", mod, nil, `{}`) }, true},
	}
	t.Run("false_with_spaces", func(t *testing.T) {
		f := newRoom(t, events.RoomV11)
		f.create.Content = json.RawMessage(`{"room_version":"11", "m.federate" :  false }`)
		check(t, f.ev("m.room.message", mod, nil, `{}`), f.st, false)
	})
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				f.setJoinRule(JoinRulePublic)
				var c map[string]json.RawMessage
				_ = json.Unmarshal(f.create.Content, &c)
				if tc.federate != "" {
					c["m.federate"] = json.RawMessage(tc.federate)
				}
				f.create.Content, _ = json.Marshal(c)
				check(t, tc.ev(f), f.st, tc.want)
			})
		}
	}
}
