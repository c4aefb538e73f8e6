package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationRooms: rooms shared by two Salons. Alice on A invites
// Bob on B into a private room; Bob's /sync on B shows the invite; Bob
// joins; messages both ways reach the other's /sync; Bob's member list
// on B has both; Bob joins a public room of A by its alias; a PDU forged
// by a server with no member in the room, and one with a bad signature,
// are refused; Bob's event sent again in another transaction shows once;
// once Bob left, A's messages are not queued to B. Both backends.
func TestFederationRooms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test")
		a, b := n[0], n[1]
		c := newFakeServer(t, a.ca, "c.test")
		a.peers["c.test"] = c.addr
		sa, sb := a.start(t), b.start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")

		// A private room on A; Bob is invited and sees it on B.
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Secret"}).Str("room_id")
		since := roomSync(t, bob, "", 0).NextBatch
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": bob.UserID})
		var s roomsSync
		waitFor(t, "the invite in Bob's /sync on B", func() bool {
			s = roomSync(t, bob, since, 2*time.Second)
			return s.Rooms.Invite[room] != nil
		})
		inv := string(mustJSON(t, s.Rooms.Invite[room]))
		if !strings.Contains(inv, `"Secret"`) || !strings.Contains(inv, `"invite"`) {
			t.Fatalf("invite state on B: %s", inv)
		}

		// Bob joins through A.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		waitFor(t, "Bob joined on A", func() bool { return joined(t, alice, room)[bob.UserID] })
		if m := joined(t, bob, room); !m[alice.UserID] || !m[bob.UserID] {
			t.Fatalf("Bob's member list on B: %v", m)
		}
		// Bob's /sync on B shows the room joined, with its state.
		s = roomSync(t, bob, since, 0)
		if j := string(mustJSON(t, s.Rooms.Join[room])); !strings.Contains(j, `"Secret"`) || !strings.Contains(j, `"m.room.create"`) {
			t.Fatalf("the joined room in Bob's /sync: %s", j)
		}

		// Messages both ways.
		aliceEv := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/a1", room), map[string]any{"msgtype": "m.text", "body": "hello Bob"}).Str("event_id")
		waitFor(t, "Alice's message on B", func() bool { return countBodies(t, bob, room, "hello Bob") == 1 })
		// An edit and a redaction reach B too.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/a1e", room), map[string]any{
			"msgtype": "m.text", "body": "* hello Bob!", "m.new_content": map[string]any{"msgtype": "m.text", "body": "hello Bob!"},
			"m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": aliceEv},
		})
		waitFor(t, "Alice's edit on B", func() bool { return countBodies(t, bob, room, "* hello Bob!") == 1 })
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r1", room, aliceEv), map[string]any{"reason": "oops"})
		waitFor(t, "Alice's redaction applied on B", func() bool { return countBodies(t, bob, room, "hello Bob") == 0 })
		bobEv := bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/b1", room), map[string]any{"msgtype": "m.text", "body": "hello Alice"}).Str("event_id")
		waitFor(t, "Bob's message on A", func() bool { return countBodies(t, alice, room, "hello Alice") == 1 })
		tok := roomSync(t, alice, "", 0).NextBatch
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/b2", room), map[string]any{"msgtype": "m.text", "body": "second"})
		waitFor(t, "Bob's second message in Alice's /sync", func() bool {
			s = roomSync(t, alice, tok, 2*time.Second)
			tok = s.NextBatch
			return strings.Contains(string(mustJSON(t, s.Rooms.Join[room])), `"second"`)
		})

		// Bob's event sent again in a new transaction is not stored twice.
		row, v, err := sb.srv.hs.Rooms.Event(t.Context(), bob.UserID, room, bobEv)
		if err != nil {
			t.Fatal(err)
		}
		ans := sendTxn(t, sb, "a.test", "replay1", json.RawMessage(row.JSON))
		if e, ok := ans[bobEv].(map[string]any); !ok || len(e) != 0 {
			t.Fatalf("replayed PDU: %v", ans)
		}
		if n := countBodies(t, alice, room, "hello Alice"); n != 1 {
			t.Fatalf("Bob's event shows %d times on A", n)
		}

		// A PDU of a server with no member in the room is refused.
		fa := newFedHTTP(t, a.ca, a)
		create, prev := stateID(t, alice, room, "m.room.create", ""), latestID(t, alice, room)
		pl := stateID(t, alice, room, "m.room.power_levels", "")
		forged := buildPDU(t, v, room, "@mallory:c.test", "c.test", c.key, []string{create, pl}, prev, "forged")
		uri := "/_matrix/federation/v1/send/forged1"
		body, _ := json.Marshal(map[string]any{"origin": "c.test", "origin_server_ts": time.Now().UnixMilli(), "pdus": []any{forged}, "edus": []any{}})
		st, m, raw := fa.do("PUT", uri, c.auth(t, c.key, "c.test", "a.test", "PUT", uri, body), body)
		if st != 200 || !hasPDUError(m) {
			t.Fatalf("forged PDU from c.test: %d %s", st, raw)
		}
		// One signed with a key b.test does not have is refused.
		other, _ := events.GenerateSigningKey(rand.Reader)
		bobMember := stateID(t, alice, room, "m.room.member", bob.UserID)
		bad := buildPDU(t, v, room, bob.UserID, "b.test", other, []string{create, pl, bobMember}, prev, "badsig")
		if ans := sendTxn(t, sb, "a.test", "badsig1", bad); !hasPDUError(map[string]any{"pdus": ans}) {
			t.Fatalf("PDU with a bad signature: %v", ans)
		}
		if countBodies(t, alice, room, "forged")+countBodies(t, alice, room, "badsig") != 0 {
			t.Fatal("a refused PDU reached the timeline")
		}

		// A public room of A, joined from B by its alias.
		pub := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "x"}).Str("room_id")
		if got := bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#x:a.test"), map[string]any{}).Str("room_id"); got != pub {
			t.Fatalf("joined %s, want %s", got, pub)
		}
		waitFor(t, "Bob in the public room on A", func() bool { return joined(t, alice, pub)[bob.UserID] })

		// Rooms of versions 10 and 12 (named by its create event: the
		// join names the server to ask).
		for _, ver := range []string{"10", "12"} {
			vr := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": ver}).Str("room_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", vr)+"?server_name=a.test", map[string]any{})
			waitFor(t, "Bob in the v"+ver+" room on A", func() bool { return joined(t, alice, vr)[bob.UserID] })
			bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/v%s", vr, ver), map[string]any{"msgtype": "m.text", "body": "from B in v" + ver})
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/v%s", vr, ver), map[string]any{"msgtype": "m.text", "body": "from A in v" + ver})
			waitFor(t, "messages both ways in v"+ver, func() bool {
				return countBodies(t, alice, vr, "from B in v"+ver) == 1 && countBodies(t, bob, vr, "from A in v"+ver) == 1
			})
			if c := roomVersionOf(t, bob, vr); c != ver {
				t.Fatalf("room version on B: %q, want %s", c, ver)
			}
			// A ban on A reaches B; B then refuses Bob's sends there.
			alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/ban", vr), map[string]any{"user_id": bob.UserID, "reason": "test"})
			waitFor(t, "the ban on B in v"+ver, func() bool { return membershipOf(t, bob, vr, bob.UserID) == "ban" })
			bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/after-ban", vr), map[string]any{"msgtype": "m.text", "body": "banned"})
		}

		// An invite rejected from B goes to A through make_leave and
		// send_leave.
		declined := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}}).Str("room_id")
		waitFor(t, "the second invite on B", func() bool {
			s = roomSync(t, bob, since, 0)
			return s.Rooms.Invite[declined] != nil
		})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", declined), map[string]any{"reason": "no thanks"})
		if m := membershipOf(t, alice, declined, bob.UserID); m != "leave" {
			t.Fatalf("Bob's membership on A after rejecting: %q", m)
		}

		// A room restricted to the members of a space: Bob, in the space,
		// joins through A, which authorises the join.
		space := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "creation_content": map[string]any{"type": "m.space"}}).Str("room_id")
		restricted := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "initial_state": []any{
			map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}}}},
		}}).Str("room_id")
		bob.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", restricted)+"?server_name=a.test", map[string]any{})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space)+"?server_name=a.test", map[string]any{})
		waitFor(t, "Bob in the space on A", func() bool { return joined(t, alice, space)[bob.UserID] })
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", restricted)+"?server_name=a.test", map[string]any{})
		waitFor(t, "Bob in the restricted room on A", func() bool { return joined(t, alice, restricted)[bob.UserID] })
		mem := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", restricted, bob.UserID), nil)
		if mem.Str("join_authorised_via_users_server") != alice.UserID {
			t.Fatalf("restricted join: %s", mem.Raw)
		}

		// Knocking on a room of A from B; Alice lets Bob in.
		knockRoom := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Knock here", "initial_state": []any{
			map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{"join_rule": "knock"}},
		}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/knock/%s", knockRoom)+"?server_name=a.test", map[string]any{"reason": "let me in"})
		if m := membershipOf(t, alice, knockRoom, bob.UserID); m != "knock" {
			t.Fatalf("Bob's membership on A after knocking: %q", m)
		}
		s = roomSync(t, bob, since, 0)
		if k := string(mustJSON(t, s.Rooms.Knock[knockRoom])); !strings.Contains(k, `"Knock here"`) {
			t.Fatalf("knock in Bob's /sync: %s", k)
		}
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", knockRoom), map[string]any{"user_id": bob.UserID})
		waitFor(t, "the invite after the knock on B", func() bool { return roomSync(t, bob, since, 0).Rooms.Invite[knockRoom] != nil })
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", knockRoom)+"?server_name=a.test", map[string]any{})
		waitFor(t, "Bob in the knocked room on A", func() bool { return joined(t, alice, knockRoom)[bob.UserID] })

		// Bob leaves the private room; A's later messages there are not
		// queued to B (stopped, so anything queued would stay counted).
		// The send returns once its event is queued (sendOut runs in the
		// commit), so the depth is read right after it.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		// (joined answers an empty set for a failed request: Alice still
		// listed is what makes Bob's absence mean something.)
		waitFor(t, "Bob's leave on A", func() bool { m := joined(t, alice, room); return m[alice.UserID] && !m[bob.UserID] })
		sb.Stop()
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/a2", room), map[string]any{"msgtype": "m.text", "body": "after Bob left"})
		if mt := scrape(t, sa); strings.Contains(mt, `salon_federation_queue_depth{destination="b.test"} 1`) {
			t.Fatalf("a message was queued to b.test after Bob left:\n%s", grepLines(mt, "queue_depth"))
		}
		// While a message in the public room, where Bob still is, waits.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/a3", pub), map[string]any{"msgtype": "m.text", "body": "for Bob"})
		waitFor(t, "the public room's message queued to b.test", func() bool {
			return strings.Contains(scrape(t, sa), `salon_federation_queue_depth{destination="b.test"} 1`)
		})
	})
}

