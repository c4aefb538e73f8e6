package main

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// searchBodies runs a room_events search and returns the bodies (or
// names, topics) of the results in order, and the whole answer.
func searchBodies(c *mxtest.Client, criteria map[string]any, nextBatch string) ([]string, map[string]any) {
	c.T.Helper()
	path := "/_matrix/client/v3/search"
	if nextBatch != "" {
		path += "?next_batch=" + nextBatch
	}
	r := c.Must(200, "POST", path, map[string]any{"search_categories": map[string]any{"room_events": criteria}})
	re := r.Body["search_categories"].(map[string]any)["room_events"].(map[string]any)
	var out []string
	for _, x := range re["results"].([]any) {
		content := x.(map[string]any)["result"].(map[string]any)["content"].(map[string]any)
		for _, k := range []string{"body", "name", "topic"} {
			if s, ok := content[k].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out, re
}

func TestSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", alice.UserID), map[string]any{"displayname": "Alice A."})
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "name": "Fox den", "topic": "foxes and hounds"}).Str("room_id")
		sendMsg(alice, room, "a1", map[string]any{"msgtype": "m.text", "body": "the quick brown fox"})
		sendMsg(alice, room, "a2", map[string]any{"msgtype": "m.text", "body": "a lazy dog"})
		sendMsg(alice, room, "a3", map[string]any{"msgtype": "m.text", "body": "fox fox fox!"})
		sendMsg(alice, room, "a4", map[string]any{"msgtype": "m.text", "body": "after the foxes"})

		t.Run("keys and order", func(t *testing.T) {
			got, re := searchBodies(alice, map[string]any{"search_term": "Fox", "order_by": "recent"}, "")
			if want := []string{"after the foxes", "fox fox fox!", "the quick brown fox", "foxes and hounds", "Fox den"}; !slices.Equal(got, want) {
				t.Fatalf("recent = %q, want %q", got, want)
			}
			if re["count"].(float64) != 5 || fmt.Sprint(re["highlights"]) != "[fox]" {
				t.Fatalf("count %v highlights %v", re["count"], re["highlights"])
			}
			got, _ = searchBodies(alice, map[string]any{"search_term": "fox", "keys": []string{"content.body"}}, "")
			if len(got) != 3 || got[0] != "fox fox fox!" {
				t.Fatalf("by rank, bodies only = %q", got)
			}
			if got, _ = searchBodies(alice, map[string]any{"search_term": "quick fox"}, ""); !slices.Equal(got, []string{"the quick brown fox"}) {
				t.Fatalf("two words = %q", got)
			}
			if got, _ = searchBodies(alice, map[string]any{"search_term": "fox", "filter": map[string]any{"rooms": []string{"!other:localhost"}}}, ""); len(got) != 0 {
				t.Fatalf("filtered to another room = %q", got)
			}
			if got, _ = searchBodies(alice, map[string]any{"search_term": "fox", "filter": map[string]any{"types": []string{"m.room.name"}}}, ""); !slices.Equal(got, []string{"Fox den"}) {
				t.Fatalf("filtered by type = %q", got)
			}
		})

		t.Run("pagination", func(t *testing.T) {
			for _, order := range []string{"recent", "rank"} {
				var all []string
				next := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("pagination does not end")
					}
					got, re := searchBodies(alice, map[string]any{"search_term": "fox", "order_by": order, "filter": map[string]any{"limit": 2}}, next)
					all = append(all, got...)
					n, _ := re["next_batch"].(string)
					if n == "" {
						break
					}
					next = n
				}
				sort.Strings(all)
				if want := []string{"Fox den", "after the foxes", "fox fox fox!", "foxes and hounds", "the quick brown fox"}; !slices.Equal(all, want) {
					t.Fatalf("%s pages = %q", order, all)
				}
			}
		})

		t.Run("full pages and ties", func(t *testing.T) {
			r := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
			for i := 0; i < 20; i++ {
				sendMsg(alice, r, fmt.Sprintf("n%d", i), map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("Numbered message %d", i)})
			}
			crit := map[string]any{"search_term": "numbered", "order_by": "recent", "filter": map[string]any{"limit": 10, "rooms": []string{r}}}
			next := ""
			for page, want := range []string{"Numbered message 19", "Numbered message 9", ""} {
				got, re := searchBodies(alice, crit, next)
				if re["count"].(float64) != 20 {
					t.Fatalf("page %d count %v", page, re["count"])
				}
				if want == "" {
					if len(got) != 0 || re["next_batch"] != nil {
						t.Fatalf("page after the last: %q %v", got, re["next_batch"])
					}
					break
				}
				// A full page names the next, even the last full one.
				if len(got) != 10 || got[0] != want || re["next_batch"] == nil {
					t.Fatalf("page %d: %q %v", page, got, re["next_batch"])
				}
				next = re["next_batch"].(string)
			}
			// Equal ranks: oldest first.
			sendMsg(alice, r, "t1", map[string]any{"msgtype": "m.text", "body": "Tie before upgrade"})
			sendMsg(alice, r, "t2", map[string]any{"msgtype": "m.text", "body": "Tie after upgrade"})
			if got, _ := searchBodies(alice, map[string]any{"search_term": "upgrade", "filter": map[string]any{"rooms": []string{r}}}, ""); !slices.Equal(got, []string{"Tie before upgrade", "Tie after upgrade"}) {
				t.Fatalf("rank ties = %q", got)
			}
		})

		t.Run("context state groups", func(t *testing.T) {
			r := alice.Must(200, "POST", "/_matrix/client/v3/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{
				"search_term": "lazy", "include_state": true,
				"event_context": map[string]any{"before_limit": 1, "after_limit": 1, "include_profile": true},
				"groupings":     map[string]any{"group_by": []any{map[string]any{"key": "room_id"}, map[string]any{"key": "sender"}}},
			}}})
			re := r.Body["search_categories"].(map[string]any)["room_events"].(map[string]any)
			res := re["results"].([]any)
			if len(res) != 1 {
				t.Fatalf("results: %s", r.Raw)
			}
			cx := res[0].(map[string]any)["context"].(map[string]any)
			b := cx["events_before"].([]any)[0].(map[string]any)["content"].(map[string]any)["body"]
			a := cx["events_after"].([]any)[0].(map[string]any)["content"].(map[string]any)["body"]
			if b != "the quick brown fox" || a != "fox fox fox!" || cx["start"] == "" || cx["end"] == "" {
				t.Fatalf("context: %v", cx)
			}
			if name := cx["profile_info"].(map[string]any)[alice.UserID].(map[string]any)["displayname"]; name != "Alice A." {
				t.Fatalf("profile_info: %v", cx["profile_info"])
			}
			if len(re["state"].(map[string]any)[room].([]any)) < 5 {
				t.Fatalf("state: %v", re["state"])
			}
			groups := re["groups"].(map[string]any)
			if ids := groups["room_id"].(map[string]any)[room].(map[string]any)["results"].([]any); len(ids) != 1 {
				t.Fatalf("groups: %v", groups)
			}
			if _, ok := groups["sender"].(map[string]any)[alice.UserID]; !ok {
				t.Fatalf("sender groups: %v", groups)
			}
		})

		t.Run("redacted and encrypted", func(t *testing.T) {
			gone := sendMsg(alice, room, "r1", map[string]any{"msgtype": "m.text", "body": "ephemeral walrus"})
			if got, _ := searchBodies(bob, map[string]any{"search_term": "walrus"}, ""); len(got) != 0 {
				t.Fatalf("bob is not in the room yet: %q", got)
			}
			if got, _ := searchBodies(alice, map[string]any{"search_term": "walrus"}, ""); len(got) != 1 {
				t.Fatalf("before redaction: %q", got)
			}
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/red1", room, gone), map[string]any{})
			if got, _ := searchBodies(alice, map[string]any{"search_term": "walrus"}, ""); len(got) != 0 {
				t.Fatalf("redacted event found: %q", got)
			}
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.encrypted/e1", room),
				map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "narwhal", "body": "narwhal", "session_id": "s", "sender_key": "k", "device_id": "D"})
			if got, _ := searchBodies(alice, map[string]any{"search_term": "narwhal"}, ""); len(got) != 0 {
				t.Fatalf("encrypted event found: %q", got)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			for _, tc := range []struct {
				body any
				code string
			}{
				{"not json", "M_NOT_JSON"},
				{map[string]any{}, "M_MISSING_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{}}}, "M_MISSING_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": 5}}}, "M_BAD_JSON"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "order_by": "best"}}}, "M_INVALID_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "keys": []string{"content.secret"}}}}, "M_INVALID_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "groupings": map[string]any{"group_by": []any{map[string]any{"key": "type"}}}}}}, "M_INVALID_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "event_context": map[string]any{"before_limit": -1}}}}, "M_INVALID_PARAM"},
				{map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "filter": "rooms"}}}, "M_BAD_JSON"},
			} {
				alice.MustErr(400, tc.code, "POST", "/_matrix/client/v3/search", tc.body)
			}
			ok := map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "fox", "order_by": "recent"}}}
			alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/search?next_batch=k2", ok)
			alice.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/v3/search?next_batch=zzz", ok)
			mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "POST", "/_matrix/client/v3/search", ok)
			// Words only: query syntax of either backend is plain text.
			for _, term := range []string{`"`, `fox" OR "dog`, `fox:*`, `NEAR(fox dog)`, `!@#`, ``} {
				searchBodies(alice, map[string]any{"search_term": term}, "")
			}
			if r := alice.Must(200, "POST", "/_matrix/client/v3/search", map[string]any{"search_categories": map[string]any{}}); len(r.Body["search_categories"].(map[string]any)) != 0 {
				t.Fatalf("no category: %s", r.Raw)
			}
		})
	})
}

