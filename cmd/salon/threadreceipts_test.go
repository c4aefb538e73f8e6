package main

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// unreadCounts is an unread_notifications object.
type unreadCounts struct {
	Notifications int `json:"notification_count"`
	Highlights    int `json:"highlight_count"`
}

// threadedRoom is the part of a joined room the threaded receipt test reads.
type threadedRoom struct {
	Ephemeral struct {
		Events []struct {
			Type    string                                          `json:"type"`
			Content map[string]map[string]map[string]map[string]any `json:"content"`
		} `json:"events"`
	} `json:"ephemeral"`
	Unread       *unreadCounts            `json:"unread_notifications"`
	ThreadUnread map[string]*unreadCounts `json:"unread_thread_notifications"`
	// raw keeps whether unread_thread_notifications was present at all.
	raw map[string]json.RawMessage
}

func syncRoom(t *testing.T, c *mxtest.Client, since, filter, room string) threadedRoom {
	t.Helper()
	q := url.Values{"since": {since}, "timeout": {"0"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	r := c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s struct {
		Rooms struct {
			Join map[string]json.RawMessage `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	b, ok := s.Rooms.Join[room]
	if !ok {
		t.Fatalf("room not in the sync: %s", r.Raw)
	}
	var tr threadedRoom
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &tr.raw)
	if tr.Unread == nil {
		t.Fatalf("no unread_notifications: %s", b)
	}
	return tr
}

// receiptThread returns the thread_id of user's m.read receipt on eventID
// in the room's ephemeral events ("" for an unthreaded one) and whether
// there is one.
func (tr threadedRoom) receiptThread(eventID, userID string) (string, bool) {
	for _, e := range tr.Ephemeral.Events {
		if e.Type != "m.receipt" {
			continue
		}
		if r, ok := e.Content[eventID]["m.read"][userID]; ok {
			id, _ := r["thread_id"].(string)
			return id, true
		}
	}
	return "", false
}

// TestThreadedReceiptsOverHTTP follows Complement's TestThreadedReceipts:
// threaded and unthreaded read receipts, and the unread counts they leave
// in the whole room and, with unread_thread_notifications, per thread.
//
//	A<--B<--C<--E  [m.thread to A]   (C mentions bob)
//	^
//	+---D          [main timeline]   (mentions bob)
//	+<--F          [m.reference to A]
//	     +<--G     [m.annotation to F]
func TestThreadedReceiptsOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		since := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")

		inThread := func(root string) map[string]any { return map[string]any{"event_id": root, "rel_type": "m.thread"} }
		a := sendMsg(alice, room, "a", map[string]any{"msgtype": "m.text", "body": "Hello world!"})
		b := sendMsg(alice, room, "b", map[string]any{"msgtype": "m.text", "body": "Start thread!", "m.relates_to": inThread(a)})
		sendMsg(alice, room, "c", map[string]any{"msgtype": "m.text", "body": "Thread response " + bob.UserID + "!", "m.relates_to": inThread(a)})
		d := sendMsg(alice, room, "d", map[string]any{"msgtype": "m.text", "body": "Hello " + bob.UserID + "!"})
		lastThreaded := sendMsg(alice, room, "e", map[string]any{"msgtype": "m.text", "body": "End thread", "m.relates_to": inThread(a)})
		f := sendMsg(alice, room, "f", map[string]any{"msgtype": "m.text", "body": "Reference!",
			"m.relates_to": map[string]any{"event_id": a, "rel_type": "m.reference"}})
		g := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.reaction/g", room),
			map[string]any{"m.relates_to": map[string]any{"event_id": f, "rel_type": "m.annotation", "key": "test"}}).Str("event_id")

		const threadFilter = `{"room":{"timeline":{"unread_thread_notifications":true}}}`
		check := func(step string, total, main unreadCounts, thread *unreadCounts) {
			t.Helper()
			tr := syncRoom(t, bob, since, "", room)
			if *tr.Unread != total {
				t.Fatalf("%s: unread_notifications = %+v, want %+v", step, *tr.Unread, total)
			}
			if _, ok := tr.raw["unread_thread_notifications"]; ok {
				t.Fatalf("%s: unread_thread_notifications without the filter asking: %s", step, tr.raw["unread_thread_notifications"])
			}
			tr = syncRoom(t, bob, since, threadFilter, room)
			if *tr.Unread != main {
				t.Fatalf("%s: main timeline unread = %+v, want %+v", step, *tr.Unread, main)
			}
			got := tr.ThreadUnread[a]
			switch {
			case thread == nil && len(tr.ThreadUnread) != 0:
				t.Fatalf("%s: unread_thread_notifications = %s, want none", step, tr.raw["unread_thread_notifications"])
			case thread != nil && (got == nil || *got != *thread || len(tr.ThreadUnread) != 1):
				t.Fatalf("%s: unread_thread_notifications = %s, want %+v for %s", step, tr.raw["unread_thread_notifications"], *thread, a)
			}
		}
		wantReceipt := func(eventID, threadID string) {
			t.Helper()
			tr := syncRoom(t, bob, since, "", room)
			if got, ok := tr.receiptThread(eventID, bob.UserID); !ok || got != threadID {
				t.Fatalf("receipt on %s: thread %q (present %v), want %q", eventID, got, ok, threadID)
			}
		}
		receipt := func(eventID string, body map[string]any) {
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, eventID), body)
		}

		// A, D, F in the main timeline, B, C, E in the thread; C and D highlight.
		check("nothing read", unreadCounts{6, 2}, unreadCounts{3, 1}, &unreadCounts{3, 1})

		// A "main" receipt on A reads A only.
		receipt(a, map[string]any{"thread_id": "main"})
		wantReceipt(a, "main")
		check("main receipt on A", unreadCounts{5, 2}, unreadCounts{2, 1}, &unreadCounts{3, 1})

		// A receipt in the thread on B reads B only.
		receipt(b, map[string]any{"thread_id": a})
		wantReceipt(a, "main")
		wantReceipt(b, a)
		check("thread receipt on B", unreadCounts{4, 2}, unreadCounts{2, 1}, &unreadCounts{2, 1})

		// An unthreaded receipt on D reads everything up to D: C too.
		receipt(d, map[string]any{})
		wantReceipt(d, "")
		check("unthreaded receipt on D", unreadCounts{2, 0}, unreadCounts{1, 0}, &unreadCounts{1, 0})

		// A receipt in the thread on G (after E) reads the rest of the
		// thread, not F in the main timeline.
		receipt(g, map[string]any{"thread_id": a})
		wantReceipt(d, "")
		check("thread receipt on G", unreadCounts{1, 0}, unreadCounts{1, 0}, nil)

		// Bad thread IDs.
		for _, body := range []map[string]any{{"thread_id": "nope"}, {"thread_id": ""}, {"thread_id": 7}} {
			bob.MustErr(400, "M_INVALID_PARAM", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, f), body)
		}
		bob.MustErr(400, "M_INVALID_PARAM", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.fully_read/%s", room, f),
			map[string]any{"thread_id": "main"})
		check("after refused receipts", unreadCounts{1, 0}, unreadCounts{1, 0}, nil)

		// An unthreaded and a threaded receipt on the same event: the
		// unthreaded one is what /sync shows (MSC4102).
		receipt(g, map[string]any{})
		receipt(g, map[string]any{"thread_id": a})
		wantReceipt(g, "")
		check("unthreaded receipt on G", unreadCounts{0, 0}, unreadCounts{0, 0}, nil)

		// A message relating to a message of the thread (a reference; edits
		// do not notify) is in the thread, and so is one relating to it.
		h := sendMsg(alice, room, "h", map[string]any{"msgtype": "m.text", "body": "About E",
			"m.relates_to": map[string]any{"event_id": lastThreaded, "rel_type": "m.reference"}})
		check("reference to E", unreadCounts{1, 0}, unreadCounts{0, 0}, &unreadCounts{1, 0})
		sendMsg(alice, room, "i", map[string]any{"msgtype": "m.text", "body": "About H",
			"m.relates_to": map[string]any{"event_id": h, "rel_type": "m.reference"}})
		check("reference to H", unreadCounts{2, 0}, unreadCounts{0, 0}, &unreadCounts{2, 0})
	})
}