type roomsSync struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]json.RawMessage `json:"join"`
		Invite map[string]json.RawMessage `json:"invite"`
		Knock  map[string]json.RawMessage `json:"knock"`
	} `json:"rooms"`
}

func roomSync(t *testing.T, c *mxtest.Client, since string, timeout time.Duration) roomsSync {
	t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeout.Milliseconds())}}
	if since != "" {
		q.Set("since", since)
	}
	r := c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s roomsSync
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// joined is a room's joined members as c sees them.
func joined(t *testing.T, c *mxtest.Client, roomID string) map[string]bool {
	t.Helper()
	r := c.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", roomID), nil)
	var out struct {
		Joined map[string]any `json:"joined"`
	}
	_ = json.Unmarshal(r.Raw, &out)
	m := map[string]bool{}
	for u := range out.Joined {
		m[u] = true
	}
	return m
}

// countBodies counts the room's recent messages with this body.
func countBodies(t *testing.T, c *mxtest.Client, roomID, body string) int {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", roomID)+"?dir=b&limit=100", nil)
	var out struct {
		Chunk []struct {
			Content struct {
				Body string `json:"body"`
			} `json:"content"`
		} `json:"chunk"`
	}
	_ = json.Unmarshal(r.Raw, &out)
	n := 0
	for _, e := range out.Chunk {
		if e.Content.Body == body {
			n++
		}
	}
	return n
}

