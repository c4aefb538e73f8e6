package clientapi

import (
	"net/url"
	"strings"
	"testing"
)

// tableCase is one request of a handler table: who sends it, where, with
// what, and what the answer must be.
type tableCase struct {
	name   string
	as     user
	method string
	path   string // under /_matrix/client/v3 unless it starts with /_matrix
	body   string
	want   expectation
}

// run sends each case in order (later cases may read what earlier ones
// wrote) as a named subtest.
func (ts *testServer) run(t *testing.T, cases []tableCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if !strings.HasPrefix(path, "/_matrix") && !strings.HasPrefix(path, "/.well-known") {
				path = v3 + path
			}
			ts.check(t, ts.do(tc.as, tc.method, path, tc.body), tc.want)
		})
	}
}

// TestProfileHandlers: a user sets their own profile fields, which anyone
// reads back; others' profiles, unknown fields and malformed values are
// refused.
func TestProfileHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	ts.run(t, []tableCase{
		{"set displayname", a, "PUT", "/profile/@alice:hs/displayname", `{"displayname":"Alice A"}`, expectation{200, "", ""}},
		{"read displayname", user{}, "GET", "/profile/@alice:hs/displayname", "", expectation{200, "", `"displayname":"Alice A"`}},
		{"read whole profile", b, "GET", "/profile/@alice:hs", "", expectation{200, "", `"displayname":"Alice A"`}},
		{"set avatar", a, "PUT", "/profile/@alice:hs/avatar_url", `{"avatar_url":"mxc://hs/abc"}`, expectation{200, "", ""}},
		{"read avatar", a, "GET", "/profile/@alice:hs/avatar_url", "", expectation{200, "", `"avatar_url":"mxc://hs/abc"`}},
		{"avatar not mxc", a, "PUT", "/profile/@alice:hs/avatar_url", `{"avatar_url":"https://x/y"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"displayname not a string", a, "PUT", "/profile/@alice:hs/displayname", `{"displayname":7}`, expectation{400, "M_BAD_JSON", ""}},
		{"displayname too long", a, "PUT", "/profile/@alice:hs/displayname", `{"displayname":"` + strings.Repeat("x", 300) + `"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"another user's profile", b, "PUT", "/profile/@alice:hs/displayname", `{"displayname":"Mallory"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"unchanged by the refusal", b, "GET", "/profile/@alice:hs/displayname", "", expectation{200, "", `"displayname":"Alice A"`}},
		{"unknown field", a, "GET", "/profile/@alice:hs/shoe_size", "", expectation{404, "M_UNRECOGNIZED", ""}},
		{"unset field", b, "GET", "/profile/@bob:hs/avatar_url", "", expectation{404, "M_NOT_FOUND", ""}},
		{"unknown user", a, "GET", "/profile/@nobody:hs", "", expectation{404, "M_NOT_FOUND", ""}},
		{"invalid user ID", a, "GET", "/profile/nobody", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"set without a token", user{}, "PUT", "/profile/@alice:hs/displayname", `{"displayname":"X"}`, expectation{401, "M_MISSING_TOKEN", ""}},
	})
}

// TestDirectoryHandlers: aliases are made only for rooms one is joined
// to, on this server, once; they resolve, list and delete; the room
// directory's visibility is the room's moderators' to change.
func TestDirectoryHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{"preset":"public_chat"}`)
	body := `{"room_id":"` + room + `"}`
	alias := "/directory/room/" + url.PathEscape("#den:hs")
	ts.run(t, []tableCase{
		{"create alias", a, "PUT", alias, body, expectation{200, "", ""}},
		{"resolve alias", user{}, "GET", alias, "", expectation{200, "", `"room_id":"` + room + `"`}},
		{"alias taken", a, "PUT", alias, body, expectation{409, "M_UNKNOWN", ""}},
		{"room lists alias", a, "GET", "/rooms/" + room + "/aliases", "", expectation{200, "", "#den:hs"}},
		{"alias on another server", a, "PUT", "/directory/room/" + url.PathEscape("#den:elsewhere"), body, expectation{400, "M_INVALID_PARAM", ""}},
		{"invalid alias", a, "PUT", "/directory/room/den", body, expectation{400, "M_INVALID_PARAM", ""}},
		{"invalid room ID", a, "PUT", "/directory/room/" + url.PathEscape("#x:hs"), `{"room_id":"den"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"room_id not a string", a, "PUT", "/directory/room/" + url.PathEscape("#x:hs"), `{"room_id":1}`, expectation{400, "M_BAD_JSON", ""}},
		{"alias for a room not joined", b, "PUT", "/directory/room/" + url.PathEscape("#bobs:hs"), body, expectation{403, "M_FORBIDDEN", ""}},
		{"unknown alias", a, "GET", "/directory/room/" + url.PathEscape("#nope:hs"), "", expectation{404, "M_NOT_FOUND", ""}},
		{"delete someone else's alias", b, "DELETE", alias, "", expectation{403, "M_FORBIDDEN", ""}},
		{"delete alias", a, "DELETE", alias, "", expectation{200, "", ""}},
		{"deleted alias gone", a, "GET", alias, "", expectation{404, "M_NOT_FOUND", ""}},
		{"visibility starts private", user{}, "GET", "/directory/list/room/" + room, "", expectation{200, "", `"visibility":"private"`}},
		{"publish by an outsider", b, "PUT", "/directory/list/room/" + room, `{"visibility":"public"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"bad visibility", a, "PUT", "/directory/list/room/" + room, `{"visibility":"loud"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"publish", a, "PUT", "/directory/list/room/" + room, `{"visibility":"public"}`, expectation{200, "", ""}},
		{"published", user{}, "GET", "/directory/list/room/" + room, "", expectation{200, "", `"visibility":"public"`}},
		{"public rooms list it", user{}, "GET", "/publicRooms", "", expectation{200, "", room}},
		{"public rooms bad limit", user{}, "GET", "/publicRooms?limit=x", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"public rooms bad since", user{}, "GET", "/publicRooms?since=x", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"public rooms of another server", user{}, "GET", "/publicRooms?server=elsewhere", "", expectation{400, "M_UNKNOWN", ""}},
	})
}

// TestDeviceHandlers: a user lists, reads and renames their own devices;
// another user's device is unknown to them; deleting needs
// user-interactive auth.
func TestDeviceHandlers(t *testing.T) {
	ts := newTestServer(t)
	a := ts.alice
	ts.run(t, []tableCase{
		{"list", a, "GET", "/devices", "", expectation{200, "", `"device_id":"ALICEDEV"`}},
		{"list holds only own", a, "GET", "/devices", "", expectation{200, "", ""}},
		{"rename", a, "PUT", "/devices/ALICEDEV", `{"display_name":"laptop"}`, expectation{200, "", ""}},
		{"renamed", a, "GET", "/devices/ALICEDEV", "", expectation{200, "", `"display_name":"laptop"`}},
		{"name not a string", a, "PUT", "/devices/ALICEDEV", `{"display_name":1}`, expectation{400, "M_BAD_JSON", ""}},
		{"name too long", a, "PUT", "/devices/ALICEDEV", `{"display_name":"` + strings.Repeat("n", 1001) + `"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"another user's device", a, "GET", "/devices/BOBDEV", "", expectation{404, "M_NOT_FOUND", ""}},
		{"rename another user's device", a, "PUT", "/devices/BOBDEV", `{"display_name":"x"}`, expectation{404, "M_NOT_FOUND", ""}},
		{"delete asks for auth", a, "DELETE", "/devices/ALICEDEV", `{}`, expectation{401, "", `"flows"`}},
		{"delete_devices asks for auth", a, "POST", "/delete_devices", `{"devices":["ALICEDEV"]}`, expectation{401, "", `"flows"`}},
		{"delete_devices without devices", a, "POST", "/delete_devices", `{"devices":"ALICEDEV"}`, expectation{400, "M_BAD_JSON", ""}},
		{"still there", a, "GET", "/devices/ALICEDEV", "", expectation{200, "", ""}},
	})
	t.Run("bob's device not listed to alice", func(t *testing.T) {
		if a := ts.must(ts.v3(a, "GET", "/devices", "")); strings.Contains(a.raw, "BOBDEV") {
			t.Fatalf("alice's devices: %s", a.raw)
		}
	})
}

// TestFilterHandlers: a filter is stored for oneself, read back by its
// ID, and refused when malformed or for someone else.
func TestFilterHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	created := ts.must(ts.v3(a, "POST", "/user/@alice:hs/filter", `{"room":{"timeline":{"limit":5}}}`))
	id := created.str("filter_id")
	if id == "" {
		t.Fatalf("no filter_id in %s", created.raw)
	}
	ts.run(t, []tableCase{
		{"read back", a, "GET", "/user/@alice:hs/filter/" + id, "", expectation{200, "", `"limit":5`}},
		{"unknown filter", a, "GET", "/user/@alice:hs/filter/99999", "", expectation{404, "M_NOT_FOUND", ""}},
		{"someone else's filter", b, "GET", "/user/@alice:hs/filter/" + id, "", expectation{403, "M_FORBIDDEN", ""}},
		{"bob's own namespace", b, "GET", "/user/@bob:hs/filter/" + id, "", expectation{404, "M_NOT_FOUND", ""}},
		{"create for someone else", b, "POST", "/user/@alice:hs/filter", `{}`, expectation{403, "M_FORBIDDEN", ""}},
		{"not JSON", a, "POST", "/user/@alice:hs/filter", `{`, expectation{400, "M_NOT_JSON", ""}},
		{"limit not a number", a, "POST", "/user/@alice:hs/filter", `{"room":{"timeline":{"limit":"five"}}}`, expectation{400, "M_BAD_JSON", ""}},
		{"sync with an unknown filter", a, "GET", "/sync?filter=424242&timeout=0", "", expectation{404, "M_NOT_FOUND", ""}},
		{"sync bad timeout", a, "GET", "/sync?timeout=soon", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"sync bad set_presence", a, "GET", "/sync?timeout=0&set_presence=away", "", expectation{400, "M_INVALID_PARAM", ""}},
	})
}

// TestKeyHandlers: one-time keys are uploaded and counted, claimed once
// by another user, and the query lists the uploader's device; malformed
// bodies and someone else's device keys are refused.
func TestKeyHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	otk := `{"one_time_keys":{"signed_curve25519:AAAAAQ":{"key":"k1"},"signed_curve25519:AAAAAg":{"key":"k2"}}}`
	claim := `{"one_time_keys":{"@alice:hs":{"ALICEDEV":"signed_curve25519"}}}`
	ts.run(t, []tableCase{
		{"upload one-time keys", a, "POST", "/keys/upload", otk, expectation{200, "", `"one_time_key_counts":{"signed_curve25519":2}`}},
		{"count without upload", a, "POST", "/keys/upload", `{}`, expectation{200, "", `"signed_curve25519":2`}},
		{"malformed key ID", a, "POST", "/keys/upload", `{"one_time_keys":{"nocolon":"k"}}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"key of the wrong type", a, "POST", "/keys/upload", `{"one_time_keys":{"curve25519:AAAAAw":5}}`, expectation{400, "M_BAD_JSON", ""}},
		{"someone else's device keys", a, "POST", "/keys/upload",
			`{"device_keys":{"user_id":"@bob:hs","device_id":"BOBDEV","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{"ed25519:BOBDEV":"x"},"signatures":{"@bob:hs":{"ed25519:BOBDEV":"y"}}}}`,
			expectation{400, "M_INVALID_PARAM", ""}},
		{"device keys not an object", a, "POST", "/keys/upload", `{"device_keys":3}`, expectation{400, "M_BAD_JSON", ""}},
		{"query without device_keys", b, "POST", "/keys/query", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"query device_keys wrong type", b, "POST", "/keys/query", `{"device_keys":["@alice:hs"]}`, expectation{400, "M_BAD_JSON", ""}},
		{"query", b, "POST", "/keys/query", `{"device_keys":{"@alice:hs":[]}}`, expectation{200, "", `"device_keys"`}},
		{"claim without one_time_keys", b, "POST", "/keys/claim", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"claim first", b, "POST", "/keys/claim", claim, expectation{200, "", `"signed_curve25519:`}},
		{"count went down", a, "POST", "/keys/upload", `{}`, expectation{200, "", `"signed_curve25519":1`}},
		{"claim second", b, "POST", "/keys/claim", claim, expectation{200, "", `"signed_curve25519:`}},
		{"claim when none left", b, "POST", "/keys/claim", claim, expectation{200, "", `"one_time_keys":{}`}},
		{"changes without from", a, "GET", "/keys/changes?to=s1", "", expectation{400, "M_MISSING_PARAM", ""}},
		{"changes without to", a, "GET", "/keys/changes?from=s1", "", expectation{400, "M_MISSING_PARAM", ""}},
	})
}

// TestDiscoveryHandlers: versions and well-known need no token,
// capabilities does and names the default room version.
func TestDiscoveryHandlers(t *testing.T) {
	ts := newTestServer(t)
	ts.run(t, []tableCase{
		{"versions", user{}, "GET", "/_matrix/client/versions", "", expectation{200, "", `"v1.12"`}},
		{"versions advertise keys", user{}, "GET", "/_matrix/client/versions", "", expectation{200, "", `"org.matrix.msc3814":true`}},
		{"well-known", user{}, "GET", "/.well-known/matrix/client", "", expectation{200, "", `"base_url":"http://hs.test"`}},
		{"capabilities", ts.alice, "GET", "/capabilities", "", expectation{200, "", `"m.room_versions"`}},
		{"capabilities without a token", user{}, "GET", "/capabilities", "", expectation{401, "M_MISSING_TOKEN", ""}},
		{"capabilities bad token", user{token: "nope"}, "GET", "/capabilities", "", expectation{401, "M_UNKNOWN_TOKEN", ""}},
		{"unknown endpoint", ts.alice, "GET", "/no/such/thing", "", expectation{404, "M_UNRECOGNIZED", ""}},
		{"wrong method", ts.alice, "DELETE", "/capabilities", "", expectation{405, "M_UNRECOGNIZED", ""}},
		{"no server keys", user{}, "GET", "/_matrix/key/v2/server", "", expectation{404, "M_NOT_FOUND", ""}},
		{"whoami", ts.alice, "GET", "/account/whoami", "", expectation{200, "", `"device_id":"ALICEDEV"`}},
		{"no turn server", ts.alice, "GET", "/voip/turnServer", "", expectation{200, "", `{}`}},
	})
	t.Run("capabilities default version", func(t *testing.T) {
		a := ts.must(ts.v3(ts.alice, "GET", "/capabilities", ""))
		if !strings.Contains(a.raw, `"default":"`+string(ts.rooms.DefaultVersion())+`"`) {
			t.Fatalf("capabilities %s", a.raw)
		}
	})
}

// TestRelationHandlers: relations and threads check their parameters,
// refuse outsiders, and list a reply in its thread.
func TestRelationHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{"preset":"private_chat"}`)
	root := ts.send(a, room, "r", `{"msgtype":"m.text","body":"root"}`)
	reply := ts.send(a, room, "t", `{"msgtype":"m.text","body":"in thread","m.relates_to":{"rel_type":"m.thread","event_id":"`+root+`"}}`)
	rel := v1 + "/rooms/" + room + "/relations/" + url.PathEscape(root)
	th := v1 + "/rooms/" + room + "/threads"
	ts.run(t, []tableCase{
		{"relations", a, "GET", rel, "", expectation{200, "", reply}},
		{"relations by type", a, "GET", rel + "/m.thread", "", expectation{200, "", reply}},
		{"relations of another type", a, "GET", rel + "/m.annotation", "", expectation{200, "", `"chunk":[]`}},
		{"relations bad dir", a, "GET", rel + "?dir=sideways", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"relations bad limit", a, "GET", rel + "?limit=-1", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"relations bad from", a, "GET", rel + "?from=zz", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"relations bad recurse", a, "GET", rel + "?recurse=maybe", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"relations of an unknown event", a, "GET", v1 + "/rooms/" + room + "/relations/$nope", "", expectation{404, "M_NOT_FOUND", ""}},
		{"relations in another user's room", b, "GET", rel, "", expectation{403, "M_FORBIDDEN", ""}},
		{"threads", a, "GET", th, "", expectation{200, "", root}},
		{"threads participated", a, "GET", th + "?include=participated", "", expectation{200, "", root}},
		{"threads bad include", a, "GET", th + "?include=some", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"threads zero limit", a, "GET", th + "?limit=0", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"threads bad from", a, "GET", th + "?from=zz", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"threads in another user's room", b, "GET", th, "", expectation{403, "M_FORBIDDEN", ""}},
	})
}

// TestSearchHandler: /search checks its body and finds messages only in
// the caller's rooms.
func TestSearchHandler(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{"preset":"private_chat"}`)
	ts.send(a, room, "s", `{"msgtype":"m.text","body":"marmalade recipe"}`)
	q := func(extra string) string {
		return `{"search_categories":{"room_events":{"search_term":"marmalade"` + extra + `}}}`
	}
	ts.run(t, []tableCase{
		{"found", a, "POST", "/search", q(""), expectation{200, "", "marmalade recipe"}},
		{"found by recency", a, "POST", "/search", q(`,"order_by":"recent"`), expectation{200, "", "marmalade recipe"}},
		{"not in another user's room", b, "POST", "/search", q(""), expectation{200, "", `"count":0`}},
		{"no categories", a, "POST", "/search", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"no term", a, "POST", "/search", `{"search_categories":{"room_events":{}}}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"unknown key", a, "POST", "/search", q(`,"keys":["content.secret"]`), expectation{400, "M_INVALID_PARAM", ""}},
		{"bad order", a, "POST", "/search", q(`,"order_by":"size"`), expectation{400, "M_INVALID_PARAM", ""}},
		{"term not a string", a, "POST", "/search", `{"search_categories":{"room_events":{"search_term":5}}}`, expectation{400, "M_BAD_JSON", ""}},
		{"bad filter", a, "POST", "/search", q(`,"filter":{"limit":"x"}`), expectation{400, "M_BAD_JSON", ""}},
		{"bad next_batch", a, "POST", "/search?next_batch=zz", q(""), expectation{400, "M_INVALID_PARAM", ""}},
		{"other categories only", a, "POST", "/search", `{"search_categories":{}}`, expectation{200, "", `"search_categories":{}`}},
	})
}
