package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

func wantCode(t *testing.T, err error, code mxerr.Code) {
	t.Helper()
	var me *mxerr.Error
	if code == "" {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		return
	}
	if !errors.As(err, &me) || me.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

// TestResolvePreset: the preset follows the visibility when absent, and
// gives each preset's join rule, history visibility and guest access.
func TestResolvePreset(t *testing.T) {
	for _, tc := range []struct {
		name, preset, visibility, want string
		rules                          presetRules
		code                           mxerr.Code
	}{
		{"default private", "", "", "private_chat", presetRules{"invite", "shared", "can_join"}, ""},
		{"default from public visibility", "", "public", "public_chat", presetRules{"public", "shared", "forbidden"}, ""},
		{"trusted", "trusted_private_chat", "private", "trusted_private_chat", presetRules{"invite", "shared", "can_join"}, ""},
		{"public preset in a private listing", "public_chat", "private", "public_chat", presetRules{"public", "shared", "forbidden"}, ""},
		{"unknown preset", "secret_chat", "", "", presetRules{}, mxerr.BadJSON},
		{"unknown visibility", "public_chat", "listed", "", presetRules{}, mxerr.BadJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rules, err := resolvePreset(tc.preset, tc.visibility)
			wantCode(t, err, tc.code)
			if err == nil && (got != tc.want || rules != tc.rules) {
				t.Fatalf("= %s %+v, want %s %+v", got, rules, tc.want, tc.rules)
			}
		})
	}
}

