package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// TestServerHierarchy: another server sees a space's children it could
// peek or join (public, world_readable, restricted to a room one of its
// users is in, or with one of its users in it), gets the others' IDs as
// inaccessible, and nothing of children this server does not know; a
// space it may not see is M_NOT_FOUND.
func TestServerHierarchy(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	create := func(req CreateRequest) string {
		t.Helper()
		id, _, err := s.Create(ctx, "@alice:hs", req, noProfile)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	space := create(CreateRequest{Preset: "public_chat", CreationContent: json.RawMessage(`{"type":"m.space"}`)})
	public := create(CreateRequest{Preset: "public_chat", Name: ptr("Public")})
	private := create(CreateRequest{Preset: "private_chat"})
	withC := create(CreateRequest{Preset: "private_chat"})
	if _, err := s.Send(ctx, withC, "@alice:hs", Event{Type: "m.room.member", StateKey: ptr("@x:c.test"), Content: json.RawMessage(`{"membership":"invite"}`)}); err != nil {
		t.Fatal(err)
	}
	restricted := create(CreateRequest{Preset: "private_chat", InitialState: []StateEvent{{Type: "m.room.join_rules",
		Content: json.RawMessage(`{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"` + withC + `"}]}`)}}})
	if _, err := s.AddRemoteMember(ctx, withC, "@x:c.test", "join", remoteKey(t)); err != nil {
		t.Fatal(err)
	}
	for i, child := range []string{public, private, restricted, withC, "!unknown:elsewhere"} {
		content := `{"via":["hs"]}`
		if i == 0 {
			content = `{"via":["hs"],"suggested":true}`
		}
		if _, err := s.Send(ctx, space, "@alice:hs", Event{Type: "m.space.child", StateKey: ptr(child), Content: json.RawMessage(content)}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.ServerHierarchy(ctx, "c.test", space, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range h["children"].([]map[string]any) {
		got = append(got, c["room_id"].(string))
	}
	slices.Sort(got)
	want := []string{public, restricted, withC}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("children %v, want %v", got, want)
	}
	if inacc := h["inaccessible_children"].([]string); !slices.Equal(inacc, []string{private}) {
		t.Fatalf("inaccessible %v", inacc)
	}
	if cs := h["room"].(map[string]any)["children_state"].([]json.RawMessage); len(cs) != 5 {
		t.Fatalf("children_state of %d", len(cs))
	}
	// d.test has nobody anywhere: not the restricted child nor withC.
	h, _ = s.ServerHierarchy(ctx, "d.test", space, false)
	if len(h["children"].([]map[string]any)) != 1 || len(h["inaccessible_children"].([]string)) != 3 {
		t.Fatalf("for d.test: %v", h)
	}
	h, _ = s.ServerHierarchy(ctx, "d.test", space, true)
	if len(h["children"].([]map[string]any)) != 1 || len(h["inaccessible_children"].([]string)) != 0 {
		t.Fatalf("suggested only: %v", h)
	}
	var me *mxerr.Error
	if _, err := s.ServerHierarchy(ctx, "d.test", private, false); !errors.As(err, &me) || me.Code != mxerr.NotFound {
		t.Fatalf("a private room: %v", err)
	}
	if _, err := s.ServerHierarchy(ctx, "d.test", "!nothing:hs", false); !errors.As(err, &me) || me.Code != mxerr.NotFound {
		t.Fatalf("an unknown room: %v", err)
	}
}

// TestPublicRoomsQuery: the directory page's filters and tokens.
func TestPublicRoomsQuery(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	for _, req := range []CreateRequest{
		{Preset: "public_chat", Visibility: "public", Name: ptr("Physics lounge")},
		{Preset: "public_chat", Visibility: "public", Name: ptr("Chemistry"), Topic: ptr("labs")},
		{Preset: "public_chat", Visibility: "public", Name: ptr("Campus space"), CreationContent: json.RawMessage(`{"type":"m.space"}`)},
		{Preset: "private_chat", Visibility: "public", Name: ptr("Not open")},
	} {
		if _, _, err := s.Create(ctx, "@alice:hs", req, noProfile); err != nil {
			t.Fatal(err)
		}
	}
	names := func(q PublicRoomsQuery) []string {
		t.Helper()
		out, err := s.PublicRooms(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, c := range out["chunk"].([]map[string]any) {
			n = append(n, c["name"].(string))
		}
		slices.Sort(n)
		return n
	}
	if n := names(PublicRoomsQuery{}); len(n) != 3 {
		t.Fatalf("all: %v", n)
	}
	if n := names(PublicRoomsQuery{Term: "LAB"}); !slices.Equal(n, []string{"Chemistry"}) {
		t.Fatalf("term: %v", n)
	}
	if n := names(PublicRoomsQuery{RoomTypes: []string{"m.space"}}); !slices.Equal(n, []string{"Campus space"}) {
		t.Fatalf("spaces: %v", n)
	}
	if n := names(PublicRoomsQuery{RoomTypes: []string{""}}); len(n) != 2 {
		t.Fatalf("rooms without a type: %v", n)
	}
	out, _ := s.PublicRooms(ctx, PublicRoomsQuery{Limit: 2})
	if out["next_batch"] != "o2" || len(out["chunk"].([]map[string]any)) != 2 {
		t.Fatalf("page 1: %v", out)
	}
	out, _ = s.PublicRooms(ctx, PublicRoomsQuery{Limit: 2, Since: "o2"})
	if out["prev_batch"] != "o0" || len(out["chunk"].([]map[string]any)) != 1 || out["next_batch"] != nil {
		t.Fatalf("page 2: %v", out)
	}
	if _, err := s.PublicRooms(ctx, PublicRoomsQuery{Since: "x"}); err == nil {
		t.Fatal("a bad since token")
	}
	if _, err := ParseRoomTypes(json.RawMessage(`"m.space"`)); err == nil {
		t.Fatal("room_types not a list")
	}
	if ts, err := ParseRoomTypes(json.RawMessage(`[null,"m.space"]`)); err != nil || !slices.Equal(ts, []string{"", "m.space"}) {
		t.Fatalf("room_types: %v %v", ts, err)
	}
}

func ptr(s string) *string { return &s }