// TestSearchPrivacy: search finds only what /messages would show the user.
func TestSearchPrivacy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		find := func(c *mxtest.Client, term string) []string {
			t.Helper()
			got, _ := searchBodies(c, map[string]any{"search_term": term, "order_by": "recent"}, "")
			return got
		}

		// joined visibility: a later joiner does not find what came before.
		joined := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
		sendMsg(alice, joined, "j1", map[string]any{"msgtype": "m.text", "body": "otter before"})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", joined), map[string]any{})
		sendMsg(alice, joined, "j2", map[string]any{"msgtype": "m.text", "body": "otter after"})
		if got := find(bob, "otter"); !slices.Equal(got, []string{"otter after"}) {
			t.Fatalf("later joiner of a joined room finds %q", got)
		}
		if got := find(alice, "otter"); len(got) != 2 {
			t.Fatalf("alice finds %q", got)
		}

		// A member who left finds what they could read, nothing after.
		shared := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", shared), map[string]any{})
		sendMsg(alice, shared, "s1", map[string]any{"msgtype": "m.text", "body": "badger while there"})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", shared), map[string]any{})
		sendMsg(alice, shared, "s2", map[string]any{"msgtype": "m.text", "body": "badger after leaving"})
		if got := find(bob, "badger"); !slices.Equal(got, []string{"badger while there"}) {
			t.Fatalf("left member finds %q", got)
		}
		// ... and nothing once the room is forgotten.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/forget", shared), map[string]any{})
		if got := find(bob, "badger"); len(got) != 0 {
			t.Fatalf("forgotten room still searched: %q", got)
		}

		// An outsider finds nothing, even naming the rooms, even world_readable ones.
		open := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}}).Str("room_id")
		sendMsg(alice, open, "o1", map[string]any{"msgtype": "m.text", "body": "otter badger public"})
		for _, term := range []string{"otter", "badger"} {
			if got := find(carol, term); len(got) != 0 {
				t.Fatalf("outsider finds %q", got)
			}
			got, re := searchBodies(carol, map[string]any{"search_term": term, "filter": map[string]any{"rooms": []string{joined, shared, open}}}, "")
			if len(got) != 0 || re["count"].(float64) != 0 {
				t.Fatalf("outsider naming rooms finds %q (count %v)", got, re["count"])
			}
		}
		// An invitee of a shared room (history before the invite hidden
		// until they join) finds nothing there.
		inv := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
		sendMsg(alice, inv, "i1", map[string]any{"msgtype": "m.text", "body": "heron secret"})
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", inv), map[string]any{"user_id": carol.UserID})
		if got := find(carol, "heron"); len(got) != 0 {
			t.Fatalf("invitee finds %q", got)
		}
	})
}
