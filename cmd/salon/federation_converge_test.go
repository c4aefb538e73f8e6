package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationCatchUp: A, B and C share a room; C is stopped; Alice on
// A and Bob on B take turns (each message cites the other's, so C will
// get B's events citing A's that it does not have yet, and the reverse);
// C restarts; within a bound every server's /messages shows the same
// events (the same IDs). Both backends.
func TestFederationCatchUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test", "c.test")
		a, b, c := n[0], n[1], n[2]
		sa, sb, sc := a.start(t), b.start(t), c.start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")
		carol := mxtest.Register(t, sc.URL, "carol", "password carol")

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "catchup"}).Str("room_id")
		for _, u := range []*mxtest.Client{bob, carol} {
			u.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#catchup:a.test"), map[string]any{})
		}
		for _, u := range []*mxtest.Client{alice, bob, carol} {
			waitFor(t, "three members as "+u.UserID+" sees them", func() bool {
				m := joined(t, u, room)
				return m[alice.UserID] && m[bob.UserID] && m[carol.UserID]
			})
		}

		sc.Stop()
		const rounds = 4
		for i := range rounds {
			ab := fmt.Sprintf("alice %d", i)
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprint("c", i)), map[string]any{"msgtype": "m.text", "body": ab})
			waitFor(t, ab+" on B", func() bool { return countBodies(t, bob, room, ab) == 1 })
			bb := fmt.Sprintf("bob %d", i)
			bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprint("c", i)), map[string]any{"msgtype": "m.text", "body": bb})
			waitFor(t, bb+" on A", func() bool { return countBodies(t, alice, room, bb) == 1 })
		}
		// Two more of Bob's without waiting: B's last events cite B's own.
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/last1", room), map[string]any{"msgtype": "m.text", "body": "bob last 1"})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/last2", room), map[string]any{"msgtype": "m.text", "body": "bob last 2"})
		waitFor(t, "Bob's last on A", func() bool { return countBodies(t, alice, room, "bob last 2") == 1 })

		start := time.Now()
		sc = c.start(t)
		carol = mxtest.Login(t, sc.URL, "carol", "password carol")
		want := roomEventIDs(t, alice, room)
		if got := roomEventIDs(t, bob, room); got != want {
			t.Fatalf("A and B differ before C is back:\nA: %s\nB: %s", want, got)
		}
		deadline := time.Now().Add(20 * time.Second)
		for got := roomEventIDs(t, carol, room); got != want; got = roomEventIDs(t, carol, room) {
			if time.Now().After(deadline) {
				t.Fatalf("C has not caught up in 20 s:\nA: %s\nC: %s", want, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("C caught up in %v", time.Since(start).Round(time.Millisecond))

		// C's next message cites the whole DAG: A and B accept it.
		carol.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/back", room), map[string]any{"msgtype": "m.text", "body": "C is back"})
		for _, u := range []*mxtest.Client{alice, bob} {
			waitFor(t, "C's message as "+u.UserID+" sees it", func() bool { return countBodies(t, u, room, "C is back") == 1 })
		}
		want = roomEventIDs(t, alice, room)
		for _, u := range []*mxtest.Client{bob, carol} {
			if got := roomEventIDs(t, u, room); got != want {
				t.Fatalf("%s differs from A:\nA: %s\n   %s", u.UserID, want, got)
			}
		}
	})
}