// TestNewRoomPlan: what a request says by itself is checked before any
// lookup, and the create content carries the version's keys.
func TestNewRoomPlan(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name     string
		req      CreateRequest
		code     mxerr.Code
		create   map[string]any // keys that must hold these values
		absent   []string       // keys that must be absent
		creators []string
	}{
		{"default version", CreateRequest{}, "", map[string]any{"room_version": "10", "creator": "@a:hs"}, nil, []string{"@a:hs"}},
		{"v11 drops creator", CreateRequest{RoomVersion: "11", CreationContent: raw(`{"creator":"@x:hs","m.federate":false}`)}, "",
			map[string]any{"room_version": "11", "m.federate": false}, []string{"creator"}, []string{"@a:hs"}},
		{"v12 additional creators", CreateRequest{RoomVersion: "12", CreationContent: raw(`{"additional_creators":["@b:hs","@a:hs","@b:hs"]}`)}, "",
			map[string]any{"room_version": "12"}, []string{"creator"}, []string{"@a:hs", "@b:hs"}},
		{"v12 trusted chat makes invitees creators", CreateRequest{RoomVersion: "12", Preset: "trusted_private_chat", Invite: []string{"@c:hs"}}, "",
			nil, nil, []string{"@a:hs", "@c:hs"}},
		{"space type", CreateRequest{CreationContent: raw(`{"type":"m.space"}`)}, "", map[string]any{"type": "m.space"}, nil, []string{"@a:hs"}},
		{"third-party invite", CreateRequest{Invite3PID: []json.RawMessage{raw(`{}`)}}, mxerr.Unknown, nil, nil, nil},
		{"unsupported version", CreateRequest{RoomVersion: "99"}, mxerr.UnsupportedRoomVer, nil, nil, nil},
		{"bad preset", CreateRequest{Preset: "x"}, mxerr.BadJSON, nil, nil, nil},
		{"too many invites", CreateRequest{Invite: make([]string, maxCreateList+1)}, mxerr.InvalidParam, nil, nil, nil},
		{"creation_content not an object", CreateRequest{CreationContent: raw(`[1]`)}, mxerr.BadJSON, nil, nil, nil},
		{"bad additional creators", CreateRequest{RoomVersion: "12", CreationContent: raw(`{"additional_creators":"@b:hs"}`)}, mxerr.BadJSON, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newRoomPlan(events.RoomV10, "@a:hs", tc.req)
			wantCode(t, err, tc.code)
			if err != nil {
				return
			}
			for k, v := range tc.create {
				if p.create[k] != v {
					t.Errorf("create[%s] = %v, want %v", k, p.create[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := p.create[k]; ok {
					t.Errorf("create has %s", k)
				}
			}
			if !slices.Equal(p.creators, tc.creators) {
				t.Errorf("creators = %v, want %v", p.creators, tc.creators)
			}
		})
	}
}

// TestPowerLevelSteps: the preset's levels, then the override, checked
// for the version.
func TestPowerLevelSteps(t *testing.T) {
	plan := func(v events.RoomVersion, req CreateRequest) *roomPlan {
		t.Helper()
		p, err := newRoomPlan(v, "@a:hs", req)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("creator listed before v12", func(t *testing.T) {
		pl := presetPowerLevels(plan(events.RoomV10, CreateRequest{}), nil)
		if pl["users"].(map[string]any)["@a:hs"] != 100 || pl["events"].(map[string]any)["m.room.tombstone"] != 100 {
			t.Fatalf("%v", pl)
		}
	})
	t.Run("v12 creators unlisted, tombstone 150", func(t *testing.T) {
		p := plan(events.RoomV12, CreateRequest{Preset: "trusted_private_chat", Invite: []string{"@b:hs"}})
		pl := presetPowerLevels(p, []string{"@b:hs"})
		if len(pl["users"].(map[string]any)) != 0 || pl["events"].(map[string]any)["m.room.tombstone"] != 150 {
			t.Fatalf("%v", pl)
		}
	})
	t.Run("trusted chat raises invitees", func(t *testing.T) {
		pl := presetPowerLevels(plan(events.RoomV10, CreateRequest{Preset: "trusted_private_chat"}), []string{"@b:hs"})
		if pl["users"].(map[string]any)["@b:hs"] != 100 {
			t.Fatalf("%v", pl)
		}
	})
	t.Run("space: only admins post", func(t *testing.T) {
		pl := presetPowerLevels(plan(events.RoomV10, CreateRequest{CreationContent: json.RawMessage(`{"type":"m.space"}`)}), nil)
		if pl["events_default"] != 100 {
			t.Fatalf("%v", pl)
		}
	})
	for _, tc := range []struct {
		name     string
		v        events.RoomVersion
		override string
		code     mxerr.Code
		check    func(map[string]any) bool
	}{
		{"override replaces keys", events.RoomV10, `{"ban":75,"users":{"@a:hs":100,"@b:hs":60}}`, "",
			func(m map[string]any) bool {
				return m["ban"] == 75.0 && m["users"].(map[string]any)["@b:hs"] == 60.0 && m["kick"] == 50.0
			}},
		{"null override", events.RoomV10, `null`, "", func(m map[string]any) bool { return m["ban"] == 50.0 }},
		{"override not an object", events.RoomV10, `[]`, mxerr.BadJSON, nil},
		{"invalid levels", events.RoomV10, `{"ban":"x"}`, mxerr.BadJSON, nil},
		{"v12 override lists a creator", events.RoomV12, `{"users":{"@a:hs":100}}`, mxerr.BadJSON, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(tc.v, CreateRequest{})
			got, err := overridePowerLevels(p, presetPowerLevels(p, nil), json.RawMessage(tc.override))
			wantCode(t, err, tc.code)
			if err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil || !tc.check(m) {
				t.Fatalf("%s (%v)", got, err)
			}
		})
	}
}

// TestCreateEvents: the spec's order, the members' profiles, and the
// initial_state entries refused.
func TestCreateEvents(t *testing.T) {
	p, err := newRoomPlan(events.RoomV10, "@a:hs", CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p.powerLevels, p.alias, p.encrypt = json.RawMessage(`{}`), "#x:hs", true
	profile := func(_ context.Context, u string) (string, string) {
		if u == "@b:hs" {
			return "Bob", "mxc://hs/b"
		}
		return "", ""
	}
	name, topic := "Name", "Topic"
	req := CreateRequest{Name: &name, Topic: &topic, Invite: []string{"@b:hs"}, IsDirect: true,
		InitialState: []StateEvent{{Type: "x.y", StateKey: "k", Content: json.RawMessage(`{"a":1}`)}}}
	seq, err := createEvents(context.Background(), "@a:hs", req, p, profile)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range seq {
		got = append(got, e.Type+"|"+*e.StateKey)
	}
	want := []string{"m.room.create|", "m.room.member|@a:hs", "m.room.power_levels|", "m.room.canonical_alias|",
		"m.room.join_rules|", "m.room.history_visibility|", "m.room.guest_access|", "m.room.encryption|",
		"x.y|k", "m.room.name|", "m.room.topic|", "m.room.member|@b:hs"}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
	if c := string(seq[1].Content); c != `{"membership":"join"}` {
		t.Errorf("creator's join = %s", c)
	}
	if c := string(seq[len(seq)-1].Content); c != `{"avatar_url":"mxc://hs/b","displayname":"Bob","is_direct":true,"membership":"invite"}` {
		t.Errorf("invite = %s", c)
	}
	for _, st := range []StateEvent{{Type: "m.room.member", Content: json.RawMessage(`{}`)}, {Type: "m.room.create", Content: json.RawMessage(`{}`)},
		{Type: "", Content: json.RawMessage(`{}`)}, {Type: "x", Content: json.RawMessage(`[]`)}} {
		_, err := createEvents(context.Background(), "@a:hs", CreateRequest{InitialState: []StateEvent{st}}, p, profile)
		wantCode(t, err, mxerr.BadJSON)
	}
}

// TestNewAlias: a free, valid alias on this server; taken and malformed
// ones refused.
func TestNewAlias(t *testing.T) {
	s := newTestService(t, nil)
	ctx := context.Background()
	if a, err := s.newAlias(ctx, ""); err != nil || a != "" {
		t.Fatalf("no alias: %q %v", a, err)
	}
	if _, _, err := s.Create(ctx, "@a:hs", CreateRequest{RoomAliasName: "taken"}, func(context.Context, string) (string, string) { return "", "" }); err != nil {
		t.Fatal(err)
	}
	_, err := s.newAlias(ctx, "taken")
	wantCode(t, err, mxerr.RoomInUse)
	for _, bad := range []string{"a:b", "a#b", "a b", "a\x00"} {
		_, err := s.newAlias(ctx, bad)
		wantCode(t, err, mxerr.InvalidParam)
	}
	if a, err := s.newAlias(ctx, "free"); err != nil || a != "#free:hs" {
		t.Fatalf("free alias: %q %v", a, err)
	}
}

// TestInheritSpacePowerLevels: a room created in a space the creator is
// in takes the space's users (not the creators) and kick, ban and redact
// levels; a parent the creator is not in, or not a room ID, gives nothing.
func TestInheritSpacePowerLevels(t *testing.T) {
	s := newTestService(t, nil)
	ctx := context.Background()
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	space, _, err := s.Create(ctx, "@a:hs", CreateRequest{CreationContent: json.RawMessage(`{"type":"m.space"}`),
		PowerLevelContentOverride: json.RawMessage(`{"kick":40,"users":{"@a:hs":100,"@b:hs":60}}`)}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	parents := []StateEvent{{Type: "m.space.parent", StateKey: space}, {Type: "m.space.parent", StateKey: "not-a-room"}}
	pl := map[string]any{"users": map[string]any{"@a:hs": 100}, "kick": 50, "ban": 50}
	s.inheritSpacePowerLevels(ctx, "@a:hs", parents, []string{"@a:hs"}, pl)
	users := pl["users"].(map[string]any)
	if users["@b:hs"] != int64(60) || users["@a:hs"] != 100 {
		t.Fatalf("users = %v", users)
	}
	if pl["kick"] != int64(40) || pl["ban"] != int64(50) {
		t.Fatalf("levels = %v", pl)
	}
	// Someone who is not in the space inherits nothing.
	pl = map[string]any{"users": map[string]any{}, "kick": 50}
	s.inheritSpacePowerLevels(ctx, "@c:hs", parents, []string{"@c:hs"}, pl)
	if len(pl["users"].(map[string]any)) != 0 || pl["kick"] != 50 {
		t.Fatalf("outsider inherited %v", pl)
	}
}
