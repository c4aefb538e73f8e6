package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestRoomVersions creates, joins, talks in and redacts in a room of every
// version /capabilities lists, over HTTP against the real server on both
// backends, and checks each version's event format as a client sees it.
func TestRoomVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")

		caps := alice.Must(200, "GET", "/_matrix/client/v3/capabilities", nil)
		rv := caps.Body["capabilities"].(map[string]any)["m.room_versions"].(map[string]any)
		if rv["default"] != string(events.DefaultRoomVersion) {
			t.Fatalf("default room version %v", rv["default"])
		}
		available := rv["available"].(map[string]any)
		var listed []string
		for v, status := range available {
			if status != "stable" {
				t.Errorf("version %s is %v", v, status)
			}
			listed = append(listed, v)
		}
		for _, want := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"} {
			if !slices.Contains(listed, want) {
				t.Fatalf("capabilities lack version %s: %v", want, available)
			}
		}

		for _, v := range listed {
			t.Run("v"+v, func(t *testing.T) {
				room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
					"preset": "public_chat", "room_version": v, "name": "Salle " + v}).Str("room_id")
				hashID := v == "12"
				if hashID != !strings.Contains(room, ":") || !events.ValidRoomID(room) {
					t.Fatalf("room ID %q for version %s", room, v)
				}
				cr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create?format=event", room), nil)
				content := cr.Body["content"].(map[string]any)
				if content["room_version"] != v || cr.Str("room_id") != room {
					t.Fatalf("create event %s", cr.Raw)
				}
				if _, has := content["creator"]; has != (v != "11" && v != "12") {
					t.Errorf("creator in content: %v (%s)", has, cr.Raw)
				}
				if hashID && "!"+cr.Str("event_id")[1:] != room {
					t.Errorf("v12 room ID %s is not the create event %s", room, cr.Str("event_id"))
				}
				pl := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", room), nil)
				users := pl.Body["users"].(map[string]any)
				if _, listedCreator := users[alice.UserID]; listedCreator == (v == "12") {
					t.Errorf("creator listed in power levels: %v (%s)", listedCreator, pl.Raw)
				}

				bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
				msg := bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/t1-%s", room, v),
					map[string]any{"msgtype": "m.text", "body": "bonjour " + v}).Str("event_id")
				switch v {
				case "1", "2": // "$opaque:server"
					if !strings.HasSuffix(msg, ":localhost") {
						t.Errorf("v%s event ID %q", v, msg)
					}
				case "3": // the hash in standard base64
					if len(msg) != 44 || strings.ContainsAny(msg, ":-_") {
						t.Errorf("v3 event ID %q", msg)
					}
				default: // the hash in URL-safe base64
					if len(msg) != 44 || strings.ContainsAny(msg, "+/:") {
						t.Errorf("event ID %q is not URL-safe base64 of a hash", msg)
					}
				}
				// The creator redacts bob's message; bob may not redact hers.
				mine := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/t2-%s", room, v),
					map[string]any{"msgtype": "m.text", "body": "à moi"}).Str("event_id")
				bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r1-%s", room, mine, v), map[string]any{})
				red := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r2-%s", room, msg, v), map[string]any{"reason": "hors sujet"}).Str("event_id")
				got := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, msg), nil)
				if c := got.Body["content"].(map[string]any); len(c) != 0 {
					t.Errorf("redacted message content %v", c)
				}
				re := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, red), nil)
				if re.Str("redacts") != msg || re.Body["content"].(map[string]any)["redacts"] != msg {
					t.Errorf("redaction %s", re.Raw)
				}
				// Knocking exists from v7.
				knockRoom := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_version": v,
					"initial_state": []any{map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}}).Str("room_id")
				if n, _ := strconv.Atoi(v); n < 7 {
					bob.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/knock/%s", knockRoom), map[string]any{})
				} else {
					bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/knock/%s", knockRoom), map[string]any{})
				}
			})
		}

		alice.MustErr(400, "M_UNSUPPORTED_ROOM_VERSION", "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_version": "13"})
	})
}

