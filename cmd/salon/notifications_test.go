package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

type notif struct {
	Actions []json.RawMessage `json:"actions"`
	Event   struct {
		EventID string         `json:"event_id"`
		Content map[string]any `json:"content"`
	} `json:"event"`
	Read   bool   `json:"read"`
	RoomID string `json:"room_id"`
	TS     int64  `json:"ts"`
}

func notifications(c *mxtest.Client, query string) ([]notif, string) {
	c.T.Helper()
	r := c.Must(200, "GET", "/_matrix/client/v3/notifications"+query, nil)
	var body struct {
		Notifications []notif `json:"notifications"`
		NextToken     string  `json:"next_token"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		c.T.Fatal(err)
	}
	return body.Notifications, body.NextToken
}

// TestNotifications: what the push rules said notify, newest first, with
// highlights, read state, only=highlight and pagination; never the
// user's own events, nor events of rooms they are not in or from before
// they joined.
func TestNotifications(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", alice.UserID), map[string]any{"displayname": "Alicia"})
		room := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		sendMsg(bob, room, "b0", map[string]any{"msgtype": "m.text", "body": "before alice came"})
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		plain := sendMsg(bob, room, "b1", map[string]any{"msgtype": "m.text", "body": "hello"})
		sendMsg(alice, room, "a1", map[string]any{"msgtype": "m.text", "body": "my own words"})
		mention := sendMsg(bob, room, "b2", map[string]any{"msgtype": "m.text", "body": "are you there Alicia?"})

		got, next := notifications(alice, "")
		if len(got) != 2 || got[0].Event.EventID != mention || got[1].Event.EventID != plain || next != "" {
			t.Fatalf("notifications = %+v (next %q)", got, next)
		}
		if got[0].RoomID != room || got[0].TS == 0 || got[0].Read || !strings.Contains(string(joinRaw(got[0].Actions)), "highlight") {
			t.Fatalf("mention: %+v", got[0])
		}
		if strings.Contains(string(joinRaw(got[1].Actions)), `"highlight"`) && !strings.Contains(string(joinRaw(got[1].Actions)), `"value":false`) {
			t.Fatalf("plain message highlights: %s", joinRaw(got[1].Actions))
		}
		if hl, _ := notifications(alice, "?only=highlight"); len(hl) != 1 || hl[0].Event.EventID != mention {
			t.Fatalf("only=highlight = %+v", hl)
		}
		// One per page.
		first, tok := notifications(alice, "?limit=1")
		if len(first) != 1 || first[0].Event.EventID != mention || tok == "" {
			t.Fatalf("page 1 = %+v %q", first, tok)
		}
		second, tok2 := notifications(alice, "?limit=1&from="+tok)
		if len(second) != 1 || second[0].Event.EventID != plain {
			t.Fatalf("page 2 = %+v %q", second, tok2)
		}
		if tok2 != "" {
			if rest, _ := notifications(alice, "?limit=1&from="+tok2); len(rest) != 0 {
				t.Fatalf("page 3 = %+v", rest)
			}
		}
		// A read receipt marks them read.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, mention), map[string]any{})
		if got, _ := notifications(alice, ""); len(got) != 2 || !got[0].Read || !got[1].Read {
			t.Fatalf("after receipt: %+v", got)
		}
		// Bob: alice's message notifies him, his own do not.
		if got, _ := notifications(bob, ""); len(got) != 1 || got[0].Event.Content["body"] != "my own words" {
			t.Fatalf("bob's notifications = %+v", got)
		}
		// Carol is in no room.
		if got, _ := notifications(carol, ""); len(got) != 0 {
			t.Fatalf("outsider's notifications = %+v", got)
		}
		// Carol's invite notifies her, and nothing else of the room does.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": carol.UserID})
		sendMsg(bob, room, "b9", map[string]any{"msgtype": "m.text", "body": "carol is invited, not joined"})
		if got, _ := notifications(carol, ""); len(got) != 1 || got[0].Event.Content["membership"] != "invite" || got[0].RoomID != room {
			t.Fatalf("invitee's notifications = %+v", got)
		}
		// After leaving, the room's events no longer come.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		sendMsg(bob, room, "b3", map[string]any{"msgtype": "m.text", "body": "Alicia, gone?"})
		if got, _ := notifications(alice, ""); len(got) != 0 {
			t.Fatalf("after leaving: %+v", got)
		}

		for _, q := range []string{"?limit=0", "?limit=x", "?from=garbage", "?from=n0"} {
			alice.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/notifications"+q, nil)
		}
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/notifications", nil)
	})
}

func joinRaw(rs []json.RawMessage) []byte {
	var b []byte
	for _, r := range rs {
		b = append(b, r...)
	}
	return b
}