// roomEventIDs is the sorted IDs of the room's events in c's /messages
// (up to 1,000), joined by spaces.
func roomEventIDs(t *testing.T, c *mxtest.Client, roomID string) string {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", roomID)+"?dir=b&limit=1000", nil)
	var out struct {
		Chunk []struct {
			EventID string `json:"event_id"`
		} `json:"chunk"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(out.Chunk))
	for _, e := range out.Chunk {
		ids = append(ids, e.EventID)
	}
	sort.Strings(ids)
	return strings.Join(ids, " ")
}

// TestFederationPartitionedStateConflict: Alice on A (power 100) and Bob
// on B (50, enough for the topic) change the same state while they cannot reach each
// other; once both are up and the queues drained, A and B hold the same
// current state (state resolution v2 run on each side gives one answer).
// B is stopped, Alice sets topic "a", A is stopped, B starts, Bob sets
// "b", A starts; then each side sends a message citing both branches.
// Both backends.
func TestFederationPartitionedStateConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test")
		a, b := n[0], n[1]
		sa, sb := a.start(t), b.start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "public_chat", "room_alias_name": "conflict",
			"power_level_content_override": map[string]any{"users": map[string]any{alice.UserID: 100, "@bob:b.test": 50}, "state_default": 50},
		}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#conflict:a.test"), map[string]any{})
		waitFor(t, "Bob joined on A", func() bool { return joined(t, alice, room)[bob.UserID] })

		// partition runs onA with B down, then onB with A down, then
		// starts A again; then Bob and Alice each send a message, and both
		// servers must show the same current state. (Not the same events:
		// one side may soft-fail what the other accepted.)
		partition := func(what string, onA, onB func()) {
			t.Helper()
			sb.Stop()
			onA()
			sa.Stop()
			sb = b.start(t)
			bob = mxtest.Login(t, sb.URL, "bob", "password bob")
			onB()
			sa = a.start(t)
			alice = mxtest.Login(t, sa.URL, "alice", "password alice")
			// Each side's next message cites both branches: the other
			// server resolves the same states the first one did.
			wait := func(what string, cond func() bool) {
				t.Helper()
				start, deadline := time.Now(), time.Now().Add(20*time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within 20 s", what)
					}
					time.Sleep(100 * time.Millisecond)
				}
				t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
			}
			for _, c := range []*mxtest.Client{bob, alice} {
				body := what + " after, from " + c.UserID
				c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, fmt.Sprint(time.Now().UnixNano())), map[string]any{"msgtype": "m.text", "body": body})
				wait(what+": "+body+" on A and B", func() bool { return countBodies(t, alice, room, body) == 1 && countBodies(t, bob, room, body) == 1 })
			}
			if sA, sB := roomStateIDs(t, alice, room), roomStateIDs(t, bob, room); sA != sB {
				t.Fatalf("%s: A and B disagree:\nA: %s\nB: %s", what, sA, sB)
			}
		}
		setTopic := func(c *mxtest.Client, topic string) {
			c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), map[string]any{"topic": topic})
		}
		// topic is the room's topic as c sees it ("-" for none).
		topic := func(c *mxtest.Client) string {
			r := c.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), nil)
			if r.Status == 404 {
				return "-"
			}
			return r.Str("topic")
		}

		// Same mainline position (both cite the same power levels): the
		// later origin_server_ts wins, Bob's "b".
		partition("two topics", func() { setTopic(alice, "a") }, func() { setTopic(bob, "b") })
		if ta, tb := topic(alice), topic(bob); ta != "b" || tb != "b" {
			t.Fatalf("topic on A %q, on B %q, want b", ta, tb)
		}

		// A power-levels change against a topic: Alice demotes Bob on A
		// while Bob sets "c" on B. Power events resolve first, so Bob's
		// topic fails against the new power levels on both servers. It
		// needs the state after each event (read from the timeline's
		// order, B held Alice's "a" after Bob's "b" and resolved
		// differently from A), and the state after a soft-failed event: A
		// soft-fails "c", then gets Bob's message citing it.
		partition("demotion against a topic", func() {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", room), map[string]any{
				"users": map[string]any{alice.UserID: 100, bob.UserID: 0}, "state_default": 50,
			})
		}, func() { setTopic(bob, "c") })
		power := func(c *mxtest.Client) float64 {
			users, _ := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", room), nil).Body["users"].(map[string]any)
			p, _ := users[bob.UserID].(float64)
			return p
		}
		if pa, pb := power(alice), power(bob); pa != 0 || pb != 0 {
			t.Fatalf("Bob's power on A %v, on B %v, want 0", pa, pb)
		}
		// Both topics are Bob's ("b" and "c"), and neither passes the
		// resolved power levels: the topic leaves the state on both.
		if ta, tb := topic(alice), topic(bob); ta != "-" || tb != "-" {
			t.Fatalf("topic on A %q, on B %q, want none", ta, tb)
		}
	})
}

// roomStateIDs is the sorted type/state_key=event_id of the room's
// current state as c sees it.
func roomStateIDs(t *testing.T, c *mxtest.Client, roomID string) string {
	t.Helper()
	r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state", roomID), nil)
	var evs []struct {
		Type     string `json:"type"`
		StateKey string `json:"state_key"`
		EventID  string `json:"event_id"`
	}
	if err := json.Unmarshal(r.Raw, &evs); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Type+"/"+e.StateKey+"="+e.EventID)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