// TestV12Creators: in a v12 room the creators have infinite power
// (MSC4289): they are not in power levels, nobody can demote, kick or ban
// them, and trusted_private_chat invitees become additional creators.
func TestV12Creators(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": "12",
			"creation_content": map[string]any{"additional_creators": []string{bob.UserID}}}).Str("room_id")
		for _, c := range []*mxtest.Client{bob, carol, dave} {
			c.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		}
		cr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create", room), nil)
		if ac, _ := cr.Body["additional_creators"].([]any); len(ac) != 1 || ac[0] != bob.UserID {
			t.Fatalf("create %s", cr.Raw)
		}
		plPath := mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", room)
		pl := alice.Must(200, "GET", plPath, nil).Body
		if _, listed := pl["users"].(map[string]any)[bob.UserID]; listed {
			t.Fatalf("additional creator listed: %v", pl)
		}
		setUsers := func(c *mxtest.Client, status int, users map[string]any) {
			t.Helper()
			body := map[string]any{}
			for k, v := range pl {
				body[k] = v
			}
			body["users"] = users
			if status == 200 {
				c.Must(200, "PUT", plPath, body)
			} else {
				c.MustErr(status, "M_FORBIDDEN", "PUT", plPath, body)
			}
		}
		// The additional creator (not in users) makes carol an admin at
		// 100, then a high admin dave at 150 who still cannot touch a creator.
		setUsers(bob, 200, map[string]any{carol.UserID: 100, dave.UserID: 150})
		setUsers(carol, 403, map[string]any{carol.UserID: 100, dave.UserID: 150, alice.UserID: 0})
		setUsers(dave, 403, map[string]any{carol.UserID: 100, dave.UserID: 150, bob.UserID: 50})
		setUsers(alice, 403, map[string]any{alice.UserID: 100, carol.UserID: 100, dave.UserID: 150})
		dave.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": alice.UserID})
		dave.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/ban", room), map[string]any{"user_id": bob.UserID})
		alice.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": bob.UserID})
		// A creator demotes the admin above 100.
		setUsers(alice, 200, map[string]any{carol.UserID: 100})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": dave.UserID})

		// power_level_content_override may not list a creator.
		alice.MustErr(400, "M_BAD_JSON", "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_version": "12",
			"power_level_content_override": map[string]any{"users": map[string]any{alice.UserID: 100}}})
		alice.MustErr(400, "M_BAD_JSON", "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_version": "12",
			"creation_content": map[string]any{"additional_creators": []any{"not a user"}}})

		// A direct chat with trusted_private_chat: both sides are creators.
		dm := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "trusted_private_chat", "room_version": "12",
			"invite": []string{carol.UserID}, "is_direct": true}).Str("room_id")
		dcr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create", dm), nil)
		if ac, _ := dcr.Body["additional_creators"].([]any); len(ac) != 1 || ac[0] != carol.UserID {
			t.Fatalf("DM create %s", dcr.Raw)
		}
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", dm), map[string]any{})
		carol.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic", dm), map[string]any{"topic": "à deux"})
	})
}

