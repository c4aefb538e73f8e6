package federation

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

type fakeDirectory struct {
	mu   sync.Mutex
	last PublicRoomsQuery
}

func (f *fakeDirectory) PublicRooms(_ context.Context, q PublicRoomsQuery) (map[string]any, error) {
	f.mu.Lock()
	f.last = q
	f.mu.Unlock()
	return map[string]any{"chunk": []any{map[string]any{"room_id": "!r:y.example"}}, "total_room_count_estimate": 1}, nil
}

func (f *fakeDirectory) Hierarchy(_ context.Context, origin, roomID string, suggested bool) (map[string]any, error) {
	if roomID != "!space:y.example" {
		return nil, mxerr.NotFoundf("Room not found")
	}
	return map[string]any{"room": map[string]any{"room_id": roomID, "origin": origin, "suggested": suggested},
		"children": []any{}, "inaccessible_children": []any{}}, nil
}

// TestPublicRoomsAndHierarchy: the client side's requests (GET without a
// filter, POST with one) reach the other server's directory with their
// parameters; /hierarchy answers for the asking server, 404 for an unknown
// room, 403 under a denying server ACL.
func TestPublicRoomsAndHierarchy(t *testing.T) {
	dir := &fakeDirectory{}
	rooms := &fakeRooms{}
	x, _ := fedPair(t, func(p *Params) { p.Directory, p.Rooms = dir, rooms })
	ctx := context.Background()
	page, err := x.PublicRooms(ctx, "y.example", PublicRoomsQuery{Limit: 5, Since: "o5"})
	if err != nil || !json.Valid(page) {
		t.Fatalf("GET: %s %v", page, err)
	}
	if dir.last.Limit != 5 || dir.last.Since != "o5" || dir.last.RoomTypes != nil {
		t.Fatalf("GET asked %+v", dir.last)
	}
	if _, err := x.PublicRooms(ctx, "y.example", PublicRoomsQuery{Term: "lab", RoomTypes: []string{"", "m.space"}}); err != nil {
		t.Fatal(err)
	}
	if dir.last.Term != "lab" || len(dir.last.RoomTypes) != 2 || dir.last.RoomTypes[0] != "" || dir.last.RoomTypes[1] != "m.space" {
		t.Fatalf("POST asked %+v", dir.last)
	}
	if err := x.Client.Post(ctx, "y.example", "/_matrix/federation/v1/publicRooms", map[string]any{"limit": -1}, nil); !isStatus(err, 400) {
		t.Fatalf("negative limit: %v", err)
	}
	if err := x.Client.Post(ctx, "y.example", "/_matrix/federation/v1/publicRooms", map[string]any{"filter": map[string]any{"room_types": "x"}}, nil); !isStatus(err, 400) {
		t.Fatalf("room_types not a list: %v", err)
	}

	h, err := x.Hierarchy(ctx, "y.example", "!space:y.example", true)
	if err != nil {
		t.Fatal(err)
	}
	var hv struct {
		Room map[string]any `json:"room"`
	}
	if json.Unmarshal(h, &hv) != nil || hv.Room["origin"] != "x.example" || hv.Room["suggested"] != true {
		t.Fatalf("hierarchy: %s", h)
	}
	var me *mxerr.Error
	if _, err := x.Hierarchy(ctx, "y.example", "!other:y.example", false); !errors.As(err, &me) || me.Code != mxerr.NotFound {
		t.Fatalf("unknown room: %v", err)
	}
	rooms.acl = json.RawMessage(`{"allow":["y.example"]}`)
	if _, err := x.Hierarchy(ctx, "y.example", "!space:y.example", false); !errors.As(err, &me) || me.Code != mxerr.Forbidden {
		t.Fatalf("denied by the ACL: %v", err)
	}
	// A server that is not reachable: 502 for the client.
	if _, err := x.PublicRooms(ctx, "z.example", PublicRoomsQuery{}); !errors.As(err, &me) || me.HTTPStatus() != 502 {
		t.Fatalf("unreachable: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Status == status
}
