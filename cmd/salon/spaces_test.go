package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func addChild(t *testing.T, c *mxtest.Client, space, child string, extra map[string]any) {
	t.Helper()
	content := map[string]any{"via": []string{"localhost"}}
	for k, v := range extra {
		content[k] = v
	}
	c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.space.child/%s", space, child), content)
}

func hierarchyIDs(r mxtest.Response) []string {
	var ids []string
	for _, x := range r.Body["rooms"].([]any) {
		ids = append(ids, x.(map[string]any)["room_id"].(string))
	}
	return ids
}

func TestSpaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		prof := mxtest.Register(t, srv.URL, "prof", "password prof")
		student := mxtest.Register(t, srv.URL, "student", "password student")
		outsider := mxtest.Register(t, srv.URL, "outsider", "password outsider")
		create := func(body map[string]any) string {
			return prof.Must(200, "POST", "/_matrix/client/v3/createRoom", body).Str("room_id")
		}
		space := create(map[string]any{"preset": "public_chat", "name": "Département GEI", "creation_content": map[string]any{"type": "m.space"}})
		sub := create(map[string]any{"preset": "public_chat", "name": "4e année", "creation_content": map[string]any{"type": "m.space"}})
		allowSpace := []any{map[string]any{"type": "m.room_membership", "room_id": space}}
		restricted := create(map[string]any{"preset": "private_chat", "name": "Cours réseaux",
			"initial_state": []any{
				map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "restricted", "allow": allowSpace}},
				map[string]any{"type": "m.space.parent", "state_key": space, "content": map[string]any{"via": []string{"localhost"}, "canonical": true}},
			}})
		private := create(map[string]any{"preset": "private_chat", "name": "Jury secret"})
		voice := create(map[string]any{"preset": "public_chat", "name": "Salon vocal", "creation_content": map[string]any{"type": "org.matrix.msc3417.call"},
			"initial_state": []any{map[string]any{"type": "m.space.parent", "state_key": space, "content": map[string]any{"via": []string{"localhost"}}}}})
		addChild(t, prof, space, sub, map[string]any{"order": "b"})
		addChild(t, prof, space, restricted, map[string]any{"order": "a", "suggested": true})
		addChild(t, prof, space, private, nil)
		addChild(t, prof, space, voice, nil)
		behindVoice := create(map[string]any{"preset": "public_chat", "name": "Derrière le salon vocal"})
		addChild(t, prof, voice, behindVoice, nil) // a room that is not a space is a leaf
		deep := create(map[string]any{"preset": "public_chat", "name": "Sous-salon"})
		addChild(t, prof, sub, deep, nil)                      // walked before the space's next child
		addChild(t, prof, sub, space, nil)                     // a loop
		addChild(t, prof, sub, "!doesnotexist:localhost", nil) // a dangling child
		prof.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.space.child/%s", sub, "!junk:localhost"), map[string]any{"via": "not a list"})

		// The student joins the space; the restricted room opens to them.
		student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})
		h := student.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil)
		ids := strings.Join(hierarchyIDs(h), ",")
		for _, want := range []string{space, sub, restricted, voice} {
			if !strings.Contains(ids, want) {
				t.Fatalf("hierarchy lacks %s: %s", want, h.Raw)
			}
		}
		if strings.Contains(string(h.Raw), private) || strings.Contains(string(h.Raw), "Jury secret") || strings.Contains(string(h.Raw), "doesnotexist") {
			t.Fatalf("hierarchy leaks a private or unknown room: %s", h.Raw)
		}
		if i, j := strings.Index(ids, deep), strings.Index(ids, voice); i < 0 || i > j {
			t.Fatalf("not depth-first (a child of the sub-space after the space's next child): %s", ids)
		}
		if strings.Contains(ids, behindVoice) {
			t.Fatalf("hierarchy walked into a room that is not a space: %s", h.Raw)
		}
		if strings.Count(ids, space) != 1 {
			t.Fatalf("loop walked twice: %s", ids)
		}
		// Order: "a" before "b".
		if strings.Index(ids, restricted) > strings.Index(ids, sub) {
			t.Fatalf("children not in order: %s", ids)
		}
		for _, x := range h.Body["rooms"].([]any) {
			m := x.(map[string]any)
			if m["room_id"] == voice && m["room_type"] != "org.matrix.msc3417.call" {
				t.Fatalf("call room listed without its type: %v", m)
			}
			if m["room_id"] == restricted && m["join_rule"] != "restricted" {
				t.Fatalf("restricted room: %v", m)
			}
		}
		student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", restricted), map[string]any{})
		ev := student.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", restricted, student.UserID), nil)
		if ev.Str("join_authorised_via_users_server") != prof.UserID {
			t.Fatalf("join not authorised via the server: %s", ev.Raw)
		}
		outsider.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", restricted), map[string]any{})
		// The private room stays hidden from a non-member in the hierarchy.
		oh := outsider.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil)
		if strings.Contains(string(oh.Raw), private) || strings.Contains(string(oh.Raw), restricted) {
			t.Fatalf("outsider sees private or restricted rooms: %s", oh.Raw)
		}
		outsider.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", private), nil)

		// Leaving the space removes the right to join.
		student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", restricted), map[string]any{})
		student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", space), map[string]any{})
		student.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", restricted), map[string]any{})

		// Pagination and tampered tokens.
		p1 := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?limit=2", space), nil)
		next := p1.Str("next_batch")
		if len(hierarchyIDs(p1)) != 2 || next == "" {
			t.Fatalf("first page = %s", p1.Raw)
		}
		p2 := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?limit=2&from=", space)+next, nil)
		if hierarchyIDs(p2)[0] == hierarchyIDs(p1)[0] {
			t.Fatal("second page repeats the first")
		}
		forged := base64.RawURLEncoding.EncodeToString([]byte(`{"r":"` + private + `","o":0,"s":false,"d":-1}`))
		prof.MustErr(400, "M_INVALID_PARAM", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?from=", space)+forged, nil)
		prof.MustErr(400, "M_INVALID_PARAM", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?from=not-base64!", space), nil)
		prof.MustErr(400, "M_INVALID_PARAM", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?max_depth=-1", space), nil)
		sugg := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?suggested_only=true", space), nil)
		if ids := hierarchyIDs(sugg); len(ids) != 2 || ids[1] != restricted {
			t.Fatalf("suggested only = %v", ids)
		}
		d1 := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy?max_depth=0", space), nil)
		if len(hierarchyIDs(d1)) != 1 {
			t.Fatalf("max_depth=0 = %v", hierarchyIDs(d1))
		}

		// A restricted allow naming an unknown room is harmless.
		weird := create(map[string]any{"preset": "private_chat", "initial_state": []any{
			map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "restricted",
				"allow": []any{map[string]any{"type": "m.room_membership", "room_id": "!unknown:localhost"}, "junk"}}}}})
		outsider.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", weird), map[string]any{})

		// Upgrading keeps the room in its space.
		up := prof.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", restricted), map[string]any{"new_version": "11"})
		newRoom := up.Str("replacement_room")
		tomb := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.tombstone", restricted), nil)
		if tomb.Str("replacement_room") != newRoom {
			t.Fatalf("tombstone = %s", tomb.Raw)
		}
		h = prof.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil)
		ids = strings.Join(hierarchyIDs(h), ",")
		if !strings.Contains(ids, newRoom) || strings.Contains(ids, restricted) {
			t.Fatalf("after upgrade the space lists %s", ids)
		}
		jr := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.join_rules", newRoom), nil)
		if jr.Str("join_rule") != "restricted" {
			t.Fatalf("new room join rule = %s", jr.Raw)
		}
		cr := prof.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create", newRoom), nil)
		if cr.Body["predecessor"].(map[string]any)["room_id"] != restricted || cr.Str("room_version") != "11" {
			t.Fatalf("create = %s", cr.Raw)
		}
		student.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", space), map[string]any{"new_version": "11"})
	})
}

