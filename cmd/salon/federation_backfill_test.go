package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationBackfill: Bob on B joins a room of A that has history;
// paging back on B reaches past his join into that history, asked of A
// (/backfill): every message once, newest first, the topic change among
// them, and the room's creation not shown amid it; the history is not new
// to Bob's /sync. In a room whose history is visible to members only
// from their join, paging back shows none of it. Both backends.
func TestFederationBackfill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test")
		sa, sb := n[0].start(t), n[1].start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")

		send := func(room, body string) {
			t.Helper()
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, body), map[string]any{"msgtype": "m.text", "body": body})
		}
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "history"}).Str("room_id")
		var want []string
		for i := range 25 {
			if i == 10 {
				alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), map[string]any{"topic": "halfway"})
			}
			body := fmt.Sprintf("m%02d", i)
			send(room, body)
			want = append(want, body)
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#history:a.test"), map[string]any{})
		since := roomSync(t, bob, "", 0).NextBatch
		stateBefore := roomStateIDs(t, bob, room)

		page := pageBack(t, bob, room, 7)
		var bodies []string
		topicAt, createAt := -1, -1
		for i, e := range page {
			switch {
			case e.Type == "m.room.message":
				bodies = append(bodies, e.Content.Body)
			case e.Type == "m.room.topic" && e.Content.Topic == "halfway":
				topicAt = len(bodies)
			case e.Type == "m.room.create":
				createAt = i
			}
		}
		slices.Reverse(want)
		if !slices.Equal(bodies, want) {
			t.Fatalf("Bob's history on B:\n got  %v\n want %v", bodies, want)
		}
		if topicAt != 15 {
			t.Fatalf("the topic change after %d messages back, want 15", topicAt)
		}
		if createAt != len(page)-1 {
			t.Fatalf("the room's creation at %d of %d events back, want the oldest", createAt, len(page))
		}
		// The history moved the join's state into place, and the room's
		// state is as it was.
		if got := roomStateIDs(t, bob, room); got != stateBefore {
			t.Fatalf("the room's state changed with its history:\nbefore %s\nafter  %s", stateBefore, got)
		}
		if s := string(mustJSON(t, roomSync(t, bob, since, 0).Rooms.Join[room])); strings.Contains(s, `"m00"`) || strings.Contains(s, `"m24"`) {
			t.Fatalf("backfilled history came to Bob's /sync as new: %s", s)
		}

		// History visible from a member's join only: A serves none of it
		// to B, and B would show none of it to Bob.
		closed := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "closed",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
		for i := range 5 {
			send(closed, fmt.Sprintf("secret%d", i))
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", "#closed:a.test"), map[string]any{})
		for _, e := range pageBack(t, bob, closed, 10) {
			if strings.HasPrefix(e.Content.Body, "secret") {
				t.Fatalf("Bob reads %q, sent before he joined a room visible to members from their join", e.Content.Body)
			}
		}
	})
}

type pagedEvent struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
	Content struct {
		Body  string `json:"body"`
		Topic string `json:"topic"`
	} `json:"content"`
}

// pageBack pages through a room's history from now back to its start,
// limit events a page, and returns it newest first.
func pageBack(t *testing.T, c *mxtest.Client, roomID string, limit int) []pagedEvent {
	t.Helper()
	var all []pagedEvent
	seen := map[string]bool{}
	from := ""
	for range 100 {
		q := fmt.Sprintf("?dir=b&limit=%d", limit)
		if from != "" {
			q += "&from=" + from
		}
		r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", roomID)+q, nil)
		var out struct {
			Chunk []pagedEvent `json:"chunk"`
			End   string       `json:"end"`
		}
		if err := json.Unmarshal(r.Raw, &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Chunk {
			if seen[e.EventID] {
				t.Fatalf("%s (%s) twice in the history", e.EventID, e.Type)
			}
			seen[e.EventID] = true
			all = append(all, e)
		}
		if out.End == "" {
			return all
		}
		from = out.End
	}
	t.Fatal("paging back did not end in 100 pages")
	return nil
}
