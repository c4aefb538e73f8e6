package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func sendMsg(c *mxtest.Client, room, txn string, content map[string]any) string {
	c.T.Helper()
	return c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, txn), content).Str("event_id")
}

func bodies(r mxtest.Response) []string {
	var out []string
	for _, e := range r.Body["chunk"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "m.room.message" {
			c := ev["content"].(map[string]any)
			b, _ := c["body"].(string)
			out = append(out, b)
		}
	}
	return out
}

// TestConversation is the scripted conversation of the messaging issue,
// over HTTP, on both backends.
func TestConversation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "private_chat", "name": "Projet", "invite": []string{bob.UserID},
		}).Str("room_id")
		if !strings.HasPrefix(room, "!") || !strings.HasSuffix(room, ":localhost") {
			t.Fatalf("room id %q", room)
		}
		// Not invited: eve cannot join, read or send.
		eve.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		eve.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room), nil)
		eve.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/members", room), nil)
		eve.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/x", room), map[string]any{"body": "hi"})

		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		hello := sendMsg(alice, room, "t1", map[string]any{"msgtype": "m.text", "body": "Bonjour Bob"})
		if again := sendMsg(alice, room, "t1", map[string]any{"msgtype": "m.text", "body": "Bonjour Bob"}); again != hello {
			t.Fatalf("repeated txn gave %s, want %s", again, hello)
		}
		// A retry is answered by its transaction ID, even with other content.
		if again := sendMsg(alice, room, "t1", map[string]any{"msgtype": "m.text", "body": "other"}); again != hello {
			t.Fatalf("retry of t1 with other content: %s, want %s", again, hello)
		}
		reply := sendMsg(bob, room, "b1", map[string]any{"msgtype": "m.text", "body": "Salut !",
			"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": hello}}})
		_ = reply
		sendMsg(alice, room, "t2", map[string]any{"msgtype": "m.text", "body": "* Bonjour Bob !",
			"m.new_content": map[string]any{"msgtype": "m.text", "body": "Bonjour Bob !"},
			"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": hello}})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.reaction/r1", room), map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": hello, "key": "👍"}})
		oops := sendMsg(bob, room, "b2", map[string]any{"msgtype": "m.text", "body": "mot de passe: hunter2"})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/rd1", room, oops), map[string]any{"reason": "oops"})
		// Alice (creator, PL 100) may redact; bob may not redact alice's message.
		bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/rd2", room, hello), map[string]any{})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), map[string]any{"topic": "Réunion de lundi"})
		bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), map[string]any{"topic": "pwned"})

		ev := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, oops), nil)
		if c := ev.Body["content"].(map[string]any); len(c) != 0 {
			t.Fatalf("redacted event still has content: %s", ev.Raw)
		}
		topic := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic", room), nil)
		if topic.Str("topic") != "Réunion de lundi" {
			t.Fatalf("topic = %s", topic.Raw)
		}
		msgs := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=50", room), nil)
		got := strings.Join(bodies(msgs), "|")
		if !strings.Contains(got, "Bonjour Bob") || !strings.Contains(got, "Salut !") || strings.Contains(got, "hunter2") {
			t.Fatalf("history = %q", got)
		}
		rel := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/relations/%s/m.annotation", room, hello), nil)
		if len(rel.Body["chunk"].([]any)) != 1 {
			t.Fatalf("relations = %s", rel.Raw)
		}
		members := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
		if len(members.Body["joined"].(map[string]any)) != 2 {
			t.Fatalf("joined members = %s", members.Raw)
		}

		// Bob leaves; later messages are hidden from him, earlier ones stay.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		secret := sendMsg(alice, room, "t3", map[string]any{"msgtype": "m.text", "body": "après le départ de Bob"})
		bob.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, secret), nil)
		msgs = bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=50", room), nil)
		got = strings.Join(bodies(msgs), "|")
		if strings.Contains(got, "après") || !strings.Contains(got, "Salut !") {
			t.Fatalf("history after leaving = %q", got)
		}
		bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/b3", room), map[string]any{"body": "x"})

		// A public room in the directory, joined by alias.
		pub := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "public_chat", "visibility": "public", "name": "Amphi A", "room_alias_name": "amphi-a",
		})
		if pub.Str("room_alias") != "#amphi-a:localhost" {
			t.Fatalf("alias = %s", pub.Raw)
		}
		dir := eve.Must(200, "GET", "/_matrix/client/v3/publicRooms", nil)
		if !strings.Contains(string(dir.Raw), pub.Str("room_id")) || strings.Contains(string(dir.Raw), room) {
			t.Fatalf("directory = %s", dir.Raw)
		}
		joined := eve.Must(200, "POST", "/_matrix/client/v3/join/"+url.PathEscape("#amphi-a:localhost"), map[string]any{})
		if joined.Str("room_id") != pub.Str("room_id") {
			t.Fatalf("joined %s", joined.Raw)
		}
		jr := eve.Must(200, "GET", "/_matrix/client/v3/joined_rooms", nil)
		if fmt.Sprint(jr.Body["joined_rooms"]) != fmt.Sprintf("[%s]", pub.Str("room_id")) {
			t.Fatalf("eve's rooms = %s", jr.Raw)
		}
	})
}

