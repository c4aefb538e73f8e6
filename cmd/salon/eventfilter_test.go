package main

import (
	"net/url"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestOneEventFilter: /messages, /context and /sync apply one
// RoomEventFilter the same way: Matrix globs anywhere in a type, senders,
// rooms and contains_url, and the same refusals.
func TestOneEventFilter(t *testing.T) {
	forEachBackend(t, testOneEventFilter)
}

func testOneEventFilter(t *testing.T, db string) {
	srv := startServer(t, db)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	sendMsg(alice, room, "f1", map[string]any{"msgtype": "m.text", "body": "one"})
	sendMsg(bob, room, "f2", map[string]any{"msgtype": "m.image", "body": "pic", "url": "mxc://localhost/x"})
	mid := sendMsg(alice, room, "f3", map[string]any{"msgtype": "m.text", "body": "three"})
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/org.example.custom/f4", room), map[string]any{"body": "four"})
	sendMsg(bob, room, "f5", map[string]any{"msgtype": "m.text", "body": "five"})

	bodies := func(evs []any) []string {
		var out []string
		for _, e := range evs {
			c, _ := e.(map[string]any)["content"].(map[string]any)
			if b, ok := c["body"].(string); ok {
				out = append(out, b)
			}
		}
		slices.Sort(out)
		return out
	}
	messages := func(filter string) []string {
		r := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&limit=50&filter="+url.QueryEscape(filter), nil)
		return bodies(r.Body["chunk"].([]any))
	}
	syncTimeline := func(filter string) []string {
		f := `{"room":{"timeline":` + filter + `}}`
		r := alice.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0&filter="+url.QueryEscape(f), nil)
		j, _ := r.Body["rooms"].(map[string]any)["join"].(map[string]any)[room].(map[string]any)
		return bodies(j["timeline"].(map[string]any)["events"].([]any))
	}
	for _, tc := range []struct {
		name, filter string
		want         []string
	}{
		{"glob in the middle", `{"types":["m.*.message"]}`, []string{"five", "one", "pic", "three"}},
		{"glob at the start", `{"not_types":["*.message"]}`, []string{"four"}},
		{"one-character wildcard", `{"types":["org.example.custo?"]}`, []string{"four"}},
		{"types compare exactly", `{"types":["M.ROOM.MESSAGE"]}`, nil},
		{"senders", `{"senders":["@bob:localhost"],"types":["m.room.message"]}`, []string{"five", "pic"}},
		{"contains_url", `{"contains_url":true}`, []string{"pic"}},
		{"another room", `{"rooms":["!elsewhere:localhost"]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := messages(tc.filter); !slices.Equal(got, tc.want) {
				t.Errorf("/messages = %v, want %v", got, tc.want)
			}
			if got := syncTimeline(tc.filter); !slices.Equal(got, tc.want) {
				t.Errorf("/sync timeline = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []struct{ filter, code string }{
		{`{"senders":["not a user"]}`, "M_INVALID_PARAM"},
		{`{"limit":-1}`, "M_INVALID_PARAM"},
		{`{"types":"m.room.message"}`, "M_BAD_JSON"},
		{`[]`, "M_BAD_JSON"},
	} {
		alice.MustErr(400, bad.code, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", room)+"?dir=b&filter="+url.QueryEscape(bad.filter), nil)
		alice.MustErr(400, bad.code, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/context/%s", room, mid)+"?filter="+url.QueryEscape(bad.filter), nil)
	}

	// /context: the filter applies around the event, not to it; with
	// lazy_load_members the state is the senders' memberships.
	c := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/context/%s", room, mid)+"?limit=10&filter="+
		url.QueryEscape(`{"senders":["@bob:localhost"],"lazy_load_members":true}`), nil)
	if got := bodies(append(c.Body["events_before"].([]any), c.Body["events_after"].([]any)...)); !slices.Equal(got, []string{"five", "pic"}) {
		t.Errorf("/context events = %v", got)
	}
	if c.Body["event"].(map[string]any)["event_id"] != mid {
		t.Errorf("/context event = %v", c.Body["event"])
	}
	var members []string
	for _, st := range c.Body["state"].([]any) {
		ev := st.(map[string]any)
		if ev["type"] != "m.room.member" {
			t.Errorf("lazy /context state holds %v", ev["type"])
		}
		members = append(members, ev["state_key"].(string))
	}
	slices.Sort(members)
	if !slices.Equal(members, []string{"@alice:localhost", "@bob:localhost"}) {
		t.Errorf("lazy /context members = %v", members)
	}
}
