package main

import (
	"bytes"
	"fmt"
	"image"
	pngenc "image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// More regression tests for what Complement's client-server tests found
// wrong (make conformance), over HTTP against the real server on both
// backends.

// chunkIDs is the event IDs of a /relations or /messages chunk, in order.
func chunkIDs(r mxtest.Response) []string {
	var out []string
	chunk, _ := r.Body["chunk"].([]any)
	for _, e := range chunk {
		id, _ := e.(map[string]any)["event_id"].(string)
		out = append(out, id)
	}
	return out
}

func TestConformanceFixes2(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		srv := startServer(t, database)
		alice0 := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob0 := mxtest.Register(t, srv.URL, "bob", "password bob")

		// /relations had no dir=f, no to, and read no /sync token.
		t.Run("relations pages both ways between tokens", func(t *testing.T) {
			alice := on(t, alice0)
			room := publicRoom(alice)
			root := sendText(alice, room, "root", "root")
			relate := func(txn, rel, parent string) string {
				return alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, txn),
					map[string]any{"msgtype": "m.text", "body": txn,
						"m.relates_to": map[string]any{"rel_type": rel, "event_id": parent}}).Str("event_id")
			}
			var ids []string
			for i := range 4 {
				ids = append(ids, relate(fmt.Sprintf("r%d", i), "m.thread", root))
			}
			since := alice.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			for i := 4; i < 7; i++ {
				ids = append(ids, relate(fmt.Sprintf("r%d", i), "m.thread", root))
			}
			rels := mxtest.Path("/_matrix/client/v1/rooms/%s/relations/%s", room, root)
			get := func(query string) mxtest.Response {
				t.Helper()
				return alice.Must(200, "GET", rels+"?"+query, nil)
			}
			want := func(r mxtest.Response, ids ...string) {
				t.Helper()
				if got := chunkIDs(r); !slices.Equal(got, ids) {
					t.Fatalf("chunk %v, want %v: %s", got, ids, r.Raw)
				}
			}
			p1 := get("limit=3")
			want(p1, ids[6], ids[5], ids[4])
			p2 := get("limit=3&from=" + url.QueryEscape(p1.Str("next_batch")))
			want(p2, ids[3], ids[2], ids[1])
			f1 := get("limit=3&dir=f")
			want(f1, ids[0], ids[1], ids[2])
			f2 := get("limit=3&dir=f&from=" + url.QueryEscape(f1.Str("next_batch")))
			want(f2, ids[3], ids[4], ids[5])
			// From a /sync next_batch forwards: only what came after it.
			s1 := get("limit=2&dir=f&from=" + url.QueryEscape(since))
			want(s1, ids[4], ids[5])
			s2 := get("limit=2&dir=f&from=" + url.QueryEscape(s1.Str("next_batch")))
			want(s2, ids[6])
			if _, has := s2.Body["next_batch"]; has {
				t.Fatalf("last page has a next_batch: %s", s2.Raw)
			}
			// to bounds the page: backwards from the newest down to the sync
			// token, forwards up to a page's token.
			want(get("to="+url.QueryEscape(since)), ids[6], ids[5], ids[4])
			want(get("dir=f&to="+url.QueryEscape(f1.Str("next_batch"))), ids[0], ids[1], ids[2])

			// recurse follows relations of relations; without it, only
			// direct ones.
			react := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.reaction/re1", room),
				map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": ids[0], "key": "👍"}}).Str("event_id")
			if got := chunkIDs(get("dir=f")); slices.Contains(got, react) {
				t.Fatalf("direct relations list a reaction to a reply: %v", got)
			}
			deep := get("dir=f&recurse=true")
			if got := chunkIDs(deep); len(got) != 8 || got[7] != react {
				t.Fatalf("recurse: chunk %v, want the 7 replies and the reaction: %s", got, deep.Raw)
			}
			if d, _ := deep.Body["recursion_depth"].(float64); d < 3 {
				t.Fatalf("recursion_depth %v: %s", deep.Body["recursion_depth"], deep.Raw)
			}
			if _, has := p1.Body["recursion_depth"]; has {
				t.Fatalf("recursion_depth without recurse: %s", p1.Raw)
			}
			alice.MustErr(400, "M_INVALID_PARAM", "GET", rels+"?dir=x", nil)
			alice.MustErr(400, "M_INVALID_PARAM", "GET", rels+"?recurse=yes", nil)
			alice.MustErr(400, "M_INVALID_PARAM", "GET", rels+"?to=nonsense", nil)
		})

		t.Run("filters naming invalid room or user IDs are refused", func(t *testing.T) {
			alice := on(t, alice0)
			path := mxtest.Path("/_matrix/client/v3/user/%s/filter", alice.UserID)
			for _, f := range []string{
				`{"room":{"timeline":{"rooms":["not_a_room_id"]}}}`,
				`{"room":{"rooms":["#alias:localhost"]}}`,
				`{"room":{"not_rooms":["!"]}}`,
				`{"room":{"timeline":{"senders":["not_a_sender_id"]}}}`,
				`{"presence":{"not_senders":["bob"]}}`,
			} {
				alice.MustErr(400, "M_INVALID_PARAM", "POST", path, []byte(f))
			}
			ok := fmt.Sprintf(`{"room":{"rooms":["!abc:localhost"],"timeline":{"senders":[%q]}}}`, bob0.UserID)
			alice.Must(200, "POST", path, []byte(ok))
			alice.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/sync?timeout=0&filter="+
				url.QueryEscape(`{"room":{"timeline":{"senders":["nobody"]}}}`), nil)
		})

		t.Run("login folds an upper-case user name", func(t *testing.T) {
			_ = on(t, alice0)
			for _, user := range []string{"ALICE", "@Alice" + alice0.UserID[6:], strings.ToUpper(alice0.UserID[:6]) + alice0.UserID[6:]} {
				c := mxtest.Login(t, srv.URL, user, "password alice")
				if c.UserID != alice0.UserID {
					t.Fatalf("login as %q: user_id %q, want %q", user, c.UserID, alice0.UserID)
				}
				who := c.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
				if who.Str("user_id") != alice0.UserID {
					t.Fatalf("whoami %s", who.Raw)
				}
			}
		})

		// A search by user ID matched every user on the server name, and
		// the searcher found themselves through their own private rooms.
		t.Run("user directory search by user ID", func(t *testing.T) {
			c0 := mxtest.Register(t, srv.URL, "dir-carol", "password carol")
			d0 := mxtest.Register(t, srv.URL, "dir-dave", "password dave")
			carol, dave := on(t, c0), on(t, d0)
			carol.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", carol.UserID), map[string]any{"displayname": "Carol Kaye"})
			carol.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"visibility": "public", "preset": "public_chat"})
			private := dave.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"invite": []string{carol.UserID}}).Str("room_id")
			carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", private), map[string]any{})
			server := carol.UserID[strings.Index(carol.UserID, ":")+1:]
			search := func(c *mxtest.Client, term string) []string {
				t.Helper()
				r := c.Must(200, "POST", "/_matrix/client/v3/user_directory/search", map[string]any{"search_term": term})
				var ids []string
				for _, x := range r.Body["results"].([]any) {
					ids = append(ids, x.(map[string]any)["user_id"].(string))
				}
				slices.Sort(ids)
				return ids
			}
			for _, tc := range []struct {
				who  *mxtest.Client
				term string
				want []string
			}{
				{dave, "@dir", []string{carol.UserID}},
				{dave, carol.UserID, []string{carol.UserID}},
				{dave, "@DIR-CAROL", []string{carol.UserID}},
				{dave, "kaye", []string{carol.UserID}},
				{dave, "carol", []string{carol.UserID}},
				{dave, server, nil},
				{dave, "@dir-carol:nowhere.example", nil},
				{carol, "@dir", []string{carol.UserID, dave.UserID}}, // carol sits in a public room
			} {
				if got := search(tc.who, tc.term); !slices.Equal(got, tc.want) {
					t.Errorf("%s searching %q: %v, want %v", tc.who.UserID, tc.term, got, tc.want)
				}
			}
		})

		// A new room-mate's presence only reached a sync from before the
		// join when it changed again afterwards.
		t.Run("new room-mate's presence reaches incremental sync", func(t *testing.T) {
			f0 := mxtest.Register(t, srv.URL, "pres-frank", "password frank")
			g0 := mxtest.Register(t, srv.URL, "pres-gina", "password gina")
			frank, gina := on(t, f0), on(t, g0)
			room := publicRoom(frank)
			gina.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", gina.UserID), map[string]any{"presence": "online", "status_msg": "ici"})
			since, _ := presenceSync(t, frank, url.Values{"timeout": {"0"}})
			gina.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			got := map[string]map[string]any{}
			for tok := since; got[gina.UserID] == nil; {
				next, more := presenceSync(t, frank, url.Values{"since": {tok}, "timeout": {"30000"}})
				if next == tok {
					t.Fatalf("no presence of gina after her join: %v", got)
				}
				tok = next
				for k, v := range more {
					got[k] = v
				}
			}
			if got[gina.UserID]["presence"] != "online" || got[gina.UserID]["status_msg"] != "ici" {
				t.Fatalf("gina's presence in frank's sync: %v", got[gina.UserID])
			}
		})

		// A push rule change was two account-data writes, each waking
		// /sync: a sync woken by the first answered without m.push_rules
		// (flaky in Complement's TestPushSync). Each woken sync must carry
		// the change.
		t.Run("push rule change wakes sync with m.push_rules", func(t *testing.T) {
			h0 := mxtest.Register(t, srv.URL, "push-hugo", "password hugo")
			hugo := on(t, h0)
			rule := mxtest.Path("/_matrix/client/v3/pushrules/global/room/%s", "!foo:example.com")
			hugo.Must(200, "PUT", rule, map[string]any{"actions": []string{"notify"}})
			since := hugo.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
			notifier := srv.srv.hs.Notifier
			for i := range 15 {
				woken := make(chan mxtest.Response, 1)
				go func() {
					woken <- hugo.Do("GET", "/_matrix/client/v3/sync?timeout=30000&since="+url.QueryEscape(since), nil)
				}()
				// Let the long-poll start waiting (a sync that has not yet
				// started answers at once with the change, passing anyway).
				deadline := time.Now().Add(10 * time.Second)
				for !notifier.Waiting(hugo.UserID) {
					if time.Now().After(deadline) {
						t.Fatal("the long-poll never waited")
					}
					time.Sleep(time.Millisecond)
				}
				enabled := i%2 == 0
				hugo.Must(200, "PUT", rule+"/enabled", map[string]any{"enabled": enabled})
				r := <-woken
				if r.Status != 200 {
					t.Fatalf("sync: %d %s", r.Status, r.Raw)
				}
				if !strings.Contains(string(r.Raw), `"type":"m.push_rules"`) {
					t.Fatalf("round %d: woken sync without m.push_rules: %s", i, r.Raw)
				}
				since = r.Str("next_batch")
			}
		})

		t.Run("joined_members: null profile fields, members only", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			room := publicRoom(alice)
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			path := mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room)
			jm := bob.Must(200, "GET", path, nil)
			joined, _ := jm.Body["joined"].(map[string]any)
			me, _ := joined[bob.UserID].(map[string]any)
			if v, has := me["avatar_url"]; !has || v != nil {
				t.Fatalf("avatar_url of a member without one: want null: %s", jm.Raw)
			}
			if _, has := me["display_name"]; !has || len(joined) != 2 {
				t.Fatalf("joined_members %s", jm.Raw)
			}
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
			bob.MustErr(403, "M_FORBIDDEN", "GET", path, nil)
			alice.Must(200, "GET", path, nil)
		})

		// A client-sent join_authorised_via_users_server made a join ->
		// join (a profile change) fail in a restricted room, and let a
		// non-member vouch for themselves through PUT state.
		t.Run("restricted room: the server names the authoriser", func(t *testing.T) {
			alice, bob := on(t, alice0), on(t, bob0)
			i0 := mxtest.Register(t, srv.URL, "rr-ivan", "password ivan")
			ivan := on(t, i0)
			allowed := publicRoom(alice)
			room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
				"preset": "public_chat",
				"initial_state": []any{map[string]any{"type": "m.room.join_rules", "state_key": "",
					"content": map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": allowed}}}}},
			}).Str("room_id")
			member := func(c *mxtest.Client) string {
				return mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.member/%s", room, c.UserID)
			}
			vouch := map[string]any{"membership": "join", "join_authorised_via_users_server": alice.UserID}
			ivan.MustErr(403, "M_FORBIDDEN", "PUT", member(ivan), vouch)
			ivan.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", allowed), map[string]any{})
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
			bob.Must(200, "PUT", member(bob), map[string]any{"membership": "join", "displayname": "Bobby", "join_authorised_via_users_server": "unused"})
			got := bob.Must(200, "GET", member(bob), nil)
			if got.Str("displayname") != "Bobby" || got.Body["join_authorised_via_users_server"] != nil {
				t.Fatalf("member content after join -> join: %s", got.Raw)
			}
		})
	})
}

