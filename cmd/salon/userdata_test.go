package main

import (
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func TestUserDataAndReceipts(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}, "is_direct": true}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

	// Global and room account data, m.direct.
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", alice.UserID), map[string]any{bob.UserID: []string{room}})
	if got := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", alice.UserID), nil); !strings.Contains(string(got.Raw), room) {
		t.Fatalf("m.direct = %s", got.Raw)
	}
	bob.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", alice.UserID), nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/user/%s/account_data/nope", alice.UserID), nil)
	alice.MustErr(405, "M_BAD_JSON", "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.push_rules", alice.UserID), map[string]any{})

	// Tags.
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/m.favourite", alice.UserID, room), map[string]any{"order": 0.5})
	tags := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags", alice.UserID, room), nil)
	if !strings.Contains(string(tags.Raw), `"m.favourite":{"order":0.5}`) {
		t.Fatalf("tags = %s", tags.Raw)
	}
	alice.Must(200, "DELETE", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/m.favourite", alice.UserID, room), nil)
	if tags := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags", alice.UserID, room), nil); strings.Contains(string(tags.Raw), "favourite") {
		t.Fatalf("tag not deleted: %s", tags.Raw)
	}

	// Receipts and read markers.
	ev := sendMsg(alice, room, "m1", map[string]any{"msgtype": "m.text", "body": "lu ?"})
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, ev), map[string]any{})
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/read_markers", room), map[string]any{"m.fully_read": ev, "m.read.private": ev})
	fr := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/account_data/m.fully_read", bob.UserID, room), nil)
	if fr.Str("event_id") != ev {
		t.Fatalf("m.fully_read = %s", fr.Raw)
	}
	bob.MustErr(400, "M_INVALID_PARAM", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.bogus/%s", room, ev), map[string]any{})
	eve := mxtest.Register(t, srv.URL, "eve", "password eve")
	eve.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, ev), map[string]any{})

	// Context.
	for i, b := range []string{"un", "deux", "trois"} {
		sendMsg(alice, room, "c"+string(rune('a'+i)), map[string]any{"msgtype": "m.text", "body": b})
	}
	ctx := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/context/%s?limit=4", room, ev), nil)
	if ctx.Body["event"].(map[string]any)["event_id"] != ev || len(ctx.Body["events_after"].([]any)) != 2 || len(ctx.Body["state"].([]any)) == 0 {
		t.Fatalf("context = %s", ctx.Raw)
	}
	eve.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/context/%s", room, ev), nil)
}

// TestUserDirectoryPrivacy: the directory shows people who share a room
// with the searcher or sit in a public room, nobody else.
func TestUserDirectoryPrivacy(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	carol := mxtest.Register(t, srv.URL, "carol", "password carol")
	dan := mxtest.Register(t, srv.URL, "dan", "password dan")
	// Alice and Bob share a private room; Carol sits in a public room; Dan is alone.
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	carol.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "visibility": "public"})
	_ = dan
	search := func(c *mxtest.Client, term string) string {
		return string(c.Must(200, "POST", "/_matrix/client/v3/user_directory/search", map[string]any{"search_term": term}).Raw)
	}
	if s := search(alice, "bob"); !strings.Contains(s, bob.UserID) {
		t.Fatalf("alice cannot find bob: %s", s)
	}
	if s := search(alice, "carol"); !strings.Contains(s, carol.UserID) {
		t.Fatalf("alice cannot find carol in a public room: %s", s)
	}
	if s := search(alice, "dan"); strings.Contains(s, dan.UserID) {
		t.Fatalf("alice found dan who shares nothing with her: %s", s)
	}
	if s := search(dan, "bob"); strings.Contains(s, bob.UserID) {
		t.Fatalf("dan found bob, who is only in a private room: %s", s)
	}
}
