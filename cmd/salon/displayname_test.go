package main

import (
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestDisplayNameHighlightIsTheRoomsName: contains_display_name matches
// the user's display name in the room (their member event), as the spec
// says, in /sync's highlight count and in /notifications: a room nickname
// highlights, the profile name it replaced there does not, and a profile
// change (which rewrites the member events) highlights again.
func TestDisplayNameHighlightIsTheRoomsName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", bob.UserID), map[string]any{"displayname": "Robert"})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		s := doSync(t, bob, "", 0, "")
		highlights := func(want int) {
			t.Helper()
			s = doSync(t, bob, s.NextBatch, 5*time.Second, "")
			if h := s.Rooms.Join[room].Unread.Highlights; h != want {
				t.Fatalf("highlights = %d, want %d", h, want)
			}
		}
		say := func(txn, body string) string {
			return sendMsg(alice, room, txn, map[string]any{"msgtype": "m.text", "body": body})
		}
		say("m1", "Robert, tu viens ?")
		highlights(1)
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, bob.UserID),
			map[string]any{"membership": "join", "displayname": "Bobby"})
		// Bob's own event marks what came before it read.
		highlights(0)
		bobby := say("m2", "Bobby ?")
		highlights(1)
		robert := say("m3", "Robert ?")
		highlights(1)
		// /notifications evaluates with the name the user has now.
		n := bob.Must(200, "GET", "/_matrix/client/v3/notifications?only=highlight", nil)
		raw := string(n.Raw)
		if !strings.Contains(raw, bobby) || strings.Contains(raw, robert) {
			t.Fatalf("/notifications?only=highlight: want %s and not %s: %s", bobby, robert, raw)
		}
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", bob.UserID), map[string]any{"displayname": "Bert"})
		highlights(0)
		say("m4", "Bert !")
		highlights(1)
	})
}
