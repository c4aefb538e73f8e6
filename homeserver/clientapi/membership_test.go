package clientapi

import (
	"net/url"
	"strings"
	"testing"
)

// TestMembershipHandlers: invite, join, kick, ban, unban, leave and forget
// check their bodies, follow the room's power levels, and the membership
// they set is what /members reads afterwards.
func TestMembershipHandlers(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{"preset":"private_chat"}`)
	r := "/rooms/" + room
	ts.run(t, []tableCase{
		{"join uninvited", b, "POST", "/join/" + room, `{}`, expectation{403, "M_FORBIDDEN", ""}},
		{"invite without user_id", a, "POST", r + "/invite", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"invite invalid user_id", a, "POST", r + "/invite", `{"user_id":"bob"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"invite user_id not a string", a, "POST", r + "/invite", `{"user_id":5}`, expectation{400, "M_BAD_JSON", ""}},
		{"invite to an invalid room", a, "POST", "/rooms/room/invite", `{"user_id":"@bob:hs"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"invite by an outsider", b, "POST", r + "/invite", `{"user_id":"@bob:hs"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"invite", a, "POST", r + "/invite", `{"user_id":"@bob:hs"}`, expectation{200, "", ""}},
		{"invited listed", a, "GET", r + "/members?membership=invite", "", expectation{200, "", `"state_key":"@bob:hs"`}},
		{"join bad body", b, "POST", r + "/join", `{"reason":1}`, expectation{400, "M_BAD_JSON", ""}},
		{"join", b, "POST", r + "/join", `{"reason":"hi"}`, expectation{200, "", room}},
		{"joined listed", a, "GET", r + "/joined_members", "", expectation{200, "", `"@bob:hs"`}},
		{"kick without power", b, "POST", r + "/kick", `{"user_id":"@alice:hs"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"ban without power", b, "POST", r + "/ban", `{"user_id":"@alice:hs"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"kick", a, "POST", r + "/kick", `{"user_id":"@bob:hs","reason":"noise"}`, expectation{200, "", ""}},
		{"kicked reads leave", a, "GET", r + "/state/m.room.member/@bob:hs", "", expectation{200, "", `"membership":"leave"`}},
		{"ban", a, "POST", r + "/ban", `{"user_id":"@bob:hs"}`, expectation{200, "", ""}},
		{"banned may not join", b, "POST", "/join/" + room, `{}`, expectation{403, "M_FORBIDDEN", ""}},
		{"banned listed", a, "GET", r + "/members?membership=ban", "", expectation{200, "", `"@bob:hs"`}},
		{"unban", a, "POST", r + "/unban", `{"user_id":"@bob:hs"}`, expectation{200, "", ""}},
		{"unbanned reads leave", a, "GET", r + "/state/m.room.member/@bob:hs", "", expectation{200, "", `"membership":"leave"`}},
		{"forget while joined", a, "POST", r + "/forget", `{}`, expectation{400, "M_UNKNOWN", ""}},
		{"leave", a, "POST", r + "/leave", ``, expectation{200, "", ""}},
		{"no longer joined", a, "GET", "/joined_rooms", "", expectation{200, "", `"joined_rooms":[]`}},
		{"forget", a, "POST", r + "/forget", ``, expectation{200, "", ""}},
		{"send after leaving", a, "PUT", r + "/send/m.room.message/late", `{"body":"x"}`, expectation{403, "M_FORBIDDEN", ""}},
	})
}

// TestUserDataService: with the real UserData service, what the account
// data and tag handlers write is what they read back, per user and room.
func TestUserDataService(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{}`)
	ev := ts.send(a, room, "x", `{"msgtype":"m.text","body":"x"}`)
	ts.run(t, []tableCase{
		{"unset account data", a, "GET", "/user/@alice:hs/account_data/x.theme", "", expectation{404, "M_NOT_FOUND", ""}},
		{"put account data", a, "PUT", "/user/@alice:hs/account_data/x.theme", `{"dark":true}`, expectation{200, "", ""}},
		{"read account data", a, "GET", "/user/@alice:hs/account_data/x.theme", "", expectation{200, "", `"dark":true`}},
		{"another user's account data", b, "GET", "/user/@alice:hs/account_data/x.theme", "", expectation{403, "M_FORBIDDEN", ""}},
		{"account data is per user", b, "GET", "/user/@bob:hs/account_data/x.theme", "", expectation{404, "M_NOT_FOUND", ""}},
		{"account data not an object", a, "PUT", "/user/@alice:hs/account_data/x.theme", `[1]`, expectation{400, "M_BAD_JSON", ""}},
		{"room account data", a, "PUT", "/user/@alice:hs/rooms/" + room + "/account_data/x.seen", `{"n":2}`, expectation{200, "", ""}},
		{"room account data apart from global", a, "GET", "/user/@alice:hs/account_data/x.seen", "", expectation{404, "M_NOT_FOUND", ""}},
		{"room account data read", a, "GET", "/user/@alice:hs/rooms/" + room + "/account_data/x.seen", "", expectation{200, "", `"n":2`}},
		{"tag", a, "PUT", "/user/@alice:hs/rooms/" + room + "/tags/m.favourite", `{"order":0.25}`, expectation{200, "", ""}},
		{"tags read", a, "GET", "/user/@alice:hs/rooms/" + room + "/tags", "", expectation{200, "", `"m.favourite":{"order":0.25}`}},
		{"untag", a, "DELETE", "/user/@alice:hs/rooms/" + room + "/tags/m.favourite", "", expectation{200, "", ""}},
		{"tags empty", a, "GET", "/user/@alice:hs/rooms/" + room + "/tags", "", expectation{200, "", `"tags":{}`}},
		{"receipt", a, "POST", "/rooms/" + room + "/receipt/m.read/" + url.PathEscape(ev), `{}`, expectation{200, "", ""}},
		{"receipt of an unknown type", a, "POST", "/rooms/" + room + "/receipt/m.glance/" + url.PathEscape(ev), `{}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"fully read marker", a, "POST", "/rooms/" + room + "/read_markers", `{"m.fully_read":"` + ev + `"}`, expectation{200, "", ""}},
		{"fully read visible", a, "GET", "/user/@alice:hs/rooms/" + room + "/account_data/m.fully_read", "", expectation{200, "", ev}},
	})
}

