package authrules

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// FuzzParsePowerLevels: ParsePowerLevels never panics, fails only with
// ErrInvalidPowerLevels, and what it accepts reads back in range and may
// always be re-sent unchanged by its most powerful user.
func FuzzParsePowerLevels(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"ban":50,"users":{"@a:b":100},"events":{"m.room.name":50},"notifications":{"room":20}}`,
		`{"ban":"50"}`,
		`{"ban":" +0050 ","users":{"@a:b":"-7"},"events":{"x":"\u00a01"}}`,
		`{"kick":"9007199254740991","invite":"-"}`,
		`{"kick":5e1,"redact":50.0,"invite":-0}`,
		`{"users":{"@a:":1,"b":2}}`,
		`{"users_default":9007199254740991,"events_default":-9007199254740991}`,
		`{"state_default":9007199254740992}`,
		`{"users":null,"events":[],"notifications":"x"}`,
		`null`, `[]`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		for _, v := range versions {
			pl, err := ParsePowerLevels(v, json.RawMessage(content))
			if err != nil {
				if !errors.Is(err, ErrInvalidPowerLevels) {
					t.Fatalf("ParsePowerLevels(%q): %v, not ErrInvalidPowerLevels", content, err)
				}
				continue
			}
			levels := []int64{
				pl.UsersDefault(), pl.EventsDefault(), pl.StateDefault(),
				pl.Ban(), pl.Kick(), pl.Redact(), pl.Invite(), pl.Notification("room"),
			}
			top := int64(-maxSafeInteger)
			admin := "@fuzz:example.org"
			for u, n := range pl.users {
				levels = append(levels, n)
				if !isUserID(u) {
					t.Fatalf("accepted users key %q", u)
				}
				if n >= top {
					top, admin = n, u
				}
			}
			for _, n := range levels {
				if n > maxSafeInteger || n < -maxSafeInteger {
					t.Fatalf("level %d out of range from %q", n, content)
				}
			}
			if _, ok := pl.users[admin]; !ok {
				continue // nobody listed: no one to re-send it as
			}
			// Re-sending the same content changes nothing, so rule 9 allows it.
			if err := checkPowerLevelsChange(admin, pl.UserLevel(admin), pl, pl, true); err != nil {
				t.Fatalf("unchanged power levels refused: %v", err)
			}
		}
	})
}

// FuzzCreateContent: the create event rules never panic on any content,
// and when they accept a v12 create event its creators are its sender
// followed by distinct user IDs, each with InfiniteLevel.
func FuzzCreateContent(f *testing.F) {
	for _, seed := range []string{
		`{"room_version":"12"}`,
		`{"room_version":"12","additional_creators":["@b:c","@a:b","@b:c"]}`,
		`{"room_version":"12","additional_creators":[1,"@b:c"]}`,
		`{"room_version":"12","additional_creators":{"@b:c":1}}`,
		`{"room_version":"10","creator":"@a:b"}`,
		`{"room_version":"12","additional_creators":null}`,
		`[]`, `null`, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		for _, v := range versions {
			ev := &events.Event{Version: v, ID: "$c", RoomID: "!c:a.b", Sender: "@a:a.b", Type: typeCreate,
				StateKey: sk(""), Content: json.RawMessage(content)}
			if HasPrivilegedCreators(v) {
				ev.RoomID = "!c"
			}
			if err := Allowed(ev, StateMap{}); err != nil {
				if !errors.Is(err, ErrForbidden) {
					t.Fatalf("Allowed: %v", err)
				}
				continue
			}
			creators := Creators(v, ev)
			st := StateMap{ev.Tuple(): ev}
			pl, err := CurrentPowerLevels(v, st)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range creators {
				if !events.ValidUserID(c) && !(i == 0 && v.CreatorInContent()) {
					t.Fatalf("creator %q", c)
				}
				if HasPrivilegedCreators(v) && pl.UserLevel(c) != InfiniteLevel {
					t.Fatalf("creator %s at %d", c, pl.UserLevel(c))
				}
				if slices.Index(creators, c) != i {
					t.Fatalf("creator %s twice in %v", c, creators)
				}
			}
			if !v.CreatorInContent() && (len(creators) == 0 || creators[0] != ev.Sender) {
				t.Fatalf("creators %v do not start with the sender", creators)
			}
		}
	})
}
