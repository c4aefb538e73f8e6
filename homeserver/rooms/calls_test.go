package rooms

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
)

func TestOwnsCallMemberKey(t *testing.T) {
	for _, tc := range []struct {
		sender, key string
		want        bool
	}{
		{"@alice:hs", "_@alice:hs_DEV_m.call", true},
		{"@alice:hs", "@alice:hs_DEV_m.call", true},
		{"@alice:hs", "@alice:hs", true},
		{"@alice:hs", "_@bob:hs_DEV_m.call", false},
		{"@alice:hs", "@bob:hs_DEV", false},
		{"@alice:hs", "_@alice:hs.evil_DEV", false},
		{"@alice:hs", "@alice:hs2_DEV", false},
		{"@alice:hs", "", false},
		{"@alice:hs", "_@alice:h", false},
	} {
		if got := OwnsCallMemberKey(tc.sender, tc.key); got != tc.want {
			t.Errorf("OwnsCallMemberKey(%q, %q) = %v", tc.sender, tc.key, got)
		}
	}
}

func TestActiveCallMembers(t *testing.T) {
	now := time.UnixMilli(10_000_000)
	mk := func(content any) *events.Event {
		b, _ := json.Marshal(content)
		k := "_@a:hs_DEV_m.call"
		return &events.Event{Sender: "@a:hs", StateKey: &k, Content: b, OriginServerTS: 9_000_000}
	}
	cases := []struct {
		name    string
		content any
		want    int
	}{
		{"live", map[string]any{"application": "m.call", "device_id": "DEV", "created_ts": 9_500_000, "expires": 14_400_000}, 1},
		{"expired", map[string]any{"application": "m.call", "device_id": "DEV", "created_ts": 1_000, "expires": 1_000}, 0},
		{"expired from origin ts", map[string]any{"application": "m.call", "device_id": "DEV", "expires": 500_000}, 0},
		{"left", map[string]any{}, 0},
		{"left with reason", map[string]any{"leave_reason": "lost_connection"}, 0},
		{"legacy list", map[string]any{"memberships": []any{
			map[string]any{"device_id": "A", "expires_ts": 11_000_000},
			map[string]any{"device_id": "B", "expires_ts": 9_000_000},
		}}, 1},
		{"garbage", "not an object", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := activeCallMembers(mk(tc.content), now); len(got) != tc.want {
				t.Fatalf("members = %+v, want %d", got, tc.want)
			}
		})
	}
}
