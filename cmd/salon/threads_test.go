package main

import (
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func threadReply(c *mxtest.Client, room, txn, root, body string) string {
	c.T.Helper()
	return sendMsg(c, room, txn, map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": map[string]any{"event_id": root}}})
}

func threadRoots(c *mxtest.Client, room, query string) ([]map[string]any, string) {
	c.T.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/threads", room)+query, nil)
	var out []map[string]any
	for _, e := range r.Body["chunk"].([]any) {
		out = append(out, e.(map[string]any))
	}
	next, _ := r.Body["next_batch"].(string)
	return out, next
}

func threadSummary(ev map[string]any) map[string]any {
	u, _ := ev["unsigned"].(map[string]any)
	rel, _ := u["m.relations"].(map[string]any)
	th, _ := rel["m.thread"].(map[string]any)
	return th
}

// TestThreads: the thread list (newest reply first, include, pagination),
// the bundled thread summary, history visibility and the spec's errors.
func TestThreads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		root1 := sendMsg(alice, room, "t1", map[string]any{"msgtype": "m.text", "body": "root one"})
		root2 := sendMsg(bob, room, "t2", map[string]any{"msgtype": "m.text", "body": "root two"})
		sendMsg(alice, room, "t3", map[string]any{"msgtype": "m.text", "body": "no thread"})
		threadReply(alice, room, "r1", root2, "reply to two")
		threadReply(bob, room, "r2", root1, "first reply to one")
		last := threadReply(bob, room, "r3", root1, "second reply to one")

		got, next := threadRoots(alice, room, "")
		if len(got) != 2 || got[0]["event_id"] != root1 || got[1]["event_id"] != root2 || next != "" {
			t.Fatalf("threads = %v (next %q)", got, next)
		}
		s := threadSummary(got[0])
		if s["count"] != float64(2) || s["current_user_participated"] != true || s["latest_event"].(map[string]any)["event_id"] != last {
			t.Fatalf("summary of root one: %v", s)
		}
		if s := threadSummary(got[1]); s["count"] != float64(1) || s["current_user_participated"] != true {
			t.Fatalf("summary of root two: %v", s)
		}
		if got, _ := threadRoots(bob, room, "?include=participated"); len(got) != 2 {
			t.Fatalf("bob participated in both: %v", got)
		}
		threadReply(bob, room, "r4", root2, "bob in two")
		// Carol joins and writes in no thread: participated is empty.
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		if got, _ := threadRoots(carol, room, "?include=participated"); len(got) != 0 {
			t.Fatalf("carol participated in %v", got)
		}
		// One per page, newest reply first: two (bob's reply), then one.
		var ids []any
		next = ""
		for pages := 0; pages < 5; pages++ {
			q := "?limit=1"
			if next != "" {
				q += "&from=" + next
			}
			got, n := threadRoots(alice, room, q)
			for _, e := range got {
				ids = append(ids, e["event_id"])
			}
			if n == "" {
				break
			}
			next = n
		}
		if len(ids) != 2 || ids[0] != root2 || ids[1] != root1 {
			t.Fatalf("pages = %v", ids)
		}
		// The root's own event carries the summary too.
		ev := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, root1), nil)
		if s := threadSummary(ev.Body); s["count"] != float64(2) || s["current_user_participated"] != true {
			t.Fatalf("summary in /event: %s", ev.Raw)
		}

		// So do the roots in /messages.
		msgs := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=50", room), nil)
		summaries := map[any]map[string]any{}
		for _, e := range msgs.Body["chunk"].([]any) {
			if s := threadSummary(e.(map[string]any)); s != nil {
				summaries[e.(map[string]any)["event_id"]] = s
			}
		}
		if len(summaries) != 2 || summaries[root1]["count"] != float64(2) || summaries[root2]["count"] != float64(2) ||
			summaries[root2]["latest_event"].(map[string]any)["content"].(map[string]any)["body"] != "bob in two" {
			t.Fatalf("summaries in /messages: %v", summaries)
		}

		// Outsiders see nothing; a later joiner of a "joined" room does
		// not see threads rooted before they came.
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")
		dave.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/threads", room), nil)
		joined := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
		early := sendMsg(alice, joined, "e1", map[string]any{"msgtype": "m.text", "body": "early root"})
		threadReply(alice, joined, "e2", early, "early reply")
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", joined), map[string]any{})
		threadReply(alice, joined, "e3", early, "reply after dave joined")
		if got, _ := threadRoots(dave, joined, ""); len(got) != 0 {
			t.Fatalf("later joiner sees %v", got)
		}
		later := sendMsg(alice, joined, "e4", map[string]any{"msgtype": "m.text", "body": "later root"})
		threadReply(alice, joined, "e5", later, "later reply")
		if got, _ := threadRoots(dave, joined, ""); len(got) != 1 || got[0]["event_id"] != later {
			t.Fatalf("later joiner sees %v", got)
		}
		if got, _ := threadRoots(alice, joined, ""); len(got) != 2 || threadSummary(got[1])["count"] != float64(2) {
			t.Fatalf("alice sees %v", got)
		}

		for _, q := range []string{"?include=mine", "?limit=0", "?limit=-3", "?limit=ten", "?from=garbage"} {
			alice.MustErr(400, "M_INVALID_PARAM", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/threads", room)+q, nil)
		}
		alice.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/threads", "!nope:localhost"), nil)
	})
}
