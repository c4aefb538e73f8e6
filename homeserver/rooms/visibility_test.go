package rooms

import (
	"strconv"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// history builds a Reader from a user's memberships and the room's
// history_visibility changes, each written "value@pos".
func history(members []string, vis []string) *Reader {
	r := &Reader{UserID: "@u:t", RoomID: "!r:t"}
	split := func(s string) (string, int64) {
		v, p, _ := strings.Cut(s, "@")
		pos, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			panic(s)
		}
		return v, pos
	}
	for _, m := range members {
		mem, pos := split(m)
		r.members = append(r.members, store.EventRow{Membership: mem, Pos: pos})
	}
	for _, v := range vis {
		hv, pos := split(v)
		r.vis = append(r.vis, store.EventRow{Pos: pos, JSON: []byte(`{"content":{"history_visibility":"` + hv + `"}}`)})
	}
	r.parseVisibility()
	return r
}

// TestStateWindow: which state a user may see (StateBound) and where a
// look back at an older position starts (FirstReadableState).
func TestStateWindow(t *testing.T) {
	const now = 100
	for name, tc := range map[string]struct {
		members, vis []string
		bound        int64
		from         map[int64]int64 // asked position → position served
	}{
		"joined, joined visibility": {
			members: []string{"join@20"}, vis: []string{"joined@5"}, bound: now,
			from: map[int64]int64{0: 0, 4: 4, 5: 20, 19: 20, 20: 20, 50: 50, 200: now},
		},
		"joined, shared visibility": {
			members: []string{"join@20"}, vis: []string{"shared@5"}, bound: now,
			from: map[int64]int64{1: 1, 10: 10, 50: 50},
		},
		"left a joined-visibility room": {
			members: []string{"join@20", "leave@40"}, vis: []string{"joined@5"}, bound: 40,
			from: map[int64]int64{10: 20, 30: 30, 39: 39, 40: 40, 90: 40},
		},
		"invited, never joined":         {members: []string{"invite@30"}, vis: []string{"joined@5"}, bound: 0},
		"invite rejected, never joined": {members: []string{"invite@30", "leave@35"}, vis: []string{"shared@5"}, bound: 0},
		"re-invited former member": {
			members: []string{"join@20", "leave@40", "invite@60"}, vis: []string{"joined@5"}, bound: 40,
			from: map[int64]int64{10: 20, 70: 40},
		},
		"world_readable, never joined": {vis: []string{"world_readable@5"}, bound: now, from: map[int64]int64{1: 5, 50: 50}},
		"kicked then banned":           {members: []string{"join@20", "leave@30", "ban@31"}, vis: []string{"joined@5"}, bound: 30},
	} {
		t.Run(name, func(t *testing.T) {
			r := history(tc.members, tc.vis)
			bound := r.StateBound(now)
			if bound != tc.bound {
				t.Fatalf("StateBound = %d, want %d", bound, tc.bound)
			}
			for asked, want := range tc.from {
				if got := r.FirstReadableState(asked, bound); got != want {
					t.Errorf("FirstReadableState(%d) = %d, want %d", asked, got, want)
				}
			}
		})
	}
}

// TestCanReadByVisibility: which events a user may read under each history
// visibility in force when the event was sent, with visibility changes
// and membership changes interleaved (the rules of the Client-Server API,
// "History visibility"); the visibility is parsed once per Reader.
func TestCanReadByVisibility(t *testing.T) {
	// Visibility: shared from 5, joined from 30, invited from 50,
	// world_readable from 70, junk (read as shared) from 90. The user is
	// invited at 40, joins at 60, leaves at 80.
	r := history([]string{"invite@40", "join@60", "leave@80"},
		[]string{"shared@5", "joined@30", "invited@50", "world_readable@70", "bogus@90"})
	for pos, want := range map[int64]bool{
		3:  true,  // before any visibility: shared, and the user joined later
		10: true,  // shared, joined later
		35: false, // joined, not joined then
		45: false, // joined, only invited then
		55: true,  // invited, and invited then
		65: true,  // joined then
		75: true,  // world_readable
		85: true,  // still world_readable (until 90)
		95: false, // bogus reads as shared: left
	} {
		if got := r.CanRead(store.EventRow{Pos: pos, Type: "m.room.message", Sender: "@o:t"}); got != want {
			t.Errorf("event at %d: CanRead %v, want %v", pos, got, want)
		}
	}
	if !r.SeesCurrentState(75) || r.SeesCurrentState(100) {
		t.Errorf("SeesCurrentState: world_readable at 75 and not after the bogus value at 90")
	}
}