// TestUpgradeTo12 upgrades a v10 room to v12 and back, over HTTP on both
// backends: the new room ID is the create event's hash, the tombstone
// names it, the predecessor names the old room, and power levels follow
// the creators.
func TestUpgradeTo12(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")

		old := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": "10",
			"name": "Amphi", "room_alias_name": "amphi",
			"power_level_content_override": map[string]any{"users": map[string]any{alice.UserID: 100, bob.UserID: 50}}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", old), map[string]any{})
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", old), map[string]any{})
		bob.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", old), map[string]any{"new_version": "12"})
		alice.MustErr(400, "M_BAD_JSON", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", old),
			map[string]any{"new_version": "12", "additional_creators": "nope"})
		up := alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", old),
			map[string]any{"new_version": "12", "additional_creators": []string{carol.UserID}}).Str("replacement_room")
		if strings.Contains(up, ":") || !events.ValidRoomID(up) {
			t.Fatalf("v12 replacement room ID %q", up)
		}
		tomb := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.tombstone", old), nil)
		if tomb.Str("replacement_room") != up {
			t.Fatalf("tombstone %s", tomb.Raw)
		}
		cr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create?format=event", up), nil)
		content := cr.Body["content"].(map[string]any)
		pred := content["predecessor"].(map[string]any)
		if pred["room_id"] != old || content["room_version"] != "12" || "!"+cr.Str("event_id")[1:] != up {
			t.Fatalf("new create %s", cr.Raw)
		}
		if ac, _ := content["additional_creators"].([]any); len(ac) != 1 || ac[0] != carol.UserID {
			t.Fatalf("additional creators %s", cr.Raw)
		}
		pl := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", up), nil)
		users := pl.Body["users"].(map[string]any)
		if _, a := users[alice.UserID]; a || users[bob.UserID] != float64(50) {
			t.Fatalf("new power levels %s", pl.Raw)
		}
		if _, c := users[carol.UserID]; c {
			t.Fatalf("additional creator listed %s", pl.Raw)
		}
		name := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.name", up), nil)
		if name.Str("name") != "Amphi" {
			t.Fatalf("name %s", name.Raw)
		}
		if r := alice.Must(200, "GET", "/_matrix/client/v3/directory/room/%23amphi:localhost", nil); r.Str("room_id") != up {
			t.Fatalf("alias points to %s", r.Raw)
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", up), map[string]any{})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/u1", up), map[string]any{"msgtype": "m.text", "body": "suite"})
		// The upgrader keeps their level in the old room, whose power
		// levels only close it to ordinary members.
		opl := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", old), nil)
		if ousers := opl.Body["users"].(map[string]any); ousers[alice.UserID] != float64(100) || ousers[bob.UserID] != float64(50) {
			t.Fatalf("old room power levels after the upgrade %s", opl.Raw)
		}
		// The old room is closed to ordinary members.
		carol.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/u2", old), map[string]any{"msgtype": "m.text", "body": "x"})

		// Back to 11: the v12 creators are no longer creators; the
		// upgrader and the old additional creator keep 100.
		back := alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/upgrade", up), map[string]any{"new_version": "11"}).Str("replacement_room")
		if !strings.HasSuffix(back, ":localhost") {
			t.Fatalf("v11 room ID %q", back)
		}
		bpl := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", back), nil)
		busers := bpl.Body["users"].(map[string]any)
		if busers[alice.UserID] != float64(100) || busers[carol.UserID] != float64(100) || busers[bob.UserID] != float64(50) {
			t.Fatalf("v11 power levels %s", bpl.Raw)
		}
		bcr := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create", back), nil)
		if p := bcr.Body["predecessor"].(map[string]any); p["room_id"] != up || p["event_id"] == nil {
			t.Fatalf("v11 predecessor %s", bcr.Raw)
		}
	})
}

// TestRestrictedJoinPerVersion: restricted rooms through a space work from
// v8 (knock_restricted from v10); before, the join rule admits nobody.
func TestRestrictedJoinPerVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		prof := mxtest.Register(t, srv.URL, "prof", "password prof")
		student := mxtest.Register(t, srv.URL, "student", "password student")
		outsider := mxtest.Register(t, srv.URL, "outsider", "password outsider")
		space := prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": "12",
			"creation_content": map[string]any{"type": "m.space"}}).Str("room_id")
		student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})
		for _, v := range []string{"7", "8", "9", "10", "11", "12"} {
			for _, rule := range []string{"restricted", "knock_restricted"} {
				t.Run(fmt.Sprintf("v%s/%s", v, rule), func(t *testing.T) {
					room := prof.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "room_version": v,
						"initial_state": []any{map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": rule,
							"allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}}}}}}).Str("room_id")
					addChild(t, prof, space, room, nil)
					works := v != "7" && (rule == "restricted" || (v != "8" && v != "9"))
					outsider.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
					if !works {
						student.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
						return
					}
					student.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
					m := student.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, student.UserID), nil)
					if m.Str("join_authorised_via_users_server") != prof.UserID {
						t.Fatalf("join %s", m.Raw)
					}
				})
			}
		}
	})
}

// TestStringyPowerLevelsOverHTTP: a v6 to v9 room stores power levels
// written as strings, and the rules read them as integers; v10 refuses
// them.
func TestStringyPowerLevelsOverHTTP(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	for _, v := range []string{"9", "10"} {
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": v}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		var body map[string]any
		_ = json.Unmarshal([]byte(fmt.Sprintf(`{"users":{%q:100,%q:"60"},"events_default":"55"}`, alice.UserID, bob.UserID)), &body)
		path := mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", room)
		if v == "10" {
			alice.MustErr(403, "M_FORBIDDEN", "PUT", path, body)
			continue
		}
		alice.Must(200, "PUT", path, body)
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/s1", room), map[string]any{"msgtype": "m.text", "body": "60 ≥ 55"})
	}
}