// TestURLPreviewAllowNetworks: media.url_preview.allow_networks lets
// previews reach a listed non-public network (make conformance lists its
// loopback test server); without it loopback stays refused.
func TestURLPreviewAllowNetworks(t *testing.T) {
	var png bytes.Buffer
	if err := pngenc.Encode(&png, image.NewRGBA(image.Rect(0, 0, 30, 20))); err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page.html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<html><head><meta property="og:title" content="Le Salon"><meta property="og:image" content="img.png"></head></html>`)
		case "/img.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(png.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer origin.Close()
	page := "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape(origin.URL+"/page.html")
	forEachBackend(t, func(t *testing.T, database string) {
		on := startServer(t, database, func(c *Config) {
			c.Media.URLPreview.Enabled = true
			c.Media.URLPreview.AllowNetworks = []string{"127.0.0.1/32"}
		})
		alice := mxtest.Register(t, on.URL, "alice", "password alice")
		og := alice.Must(200, "GET", page, nil)
		if og.Str("og:title") != "Le Salon" || !strings.HasPrefix(og.Str("og:image"), "mxc://") ||
			og.Body["og:image:width"] != float64(30) || og.Body["matrix:image:size"] != float64(png.Len()) {
			t.Fatalf("preview %s", og.Raw)
		}
		off := startServer(t, database, func(c *Config) { c.Media.URLPreview.Enabled = true })
		bob := mxtest.Register(t, off.URL, "bob", "password bob")
		bob.MustErr(403, "M_FORBIDDEN", "GET", page, nil)
	})
}