func stateID(t *testing.T, c *mxtest.Client, roomID, typ, key string) string {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state", roomID), nil)
	var evs []struct {
		Type     string `json:"type"`
		StateKey string `json:"state_key"`
		EventID  string `json:"event_id"`
	}
	_ = json.Unmarshal(r.Raw, &evs)
	for _, e := range evs {
		if e.Type == typ && e.StateKey == key {
			return e.EventID
		}
	}
	t.Fatalf("no %s %q in %s", typ, key, roomID)
	return ""
}

func latestID(t *testing.T, c *mxtest.Client, roomID string) string {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", roomID)+"?dir=b&limit=1", nil)
	var out struct {
		Chunk []struct {
			EventID string `json:"event_id"`
		} `json:"chunk"`
	}
	_ = json.Unmarshal(r.Raw, &out)
	if len(out.Chunk) == 0 {
		t.Fatal("empty room")
	}
	return out.Chunk[0].EventID
}

// buildPDU makes a message event signed by origin with key.
func buildPDU(t *testing.T, v events.RoomVersion, roomID, sender, origin string, key events.SigningKey, auth []string, prev, body string) json.RawMessage {
	t.Helper()
	if v.RoomIDFromCreateEvent() {
		auth = auth[1:] // v12: the create event is not cited
	}
	ev, err := events.Build(events.Proto{
		RoomID: roomID, Sender: sender, Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"` + body + `"}`),
		OriginServerTS: time.Now().UnixMilli(), PrevEvents: []string{prev}, AuthEvents: auth, Depth: 50,
	}, v, origin, key)
	if err != nil {
		t.Fatal(err)
	}
	return ev.JSON
}

// sendTxn sends a transaction of PDUs from srv to destination through
// srv's own federation client and returns the answer's pdus.
func sendTxn(t *testing.T, srv *testServer, destination, txnID string, pdus ...json.RawMessage) map[string]any {
	t.Helper()
	var out struct {
		PDUs map[string]any `json:"pdus"`
	}
	body := map[string]any{"origin": srv.srv.cfg.ServerName, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus, "edus": []any{}}
	if err := srv.srv.hs.Federation.Client.Put(t.Context(), destination, "/_matrix/federation/v1/send/"+txnID, body, &out); err != nil {
		t.Fatal(err)
	}
	return out.PDUs
}

// hasPDUError reports whether a /send answer refused a PDU.
func hasPDUError(m map[string]any) bool {
	pdus, _ := m["pdus"].(map[string]any)
	for _, v := range pdus {
		if e, ok := v.(map[string]any); ok && e["error"] != nil {
			return true
		}
	}
	return false
}

func roomVersionOf(t *testing.T, c *mxtest.Client, roomID string) string {
	t.Helper()
	return c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.create/", roomID), nil).Str("room_version")
}

func membershipOf(t *testing.T, c *mxtest.Client, roomID, userID string) string {
	t.Helper()
	r := c.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", roomID, userID), nil)
	return r.Str("membership")
}

// TestFederationRedactUnknownEvent: in a room shared with another server,
// a member who may redact anyone's events redacts an event this server
// has not received (yet); the redaction goes out to the other server. A
// member who may not, and any member of a room of this server alone, get
// 404 for an event not here.
func TestFederationRedactUnknownEvent(t *testing.T) {
	n := fedNodes(t, backends(t)["sqlite"](t), "a.test", "b.test")
	sa, sb := n[0].start(t), n[1].start(t)
	alice := mxtest.Register(t, sa.URL, "alice", "password alice")
	bob := mxtest.Register(t, sb.URL, "bob", "password bob")
	const unknown = "$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"

	alone := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	alice.MustErr(404, "M_NOT_FOUND", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r0", alone, unknown), map[string]any{})

	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "redact"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#redact:a.test"), map[string]any{})
	waitFor(t, "Bob joined on A", func() bool { return joined(t, alice, room)[bob.UserID] })
	bob.MustErr(404, "M_NOT_FOUND", "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r1", room, unknown), map[string]any{})
	id := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/r2", room, unknown), map[string]any{"reason": "spam"}).Str("event_id")
	waitFor(t, "the redaction on B", func() bool {
		return bob.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", room, id), nil).Status == 200
	})
}

// TestFederationPresence: Alice on A sets her presence; Bob on B, who
// shares a room with her, sees it in his /sync (an m.presence EDU A sent,
// taken by B); Carol on B, who shares none, does not.
func TestFederationPresence(t *testing.T) {
	n := fedNodes(t, backends(t)["sqlite"](t), "a.test", "b.test")
	sa, sb := n[0].start(t), n[1].start(t)
	alice := mxtest.Register(t, sa.URL, "alice", "password alice")
	bob := mxtest.Register(t, sb.URL, "bob", "password bob")
	carol := mxtest.Register(t, sb.URL, "carol", "password carol")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "presence"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#presence:a.test"), map[string]any{})
	waitFor(t, "Bob joined on A", func() bool { return joined(t, alice, room)[bob.UserID] })
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "online", "status_msg": "in the lab"})
	waitFor(t, "Alice's presence in Bob's /sync on B", func() bool {
		_, p := presenceSync(t, bob, nil)
		return p[alice.UserID]["status_msg"] == "in the lab" && p[alice.UserID]["presence"] == "online"
	})
	if _, p := presenceSync(t, carol, nil); p[alice.UserID] != nil {
		t.Fatalf("Carol, sharing no room with Alice, sees her presence: %v", p[alice.UserID])
	}
}