func TestKnocking(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	mod := mxtest.Register(t, srv.URL, "mod", "password mod")
	member := mxtest.Register(t, srv.URL, "member", "password member")
	knocker := mxtest.Register(t, srv.URL, "knocker", "password knocker")
	other := mxtest.Register(t, srv.URL, "other", "password other")
	room := mod.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{member.UserID},
		"initial_state": []any{map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}}).Str("room_id")
	member.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	knocker.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	knocker.Must(200, "POST", mxtest.Path("/_matrix/client/v3/knock/%s", room), map[string]any{"reason": "Je suis en 4e année"})
	other.Must(200, "POST", mxtest.Path("/_matrix/client/v3/knock/%s", room), map[string]any{})

	// Moderators see knocks; members do not.
	if r := mod.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/members?membership=knock", room), nil); len(r.Body["chunk"].([]any)) != 2 {
		t.Fatalf("moderator's knocks = %s", r.Raw)
	}
	if r := member.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/members", room), nil); strings.Contains(string(r.Raw), `"membership":"knock"`) {
		t.Fatalf("member sees knocks: %s", r.Raw)
	}
	if r := member.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=50", room), nil); strings.Contains(string(r.Raw), `"membership":"knock"`) {
		t.Fatalf("member sees knocks in history: %s", r.Raw)
	}
	// Approve one (invite), deny the other (kick).
	member.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": other.UserID})
	mod.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": knocker.UserID})
	knocker.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	mod.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": other.UserID, "reason": "Pas cette fois"})
	other.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	jm := mod.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
	if len(jm.Body["joined"].(map[string]any)) != 3 {
		t.Fatalf("joined = %s", jm.Raw)
	}
}

func TestSpacePowerInheritance(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	head := mxtest.Register(t, srv.URL, "head", "password head")
	modr := mxtest.Register(t, srv.URL, "moderator", "password mod")
	teacher := mxtest.Register(t, srv.URL, "teacher", "password teacher")
	space := head.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "creation_content": map[string]any{"type": "m.space"},
		"power_level_content_override": map[string]any{"users": map[string]any{head.UserID: 100, modr.UserID: 50}, "kick": 40}}).Str("room_id")
	modr.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})
	teacher.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})
	room := teacher.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.space.parent", "state_key": space, "content": map[string]any{"via": []string{"localhost"}}}}}).Str("room_id")
	pl := teacher.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", room), nil)
	users := pl.Body["users"].(map[string]any)
	if users[modr.UserID] != float64(50) || users[head.UserID] != float64(100) || users[teacher.UserID] != float64(100) || pl.Body["kick"] != float64(40) {
		t.Fatalf("inherited power levels = %s", pl.Raw)
	}
}
