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
