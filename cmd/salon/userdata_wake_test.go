package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// wakeWithin bounds how long a waiting /sync may take to return after a
// write: well under the notifier's 2 s gap fallback, which is what a write
// that forgot to notify would wait for (or the long-poll's own timeout).
const wakeWithin = time.Second

// TestUserDataWakesSync: each write of account data, tags, receipts and
// read markers wakes the long-polling /sync of the users it concerns at
// once (userdata.Service notifies; the handlers do not), with the change
// in the answer; a private receipt wakes its owner, a public one the
// room's members.
func TestUserDataWakesSync(t *testing.T) {
	forEachBackend(t, testUserDataWakesSync)
}

func testUserDataWakesSync(t *testing.T, db string) {
	srv := startServer(t, db)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{bob.UserID}}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	ev := sendMsg(alice, room, "w1", map[string]any{"msgtype": "m.text", "body": "read me"})

	cases := []struct {
		name    string
		waiter  *mxtest.Client
		write   func()
		answers string // in the woken /sync's body
	}{
		{"global account data", alice, func() {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/org.example.wake", alice.UserID), map[string]any{"v": "global-1"})
		}, "global-1"},
		{"room account data", alice, func() {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/account_data/org.example.wake", alice.UserID, room), map[string]any{"v": "room-1"})
		}, "room-1"},
		{"tag set", alice, func() {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/u.wake", alice.UserID, room), map[string]any{"order": 0.25})
		}, `"u.wake":{"order":0.25}`},
		{"tag deleted", alice, func() {
			alice.Must(200, "DELETE", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/u.wake", alice.UserID, room), nil)
		}, `"type":"m.tag"`},
		{"public receipt wakes the room", alice, func() {
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, ev), map[string]any{})
		}, `"m.read":{"` + bob.UserID},
		{"private receipt wakes its owner", bob, func() {
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read.private/%s", room, ev), map[string]any{})
		}, `"m.read.private"`},
		{"read marker", bob, func() {
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/read_markers", room), map[string]any{"m.fully_read": ev})
		}, `"type":"m.fully_read"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			since := tc.waiter.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			type answer struct {
				r  mxtest.Response
				at time.Time
			}
			done := make(chan answer, 1)
			start := time.Now()
			go func() {
				r := tc.waiter.Do("GET", "/_matrix/client/v3/sync?timeout=20000&since="+url.QueryEscape(since), nil)
				done <- answer{r, time.Now()}
			}()
			// Let the request reach its wait before writing.
			time.Sleep(300 * time.Millisecond)
			select {
			case a := <-done:
				t.Fatalf("/sync returned before the write (after %v): %s", a.at.Sub(start), a.r.Raw)
			default:
			}
			wrote := time.Now()
			tc.write()
			select {
			case a := <-done:
				if a.r.Status != 200 {
					t.Fatalf("/sync: %d %s", a.r.Status, a.r.Raw)
				}
				if took := a.at.Sub(wrote); took > wakeWithin {
					t.Errorf("/sync woke %v after the write, want under %v", took, wakeWithin)
				}
				if !strings.Contains(string(a.r.Raw), tc.answers) {
					t.Errorf("woken /sync lacks %s: %s", tc.answers, a.r.Raw)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("/sync not woken by the write")
			}
		})
	}
}
