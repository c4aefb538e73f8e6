package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store/sqlite"
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

// TestEveryVersionSurvivesReload: rooms of every version, written by one
// Service, are read back from the store by another (as after a restart):
// their events parse under their version and new events chain onto them.
func TestEveryVersionSurvivesReload(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	params := Params{Store: st, ServerName: "hs", Key: key, UserExists: func(context.Context, string) bool { return true }}
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	ctx := context.Background()
	first := New(params)
	ids := map[events.RoomVersion]string{}
	msgs := map[events.RoomVersion]string{}
	for _, v := range events.SupportedVersions() {
		id, _, err := first.Create(ctx, "@alice:hs", CreateRequest{RoomVersion: string(v), Preset: "public_chat"}, noProfile)
		if err != nil {
			t.Fatalf("v%s: %v", v, err)
		}
		if _, err := first.Join(ctx, id, "@bob:hs", "", noProfile); err != nil {
			t.Fatalf("v%s join: %v", v, err)
		}
		m, err := first.Send(ctx, id, "@bob:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"x"}`)})
		if err != nil {
			t.Fatalf("v%s send: %v", v, err)
		}
		ids[v], msgs[v] = id, m
	}
	second := New(params)
	for _, v := range events.SupportedVersions() {
		got, err := second.Version(ctx, ids[v])
		if err != nil || got != v {
			t.Fatalf("v%s reloaded as %q: %v", v, got, err)
		}
		red := Event{Type: "m.room.redaction", Redacts: msgs[v], Content: json.RawMessage(`{}`)}
		if v.RedactsInContent() {
			red.Content = json.RawMessage(`{"redacts":"` + msgs[v] + `"}`)
		}
		if _, err := second.Send(ctx, ids[v], "@alice:hs", red); err != nil {
			t.Fatalf("v%s redaction after reload: %v", v, err)
		}
		if _, err := second.Send(ctx, ids[v], "@bob:hs", Event{Type: "m.room.message", Content: json.RawMessage(`{"body":"y"}`)}); err != nil {
			t.Fatalf("v%s send after reload: %v", v, err)
		}
	}
}