func TestRoomBadInput(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	path := func(f string, a ...any) string { return mxtest.Path(f, a...) }
	big := map[string]any{"msgtype": "m.text", "body": strings.Repeat("x", 70000)}
	alice.MustErr(413, "M_TOO_LARGE", "PUT", path("/_matrix/client/v3/rooms/%s/send/m.room.message/big", room), big)
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", "/_matrix/client/v3/rooms/not-a-room/send/m.room.message/x", map[string]any{})
	alice.MustErr(403, "M_FORBIDDEN", "PUT", path("/_matrix/client/v3/rooms/%s/send/m.room.message/x", "!nope:localhost"), map[string]any{"body": "x"})
	// Forged membership for another user.
	alice.MustErr(403, "M_FORBIDDEN", "PUT", path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, bob.UserID), map[string]any{"membership": "leave"})
	bob.MustErr(403, "M_FORBIDDEN", "PUT", path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, alice.UserID), map[string]any{"membership": "ban"})
	bob.MustErr(403, "M_FORBIDDEN", "POST", path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": alice.UserID})
	// Invalid power levels.
	alice.MustErr(403, "M_FORBIDDEN", "PUT", path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", room), map[string]any{"users": map[string]any{alice.UserID: "100"}})
	alice.MustErr(400, "M_BAD_JSON", "PUT", path("/_matrix/client/v3/rooms/%s/send/m.room.message/f", room), `{"body": 1.5}`)
	alice.MustErr(400, "M_NOT_JSON", "PUT", path("/_matrix/client/v3/rooms/%s/send/m.room.message/g", room), `nope`)
	alice.MustErr(400, "M_INVALID_PARAM", "GET", path("/_matrix/client/v3/rooms/%s/messages?limit=-1", room), nil)
	alice.MustErr(400, "M_INVALID_PARAM", "GET", path("/_matrix/client/v3/rooms/%s/messages?from=garbage", room), nil)
	alice.MustErr(400, "M_UNSUPPORTED_ROOM_VERSION", "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_version": "13"})
	alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{"not-a-user"}})
	alice.MustErr(404, "M_NOT_FOUND", "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{"@ghost:localhost"}})
	alice.MustErr(403, "M_FORBIDDEN", "POST", path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": "@someone:elsewhere.org"})
	huge := alice.Must(200, "GET", path("/_matrix/client/v3/rooms/%s/messages?limit=100000000", room), nil)
	if huge.Body["chunk"] == nil {
		t.Fatal("huge limit not clamped")
	}
	// Nothing above changed the room: power levels and membership intact.
	pl := alice.Must(200, "GET", path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels", room), nil)
	if pl.Body["users"].(map[string]any)[alice.UserID] != float64(100) {
		t.Fatalf("power levels changed: %s", pl.Raw)
	}
	jm := alice.Must(200, "GET", path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
	if len(jm.Body["joined"].(map[string]any)) != 2 {
		t.Fatalf("members changed: %s", jm.Raw)
	}
}
