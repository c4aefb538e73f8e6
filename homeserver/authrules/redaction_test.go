package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// TestRedactionApplies is "Handling redactions": the redact level, or the
// same server as the original sender.
func TestRedactionApplies(t *testing.T) {
	pl, err := ParsePowerLevels(events.RoomV11, json.RawMessage(`{"users":{"@alice:a.test":100,"@mod:b.test":50}}`))
	if err != nil {
		t.Fatal(err)
	}
	table := []struct {
		name      string
		redactor  string
		author    string
		redacts   string // "" for the original's ID
		inContent bool   // v11: redacts only in content
		room      string
		want      bool
	}{
		{"own_event", bob, bob, "", false, roomID, true},
		{"same_server_other_user", pleb, bob, "", false, roomID, true},
		{"other_server_no_power", carol, bob, "", false, roomID, false},
		{"other_server_with_power", alice, bob, "", false, roomID, true},
		{"moderator_at_redact_level", mod, carol, "", false, roomID, true},
		{"wrong_target", alice, bob, "$other", false, roomID, false},
		{"redacts_only_in_content", alice, bob, "", true, roomID, true},
		{"other_room", alice, bob, "", false, "!other:a.test", false},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			orig := &events.Event{Version: "11", ID: "$orig", RoomID: roomID, Sender: tc.author, Type: "m.room.message"}
			target := orig.ID
			if tc.redacts != "" {
				target = tc.redacts
			}
			red := &events.Event{Version: "11", ID: "$red", RoomID: tc.room, Sender: tc.redactor, Type: typeRedaction,
				Redacts: target, Content: json.RawMessage(fmt.Sprintf(`{"redacts":%q}`, target))}
			if tc.inContent {
				red.Redacts = ""
			}
			err := RedactionApplies(red, orig, pl)
			if tc.want && err != nil {
				t.Fatalf("RedactionApplies: %v", err)
			}
			if !tc.want && !errors.Is(err, ErrForbidden) {
				t.Fatalf("RedactionApplies: %v, want ErrForbidden", err)
			}
		})
	}
	t.Run("not_a_redaction", func(t *testing.T) {
		orig := &events.Event{Version: "11", ID: "$orig", RoomID: roomID, Sender: bob}
		ev := &events.Event{Version: "11", RoomID: roomID, Sender: bob, Type: "m.room.message", Redacts: "$orig"}
		if err := RedactionApplies(ev, orig, pl); !errors.Is(err, ErrForbidden) {
			t.Fatalf("RedactionApplies: %v, want ErrForbidden", err)
		}
	})
	t.Run("v10_ignores_content_redacts", func(t *testing.T) {
		orig := &events.Event{Version: "10", ID: "$orig", RoomID: roomID, Sender: bob}
		ev := &events.Event{Version: "10", RoomID: roomID, Sender: bob, Type: typeRedaction, Content: json.RawMessage(`{"redacts":"$orig"}`)}
		if err := RedactionApplies(ev, orig, pl); !errors.Is(err, ErrForbidden) {
			t.Fatalf("RedactionApplies: %v, want ErrForbidden", err)
		}
	})
}

// TestCanRedact is the client send path: own events, or the redact level.
func TestCanRedact(t *testing.T) {
	pl, err := ParsePowerLevels(events.RoomV10, json.RawMessage(`{"users":{"@mod:b.test":50,"@mod2:b.test":49}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sender, author string
		want                 bool
	}{
		{"own_event", bob, bob, true},
		{"same_server_other_user", pleb, bob, false},
		{"at_redact_level", mod, bob, true},
		{"below_redact_level", mod2, bob, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CanRedact(tc.sender, &events.Event{ID: "$orig", Sender: tc.author}, pl)
			if tc.want && err != nil {
				t.Fatalf("CanRedact: %v", err)
			}
			if !tc.want && !errors.Is(err, ErrForbidden) {
				t.Fatalf("CanRedact: %v, want ErrForbidden", err)
			}
		})
	}
}
