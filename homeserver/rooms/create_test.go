package rooms

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
)

// TestV12RoomsCreatedAtOnceAreDistinct: a v12 room is named by its create
// event, so two identical requests by one user in the same millisecond
// must still make two create events, hence two rooms.
func TestV12RoomsCreatedAtOnceAreDistinct(t *testing.T) {
	s := newTestService(t, nil)
	frozen := time.UnixMilli(1_700_000_000_000)
	s.p.Now = func() time.Time { return frozen }
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		id, _, err := s.Create(context.Background(), "@alice:hs", CreateRequest{RoomVersion: "12", Preset: "public_chat"}, noProfile)
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
		if seen[id] || strings.Contains(id, ":") || !events.ValidRoomID(id) {
			t.Fatalf("room ID %q (seen %v)", id, seen)
		}
		seen[id] = true
	}
}
