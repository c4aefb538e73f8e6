package main

import (
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationThreeSalons: a room of A joined from B and from C. C's
// join reaches B through A (send_join relayed), so B accepts C's
// messages; each server's message reaches the two others; each server
// lists the three members; what B sends while C is down reaches C once
// it is back, and C's next message reaches A and B.
func TestFederationThreeSalons(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test", "c.test")
		a, b, c := n[0], n[1], n[2]
		sa, sb, sc := a.start(t), b.start(t), c.start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")
		carol := mxtest.Register(t, sc.URL, "carol", "password carol")
		users := []*mxtest.Client{alice, bob, carol}

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "three"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#three:a.test"), map[string]any{})
		waitFor(t, "Bob joined on A", func() bool { return joined(t, alice, room)[bob.UserID] })
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#three:a.test"), map[string]any{})
		for _, u := range users {
			waitFor(t, "three members as "+u.UserID+" sees them", func() bool {
				m := joined(t, u, room)
				return m[alice.UserID] && m[bob.UserID] && m[carol.UserID]
			})
		}
		for _, from := range users {
			body := "from " + from.UserID
			from.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, "t1"), map[string]any{"msgtype": "m.text", "body": body})
			for _, to := range users {
				waitFor(t, body+" as "+to.UserID+" sees it", func() bool { return countBodies(t, to, room, body) == 1 })
			}
		}

		// C is down while B talks; back up, it has what B sent (B's queue
		// held it), in order. (Two servers talking while C is down need
		// the served /get_missing_events: C may get A's event, which
		// cites B's, first.)
		sc.Stop()
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, "down1"), map[string]any{"msgtype": "m.text", "body": "while C was down (1)"})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, "down2"), map[string]any{"msgtype": "m.text", "body": "while C was down (2)"})
		sc = c.start(t)
		carol = mxtest.Login(t, sc.URL, "carol", "password carol")
		for _, body := range []string{"while C was down (1)", "while C was down (2)"} {
			waitFor(t, body+" on C after its restart", func() bool { return countBodies(t, carol, room, body) == 1 })
		}
		carol.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, "back"), map[string]any{"msgtype": "m.text", "body": "C is back"})
		for _, to := range []*mxtest.Client{alice, bob} {
			waitFor(t, "C's message after its restart as "+to.UserID+" sees it", func() bool { return countBodies(t, to, room, "C is back") == 1 })
		}
	})
}
