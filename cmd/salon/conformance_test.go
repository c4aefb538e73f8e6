package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// Regression tests for the behaviours Complement's client-server tests
// found wrong (make conformance), each over HTTP against the real server
// on both backends.

func sendText(c *mxtest.Client, room, txn, body string) string {
	c.T.Helper()
	return c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, txn),
		map[string]any{"msgtype": "m.text", "body": body}).Str("event_id")
}

// publicRoom creates a public_chat room as c and returns its ID.
func publicRoom(c *mxtest.Client) string {
	c.T.Helper()
	return c.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
}

func joinedTimeline(t *testing.T, sync mxtest.Response, room string) map[string]any {
	t.Helper()
	rooms, _ := sync.Body["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	r, _ := join[room].(map[string]any)
	tl, _ := r["timeline"].(map[string]any)
	if tl == nil {
		t.Fatalf("room %s not in rooms.join: %s", room, sync.Raw)
	}
	return tl
}

// on is c reporting failures to t (a subtest), not to the test that
// made it.
func on(t *testing.T, c *mxtest.Client) *mxtest.Client {
	cp := *c
	cp.T = t
	return &cp
}

func TestConformanceFixes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		srv := startServer(t, database)
		alice0 := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob0 := mxtest.Register(t, srv.URL, "bob", "password bob")

		// matrix-commander looped forever: the last page with events had no
		// end, and nio then paged from the newest event again.
		t.Run("messages end is omitted only on an empty page", func(t *testing.T) {
			alice := on(t, alice0)
			room := publicRoom(alice)
			sendText(alice, room, "m1", "one")
			page := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&limit=50", nil)
			end := page.Str("end")
			if end == "" || len(page.Body["chunk"].([]any)) == 0 {
				t.Fatalf("last page with events has no end: %s", page.Raw)
			}
			next := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&limit=50&from="+url.QueryEscape(end), nil)
			if _, has := next.Body["end"]; has || len(next.Body["chunk"].([]any)) != 0 {
				t.Fatalf("page past the start: want an empty chunk and no end: %s", next.Raw)
			}
		})

		t.Run("messages lazy-loads members and filters contains_url", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			sendText(bob, room, "lz1", "from bob")
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/lz2", room),
				map[string]any{"msgtype": "m.file", "body": "f", "url": "mxc://localhost/abc"})
			flt := url.QueryEscape(`{"lazy_load_members":true,"types":["m.room.message"]}`)
			page := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&filter="+flt, nil)
			state, _ := page.Body["state"].([]any)
			keys := map[string]bool{}
			for _, s := range state {
				ev := s.(map[string]any)
				if ev["type"] != "m.room.member" {
					t.Fatalf("state holds %v", ev)
				}
				keys[ev["state_key"].(string)] = true
			}
			if len(keys) != 2 || !keys[alice.UserID] || !keys[bob.UserID] {
				t.Fatalf("lazy-loaded state = %v, want the members of alice and bob: %s", keys, page.Raw)
			}
			withURL := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&filter="+url.QueryEscape(`{"contains_url":true}`), nil)
			if chunk := withURL.Body["chunk"].([]any); len(chunk) != 1 {
				t.Fatalf("contains_url: %d events: %s", len(chunk), withURL.Raw)
			}
		})

		t.Run("transaction ID retry and room scope", func(t *testing.T) {
			alice := on(t, alice0)
			r1, r2 := publicRoom(alice), publicRoom(alice)
			first := sendText(alice, r1, "abc", "first")
			if again := sendText(alice, r1, "abc", "second"); again != first {
				t.Fatalf("retry with other content: %s, want %s", again, first)
			}
			if other := sendText(alice, r2, "abc", "first"); other == first {
				t.Fatal("the same transaction ID in another room returned the first room's event")
			}
		})

		t.Run("identical state and a second join make no new event", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			path := mxtest.Path("/_matrix/client/v3/rooms/%s/state/a.test/", room)
			one := alice.Must(200, "PUT", path, map[string]any{"k": "v"}).Str("event_id")
			if two := alice.Must(200, "PUT", path, map[string]any{"k": "v"}).Str("event_id"); two != one {
				t.Fatalf("same state twice: %s then %s", one, two)
			}
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			member := mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, bob.UserID)
			before := alice.Must(200, "GET", member+"?format=event", nil).Str("event_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			if after := alice.Must(200, "GET", member+"?format=event", nil).Str("event_id"); after != before || before == "" {
				t.Fatalf("second join made a new member event: %s then %s", before, after)
			}
		})

		t.Run("join keeps custom member content", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{"foo": "bar", "membership": "leave"})
			c := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, bob.UserID), nil)
			if c.Str("foo") != "bar" || c.Str("membership") != "join" {
				t.Fatalf("member content %s", c.Raw)
			}
		})

		t.Run("createRoom topic has an m.topic block", func(t *testing.T) {
			alice := on(t, alice0)
			room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"topic": "Sujet"}).Str("room_id")
			c := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), nil)
			if !strings.Contains(string(c.Raw), `"m.topic":{"m.text":[{`) || !strings.Contains(string(c.Raw), `"body":"Sujet"`) || c.Str("topic") != "Sujet" {
				t.Fatalf("topic content %s", c.Raw)
			}
		})

		t.Run("event of a room never joined is 404", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
			ev := sendText(alice, room, "p1", "private")
			bob.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, ev), nil)
		})

		t.Run("canonical alias validation and alias deletion", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			r1, r2 := publicRoom(alice), publicRoom(alice)
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#one:localhost"), map[string]any{"room_id": r1})
			canon := func(room string, content map[string]any) mxtest.Response {
				return alice.Do("PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.canonical_alias/", room), content)
			}
			for _, c := range []struct {
				content map[string]any
				errcode string
			}{
				{map[string]any{"alias": "#missing:localhost"}, "M_BAD_ALIAS"},
				{map[string]any{"alias": "%notanalias:localhost"}, "M_INVALID_PARAM"},
				{map[string]any{"alias": "#one:localhost"}, "M_BAD_ALIAS"}, // points to r1
				{map[string]any{"alt_aliases": []string{"#one:localhost"}}, "M_BAD_ALIAS"},
				{map[string]any{"alt_aliases": "#one:localhost"}, "M_INVALID_PARAM"},
			} {
				if res := canon(r2, c.content); res.Status != 400 || res.Errcode() != c.errcode {
					t.Errorf("%v: %d %s, want 400 %s", c.content, res.Status, res.Raw, c.errcode)
				}
			}
			if res := canon(r1, map[string]any{"alias": "#one:localhost", "alt_aliases": []string{"#one:localhost"}}); res.Status != 200 {
				t.Fatalf("valid canonical alias refused: %s", res.Raw)
			}
			// A moderator may delete another's alias; the canonical alias
			// event loses it.
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", r1), map[string]any{})
			bob.MustErr(403, "M_FORBIDDEN", "DELETE", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#one:localhost"), nil)
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", r1),
				map[string]any{"users": map[string]int{alice.UserID: 100, bob.UserID: 100}})
			bob.Must(200, "DELETE", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#one:localhost"), nil)
			if c := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.canonical_alias/", r1), nil); len(c.Body) != 0 {
				t.Fatalf("canonical alias after its alias was deleted: %s", c.Raw)
			}
		})

		t.Run("status codes", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			// Bad UTF-8 is M_NOT_JSON, even where UIA would answer 401.
			anon := mxtest.New(t, srv.URL)
			anon.MustErr(400, "M_NOT_JSON", "POST", "/_matrix/client/v3/register", []byte("{\"username\":\"a\x81\"}"))
			// UIA with another user's password is 403, not a 401 retry.
			other := mxtest.Login(t, srv.URL, "alice", "password alice")
			res := alice.Do("DELETE", "/_matrix/client/v3/devices/"+other.DeviceID, map[string]any{"auth": map[string]any{
				"type": "m.login.password", "password": "password bob",
				"identifier": map[string]any{"type": "m.id.user", "user": bob.UserID},
			}})
			if res.Status != 403 {
				t.Fatalf("UIA as another user: %d %s", res.Status, res.Raw)
			}
			other.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
			// avatar_url: any string but a URL of another scheme than mxc.
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/avatar_url", alice.UserID), map[string]any{"avatar_url": "LemurLover"})
			alice.MustErr(400, "M_INVALID_PARAM", "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/avatar_url", alice.UserID), map[string]any{"avatar_url": "https://tracker.example/p.png"})
		})

		t.Run("initial sync has m.push_rules with global", func(t *testing.T) {
			carol := mxtest.Register(t, srv.URL, "carol", "password carol")
			s := carol.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil)
			var body struct {
				AccountData struct {
					Events []struct {
						Type    string         `json:"type"`
						Content map[string]any `json:"content"`
					} `json:"events"`
				} `json:"account_data"`
			}
			_ = json.Unmarshal(s.Raw, &body)
			for _, ev := range body.AccountData.Events {
				if ev.Type == "m.push_rules" && ev.Content["global"] != nil {
					return
				}
			}
			t.Fatalf("no m.push_rules with global: %s", s.Raw)
		})

		t.Run("invites from ignored users are hidden", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			dave := mxtest.Register(t, srv.URL, "dave", "password dave")
			since := dave.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			dave.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.ignored_user_list", dave.UserID),
				map[string]any{"ignored_users": map[string]any{bob.UserID: map[string]any{}}})
			fromBob := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{dave.UserID}}).Str("room_id")
			fromAlice := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{dave.UserID}}).Str("room_id")
			s := dave.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0&since="+url.QueryEscape(since), nil)
			if strings.Contains(string(s.Raw), fromBob) || !strings.Contains(string(s.Raw), fromAlice) {
				t.Fatalf("want only alice's invite: %s", s.Raw)
			}
		})

		t.Run("forgotten room", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			sendText(alice, room, "f1", "hello")
			since := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/forget", room), map[string]any{})
			bob.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room), nil)
			flt := url.QueryEscape(`{"room":{"include_leave":true}}`)
			inc := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0&filter="+flt+"&since="+url.QueryEscape(since), nil)
			if !strings.Contains(string(inc.Raw), `"leave":{"`+room) {
				t.Fatalf("incremental sync from before the leave lacks it: %s", inc.Raw)
			}
			if full := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0&filter="+flt, nil); strings.Contains(string(full.Raw), room) {
				t.Fatalf("initial sync shows the forgotten room: %s", full.Raw)
			}
		})

		t.Run("newly joined room: unsigned.membership and a limited timeline", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			pre := sendText(alice, room, "u1", "before bob")
			since := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			post := sendText(alice, room, "u2", "after bob")
			flt := url.QueryEscape(`{"room":{"timeline":{"limit":10,"types":["m.room.message"]}}}`)
			s := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0&filter="+flt+"&since="+url.QueryEscape(since), nil)
			tl := joinedTimeline(t, s, room)
			if tl["limited"] != true {
				t.Errorf("newly joined room's timeline not limited: %v", tl)
			}
			want := map[string]string{pre: "leave", post: "join"}
			for _, e := range tl["events"].([]any) {
				ev := e.(map[string]any)
				u, _ := ev["unsigned"].(map[string]any)
				if w, ok := want[ev["event_id"].(string)]; ok && u["membership"] != w {
					t.Errorf("unsigned.membership of %s = %v, want %s", ev["event_id"], u["membership"], w)
				}
			}
		})
	})
}