// TestTypingPresenceToDevice: typing needs one's own ID and a joined
// room; presence is one's own to set and shown only to room mates;
// to-device messages need a messages object.
func TestTypingPresenceToDevice(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	room := ts.createRoom(a, `{"preset":"private_chat"}`)
	ty := "/rooms/" + room + "/typing/"
	ts.run(t, []tableCase{
		{"typing", a, "PUT", ty + "@alice:hs", `{"typing":true,"timeout":3000}`, expectation{200, "", ""}},
		{"typing for someone else", a, "PUT", ty + "@bob:hs", `{"typing":true}`, expectation{403, "M_FORBIDDEN", ""}},
		{"typing not joined", b, "PUT", ty + "@bob:hs", `{"typing":true}`, expectation{403, "M_FORBIDDEN", ""}},
		{"typing missing", a, "PUT", ty + "@alice:hs", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"typing not a bool", a, "PUT", ty + "@alice:hs", `{"typing":"yes"}`, expectation{400, "M_BAD_JSON", ""}},
		{"typing in an invalid room", a, "PUT", "/rooms/x/typing/@alice:hs", `{"typing":false}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"own presence", a, "PUT", "/presence/@alice:hs/status", `{"presence":"online"}`, expectation{200, "", ""}},
		{"bad presence", a, "PUT", "/presence/@alice:hs/status", `{"presence":"busy"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"status too long", a, "PUT", "/presence/@alice:hs/status", `{"presence":"online","status_msg":"` + strings.Repeat("s", 1100) + `"}`, expectation{400, "M_INVALID_PARAM", ""}},
		{"someone else's presence set", a, "PUT", "/presence/@bob:hs/status", `{"presence":"online"}`, expectation{403, "M_FORBIDDEN", ""}},
		{"stranger's presence", a, "GET", "/presence/@bob:hs/status", "", expectation{403, "M_FORBIDDEN", ""}},
		{"invalid presence user", a, "GET", "/presence/bob/status", "", expectation{400, "M_INVALID_PARAM", ""}},
		{"own presence read", a, "GET", "/presence/@alice:hs/status", "", expectation{200, "", `"presence"`}},
		{"to-device without messages", a, "PUT", "/sendToDevice/m.test/t1", `{}`, expectation{400, "M_MISSING_PARAM", ""}},
		{"to-device messages wrong type", a, "PUT", "/sendToDevice/m.test/t1", `{"messages":[]}`, expectation{400, "M_BAD_JSON", ""}},
		{"to-device", a, "PUT", "/sendToDevice/m.test/t1", `{"messages":{"@bob:hs":{"BOBDEV":{"x":1}}}}`, expectation{200, "", ""}},
		{"to-device replayed", a, "PUT", "/sendToDevice/m.test/t1", `{"messages":{"@bob:hs":{"BOBDEV":{"x":1}}}}`, expectation{200, "", ""}},
	})
	t.Run("to-device delivered once by sync", func(t *testing.T) {
		s := ts.must(ts.v3(b, "GET", "/sync?timeout=0", ""))
		if n := strings.Count(s.raw, `"type":"m.test"`); n != 1 {
			t.Fatalf("bob's sync holds %d m.test messages: %s", n, s.raw)
		}
	})
}

// TestUserDirectoryHandler: the directory finds people one shares a room
// with, by ID or display name, never oneself through a private room, and
// nobody one shares nothing with.
func TestUserDirectoryHandler(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.alice, ts.bob
	ts.must(ts.v3(a, "PUT", "/profile/@alice:hs/displayname", `{"displayname":"Alice Liddell"}`))
	search := func(u user, term string) answer {
		return ts.must(ts.v3(u, "POST", "/user_directory/search", `{"search_term":"`+term+`"}`))
	}
	if got := search(b, "ali"); strings.Contains(got.raw, "@alice:hs") {
		t.Fatalf("a stranger was found: %s", got.raw)
	}
	room := ts.createRoom(a, `{"preset":"private_chat"}`)
	if got := search(a, "ali"); strings.Contains(got.raw, "@alice:hs") {
		t.Fatalf("the searcher found themself: %s", got.raw)
	}
	ts.must(ts.v3(a, "POST", "/rooms/"+room+"/invite", `{"user_id":"@bob:hs"}`))
	ts.must(ts.v3(b, "POST", "/join/"+room, `{}`))
	for _, term := range []string{"ali", "liddell", "@alice"} {
		if got := search(b, term); !strings.Contains(got.raw, `"user_id":"@alice:hs"`) || !strings.Contains(got.raw, `"display_name":"Alice Liddell"`) {
			t.Fatalf("search %q: %s", term, got.raw)
		}
	}
	ts.check(t, ts.v3(b, "POST", "/user_directory/search", `{"search_term":5}`), expectation{400, "M_BAD_JSON", ""})
	ts.check(t, ts.v3(b, "POST", "/user_directory/search", `{"search_term":"   "}`), expectation{200, "", `"results":[]`})
}
