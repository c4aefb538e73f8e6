package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

const slidingPath = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

type ssRoom struct {
	Name          string            `json:"name"`
	Initial       bool              `json:"initial"`
	Membership    string            `json:"membership"`
	IsDM          *bool             `json:"is_dm"`
	Lists         []string          `json:"lists"`
	RequiredState []json.RawMessage `json:"required_state"`
	Timeline      []json.RawMessage `json:"timeline"`
	PrevBatch     string            `json:"prev_batch"`
	Limited       bool              `json:"limited"`
	NumLive       *int              `json:"num_live"`
	BumpStamp     int64             `json:"bump_stamp"`
	JoinedCount   *int              `json:"joined_count"`
	InvitedCount  *int              `json:"invited_count"`
	Notifications *int              `json:"notification_count"`
	Highlights    *int              `json:"highlight_count"`
	InviteState   []json.RawMessage `json:"invite_state"`
	Heroes        []struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"displayname"`
	} `json:"heroes"`
}

type ssResp struct {
	Pos   string `json:"pos"`
	Lists map[string]struct {
		Count int `json:"count"`
	} `json:"lists"`
	Rooms      map[string]ssRoom          `json:"rooms"`
	Extensions map[string]json.RawMessage `json:"extensions"`
}

type ev struct {
	Type     string         `json:"type"`
	StateKey *string        `json:"state_key"`
	Sender   string         `json:"sender"`
	EventID  string         `json:"event_id"`
	Content  map[string]any `json:"content"`
}

func evs(t *testing.T, raw []json.RawMessage) []ev {
	t.Helper()
	out := make([]ev, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// slide sends one sliding sync request and decodes the 200 answer.
func slide(t *testing.T, c *mxtest.Client, pos string, timeout time.Duration, body map[string]any) ssResp {
	t.Helper()
	r := slideRaw(t, c, pos, timeout, body)
	if r.Status != 200 {
		t.Fatalf("sliding sync: %d %s", r.Status, r.Raw)
	}
	var out ssResp
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func slideRaw(t *testing.T, c *mxtest.Client, pos string, timeout time.Duration, body map[string]any) mxtest.Response {
	t.Helper()
	q := url.Values{}
	if pos != "" {
		q.Set("pos", pos)
	}
	if timeout > 0 {
		q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	}
	return c.Do("POST", slidingPath+"?"+q.Encode(), body)
}

func list(rng [2]int, limit int, state any, filters map[string]any) map[string]any {
	l := map[string]any{"ranges": [][2]int{rng}, "timeline_limit": limit, "required_state": state}
	if filters != nil {
		l["filters"] = filters
	}
	return l
}

func body(lists map[string]any) map[string]any { return map[string]any{"lists": lists} }

// byBump lists the response's rooms newest first.
func byBump(r ssResp) []string {
	ids := make([]string, 0, len(r.Rooms))
	for id := range r.Rooms {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return int(r.Rooms[b].BumpStamp - r.Rooms[a].BumpStamp) })
	return ids
}

func bodiesOf(t *testing.T, raw []json.RawMessage) []string {
	var out []string
	for _, e := range evs(t, raw) {
		if e.Type == "m.room.message" {
			out = append(out, fmt.Sprint(e.Content["body"]))
		}
	}
	return out
}

// TestSlidingSyncOverHTTP walks a client through MSC4186 against the real
// server: lists, ranges, ordering, required_state, invites and leaves,
// filters, extensions, pos resumption, expiry and a restart.
func TestSlidingSyncOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")

		v := alice.Must(200, "GET", "/_matrix/client/versions", nil)
		if uf, _ := v.Body["unstable_features"].(map[string]any); uf["org.matrix.simplified_msc3575"] != true {
			t.Fatalf("versions: %s", v.Raw)
		}

		// Five rooms, made and written to in order: room[4] is the newest.
		var rooms []string
		for i := range 5 {
			id := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": fmt.Sprintf("R%d", i), "preset": "public_chat"}).Str("room_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", id), map[string]any{})
			sendMsg(alice, id, fmt.Sprintf("a%d", i), map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("hello %d", i)})
			rooms = append(rooms, id)
		}
		nameOnly := [][2]string{{"m.room.name", ""}}

		// A window of three: the three newest, newest first, initial.
		r := slide(t, bob, "", 0, body(map[string]any{"all": list([2]int{0, 2}, 1, nameOnly, nil)}))
		if r.Lists["all"].Count != 5 {
			t.Fatalf("count = %d", r.Lists["all"].Count)
		}
		if got := byBump(r); !slices.Equal(got, []string{rooms[4], rooms[3], rooms[2]}) {
			t.Fatalf("window = %v, want %v", got, rooms[2:])
		}
		rr := r.Rooms[rooms[4]]
		if !rr.Initial || rr.Name != "R4" || rr.Membership != "join" || *rr.JoinedCount != 2 || !rr.Limited ||
			rr.PrevBatch == "" || *rr.NumLive != 0 || rr.Notifications == nil {
			t.Fatalf("room result: %+v", rr)
		}
		if b := bodiesOf(t, rr.Timeline); !slices.Equal(b, []string{"hello 4"}) || len(rr.Timeline) != 1 {
			t.Fatalf("timeline = %v", b)
		}
		if st := evs(t, rr.RequiredState); len(st) != 1 || st[0].Type != "m.room.name" {
			t.Fatalf("required_state = %+v", st)
		}
		// prev_batch pages /messages back from the timeline.
		m := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=1&from=%s", rooms[4], rr.PrevBatch), nil)
		if c, _ := m.Body["chunk"].([]any); len(c) != 1 {
			t.Fatalf("messages from prev_batch: %s", m.Raw)
		}

		// Growing the range sends only the rooms new to the connection.
		r = slide(t, bob, r.Pos, 0, body(map[string]any{"all": list([2]int{0, 4}, 1, nameOnly, nil)}))
		if got := byBump(r); !slices.Equal(got, []string{rooms[1], rooms[0]}) {
			t.Fatalf("grown window sent %v", got)
		}
		// Shrinking it sends nothing; the count stays.
		r = slide(t, bob, r.Pos, 0, body(map[string]any{"all": list([2]int{0, 1}, 1, nameOnly, nil)}))
		if len(r.Rooms) != 0 || r.Lists["all"].Count != 5 {
			t.Fatalf("shrunk window: %+v", r)
		}
		pos := r.Pos

		// A message in the oldest room wakes a long-poll and moves it to
		// the top of the window.
		var got ssResp
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			got = slide(t, bob, pos, 20*time.Second, body(map[string]any{"all": list([2]int{0, 1}, 1, nameOnly, nil)}))
		}()
		waitFor(t, "bob's long-poll", func() bool { return srv.srv.hs.Notifier.Waiting(bob.UserID) })
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/b0", rooms[0]), map[string]any{"msgtype": "m.text", "body": "back on top"})
		wg.Wait()
		rr, ok := got.Rooms[rooms[0]]
		if !ok || rr.Initial || *rr.NumLive != 1 || !slices.Equal(bodiesOf(t, rr.Timeline), []string{"back on top"}) {
			t.Fatalf("woken response: %+v", got)
		}
		for id, o := range got.Rooms {
			if id != rooms[0] && o.BumpStamp >= rr.BumpStamp {
				t.Fatalf("room %s bump %d not below %d", id, o.BumpStamp, rr.BumpStamp)
			}
		}
		// The room is at the top for a fresh window of one.
		// (on a second connection: a request without pos starts its
		// connection over.)
		topReq := body(map[string]any{"top": list([2]int{0, 0}, 1, nameOnly, nil)})
		topReq["conn_id"] = "second"
		top := slide(t, bob, "", 0, topReq)
		if ids := byBump(top); !slices.Equal(ids, []string{rooms[0]}) {
			t.Fatalf("top = %v", ids)
		}
		// The response was lost: retrying the pos it answered sends the
		// message again, twice if need be.
		w2 := body(map[string]any{"all": list([2]int{0, 1}, 1, nameOnly, nil)})
		again := slide(t, bob, pos, 0, w2)
		again2 := slide(t, bob, pos, 0, w2)
		for _, a := range []ssResp{again, again2} {
			if !slices.Equal(bodiesOf(t, a.Rooms[rooms[0]].Timeline), []string{"back on top"}) || a.Pos == got.Pos {
				t.Fatalf("retry: %+v", a)
			}
		}
		// Once the client comes back with a newer pos, nothing is repeated.
		if r := slide(t, bob, again2.Pos, 0, w2); len(r.Rooms) != 0 {
			t.Fatalf("after the retry: %+v", r.Rooms)
		}
		// A pos never handed out, or superseded, is M_UNKNOWN_POS.
		if r := slideRaw(t, bob, "nonsense", 0, body(nil)); r.Status != 400 || r.Errcode() != "M_UNKNOWN_POS" {
			t.Fatalf("unknown pos: %d %s", r.Status, r.Raw)
		}
		if r := slideRaw(t, bob, again.Pos, 0, body(nil)); r.Errcode() != "M_UNKNOWN_POS" {
			t.Fatalf("superseded pos: %d %s", r.Status, r.Raw)
		}

		// required_state wildcards and lazy members.
		sendMsg(bob, rooms[2], "b2", map[string]any{"msgtype": "m.text", "body": "from bob"})
		all := slide(t, bob, "", 0, map[string]any{"room_subscriptions": map[string]any{
			rooms[2]: map[string]any{"timeline_limit": 1, "required_state": [][2]string{{"*", "*"}}},
		}})
		st := evs(t, all.Rooms[rooms[2]].RequiredState)
		if types := stateTypes(st); !slices.Contains(types, "m.room.create") || !slices.Contains(types, "m.room.power_levels") || memberEvents(st) != 2 {
			t.Fatalf("* * state = %v", types)
		}
		lazy := slide(t, alice, "", 0, map[string]any{"room_subscriptions": map[string]any{
			rooms[2]: map[string]any{"timeline_limit": 1, "required_state": [][2]string{{"m.room.member", "$LAZY"}, {"m.room.create", ""}}},
		}})
		st = evs(t, lazy.Rooms[rooms[2]].RequiredState)
		if types := stateTypes(st); !slices.Equal(types, []string{"m.room.create", "m.room.member"}) || *st[1].StateKey != bob.UserID {
			t.Fatalf("lazy state = %+v", st)
		}
		me := slide(t, alice, "", 0, map[string]any{"room_subscriptions": map[string]any{
			rooms[2]: map[string]any{"timeline_limit": 0, "required_state": [][2]string{{"m.room.member", "$ME"}}},
		}})
		st = evs(t, me.Rooms[rooms[2]].RequiredState)
		if len(st) != 1 || *st[0].StateKey != alice.UserID || len(me.Rooms[rooms[2]].Timeline) != 0 {
			t.Fatalf("$ME state = %+v", st)
		}
		// A subscription to a room the user is not in is ignored.
		none := slide(t, carol, "", 0, map[string]any{"room_subscriptions": map[string]any{
			rooms[2]: map[string]any{"timeline_limit": 5, "required_state": [][2]string{{"*", "*"}}},
		}})
		if len(none.Rooms) != 0 {
			t.Fatalf("carol sees a room she is not in: %+v", none.Rooms)
		}

		// Invites, joins, leaves and kicks entering and leaving lists.
		cl := map[string]any{
			"all":     list([2]int{0, 20}, 3, nameOnly, nil),
			"invites": list([2]int{0, 20}, 0, nameOnly, map[string]any{"is_invite": true}),
		}
		c := slide(t, carol, "", 0, body(cl))
		if c.Lists["all"].Count != 0 || c.Lists["invites"].Count != 0 {
			t.Fatalf("carol's lists: %+v", c.Lists)
		}
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", rooms[3]), map[string]any{"user_id": carol.UserID})
		c = slide(t, carol, c.Pos, 10*time.Second, body(cl))
		inv := c.Rooms[rooms[3]]
		if inv.Membership != "invite" || len(inv.InviteState) == 0 || len(inv.Timeline) != 0 || c.Lists["invites"].Count != 1 ||
			!slices.Contains(inv.Lists, "invites") {
			t.Fatalf("invite: %+v lists %+v", inv, c.Lists)
		}
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", rooms[3]), map[string]any{})
		c = slide(t, carol, c.Pos, 10*time.Second, body(cl))
		if j := c.Rooms[rooms[3]]; j.Membership != "join" || !j.Initial || c.Lists["invites"].Count != 0 || j.Name != "R3" {
			t.Fatalf("after join: %+v %+v", j, c.Lists)
		}
		// Carol joined after the messages were sent: history visibility
		// (shared) lets her see them, so the timeline is not empty.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", rooms[3]), map[string]any{"user_id": carol.UserID})
		sendMsg(alice, rooms[3], "secret", map[string]any{"msgtype": "m.text", "body": "after the kick"})
		erin := mxtest.Register(t, srv.URL, "erin", "password erin")
		erin.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", rooms[3]), map[string]any{})
		c = slide(t, carol, c.Pos, 10*time.Second, body(cl))
		k := c.Rooms[rooms[3]]
		if k.Membership != "leave" || slices.Contains(bodiesOf(t, k.Timeline), "after the kick") || (k.JoinedCount != nil && *k.JoinedCount != 2) {
			t.Fatalf("after the kick: %+v", k)
		}
		// A new connection still lists the room she was kicked from, but
		// nothing after the kick: not the message, not who joined since.
		c = slide(t, carol, "", 0, body(cl))
		if k := c.Rooms[rooms[3]]; k.Membership != "leave" || slices.Contains(bodiesOf(t, k.Timeline), "after the kick") || c.Lists["all"].Count != 1 ||
			k.JoinedCount == nil || *k.JoinedCount != 2 {
			t.Fatalf("kicked room on a new connection: %+v", c)
		}
		// A room left by the user herself is not listed on a new
		// connection.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", rooms[1]), map[string]any{})
		b := slide(t, bob, "", 0, body(map[string]any{"all": list([2]int{0, 20}, 1, nameOnly, nil)}))
		if _, ok := b.Rooms[rooms[1]]; ok || b.Lists["all"].Count != 4 {
			t.Fatalf("self-left room listed: count %d", b.Lists["all"].Count)
		}

		// Filters: DMs, encryption, room types and spaces.
		dm := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"is_direct": true, "invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", dm), map[string]any{})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", bob.UserID), map[string]any{alice.UserID: []string{dm}})
		enc := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"initial_state": []any{
			map[string]any{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
		}}).Str("room_id")
		space := bob.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "Campus", "creation_content": map[string]any{"type": "m.space"}}).Str("room_id")
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.space.child/%s", space, rooms[2]), map[string]any{"via": []string{"test"}})
		f := slide(t, bob, "", 0, body(map[string]any{
			"dms":     list([2]int{0, 20}, 0, nameOnly, map[string]any{"is_dm": true}),
			"notdms":  list([2]int{0, 20}, 0, nameOnly, map[string]any{"is_dm": false}),
			"enc":     list([2]int{0, 20}, 0, nameOnly, map[string]any{"is_encrypted": true}),
			"spaces":  list([2]int{0, 20}, 0, nameOnly, map[string]any{"room_types": []string{"m.space"}}),
			"rooms":   list([2]int{0, 20}, 0, nameOnly, map[string]any{"not_room_types": []string{"m.space"}}),
			"untyped": list([2]int{0, 20}, 0, nameOnly, map[string]any{"room_types": []any{nil}}),
			"campus":  list([2]int{0, 20}, 0, nameOnly, map[string]any{"spaces": []string{space}}),
		}))
		inLists := func(id string) []string { l := f.Rooms[id].Lists; slices.Sort(l); return l }
		// A DM is created encrypted (encryption.default private), so the
		// encrypted list holds it and enc.
		if l := inLists(dm); !slices.Equal(l, []string{"dms", "enc", "rooms", "untyped"}) || f.Rooms[dm].IsDM == nil || !*f.Rooms[dm].IsDM {
			t.Fatalf("dm lists %v, is_dm %v", l, f.Rooms[dm].IsDM)
		}
		// The nameless DM is named after its heroes.
		if h := f.Rooms[dm].Heroes; len(h) != 1 || h[0].UserID != alice.UserID || h[0].DisplayName != "alice" || f.Rooms[dm].Name != "" {
			t.Fatalf("dm heroes %+v, name %q", h, f.Rooms[dm].Name)
		}
		if l := inLists(enc); !slices.Equal(l, []string{"enc", "notdms", "rooms", "untyped"}) {
			t.Fatalf("encrypted room lists %v", l)
		}
		if l := inLists(space); !slices.Equal(l, []string{"notdms", "spaces"}) {
			t.Fatalf("space lists %v", l)
		}
		if l := inLists(rooms[2]); !slices.Equal(l, []string{"campus", "notdms", "rooms", "untyped"}) {
			t.Fatalf("space child lists %v", l)
		}
		if f.Lists["dms"].Count != 1 || f.Lists["enc"].Count != 2 || f.Lists["spaces"].Count != 1 || f.Lists["campus"].Count != 1 ||
			f.Lists["rooms"].Count != 6 || f.Lists["notdms"].Count != 6 {
			t.Fatalf("counts: %+v", f.Lists)
		}

		// Tags: not_tags wins over tags.
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/m.favourite", bob.UserID, enc), map[string]any{"order": 0.5})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/u.work", bob.UserID, dm), map[string]any{})
		tagLists := map[string]any{
			"fav":    list([2]int{0, 20}, 0, nameOnly, map[string]any{"tags": []string{"m.favourite"}}),
			"notfav": list([2]int{0, 20}, 0, nameOnly, map[string]any{"not_tags": []string{"m.favourite"}}),
			"both":   list([2]int{0, 20}, 0, nameOnly, map[string]any{"tags": []string{"m.favourite", "u.work"}, "not_tags": []string{"u.work"}}),
		}
		tg := slide(t, bob, "", 0, body(tagLists))
		if tg.Lists["fav"].Count != 1 || tg.Lists["notfav"].Count != 6 || tg.Lists["both"].Count != 1 ||
			!slices.Contains(tg.Rooms[enc].Lists, "fav") || !slices.Contains(tg.Rooms[enc].Lists, "both") || slices.Contains(tg.Rooms[dm].Lists, "both") {
			t.Fatalf("tag lists: %+v", tg.Lists)
		}
		// A tag removed later takes the room out of the list.
		bob.Must(200, "DELETE", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/m.favourite", bob.UserID, enc), nil)
		tg = waitSlide(t, bob, tg.Pos, body(tagLists), func(r ssResp) bool { return r.Lists["fav"].Count == 0 })
		if tg.Lists["notfav"].Count != 7 {
			t.Fatalf("after untagging: %+v", tg.Lists)
		}

		// Extensions: account data, typing, receipts.
		ext := map[string]any{
			"lists": map[string]any{"all": list([2]int{0, 20}, 1, nameOnly, nil)},
			"extensions": map[string]any{"account_data": map[string]any{"enabled": true}, "typing": map[string]any{"enabled": true},
				"receipts": map[string]any{"enabled": true}, "presence": map[string]any{"enabled": true}},
		}
		x := slide(t, bob, "", 0, ext)
		if p := string(x.Extensions["presence"]); !strings.Contains(p, alice.UserID) || strings.Contains(p, carol.UserID) {
			t.Fatalf("presence: %s", p)
		}
		if !strings.Contains(string(x.Extensions["account_data"]), "m.direct") {
			t.Fatalf("account_data: %s", x.Extensions["account_data"])
		}
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/typing/%s", rooms[4], alice.UserID), map[string]any{"typing": true, "timeout": 20000})
		x = slide(t, bob, x.Pos, 10*time.Second, ext)
		if ty := string(x.Extensions["typing"]); !strings.Contains(ty, rooms[4]) || !strings.Contains(ty, alice.UserID) {
			t.Fatalf("typing: %s", ty)
		}
		last := sendMsg(alice, rooms[4], "rc", map[string]any{"msgtype": "m.text", "body": "read me"})
		x = slide(t, bob, x.Pos, 10*time.Second, ext)
		if n := x.Rooms[rooms[4]].Notifications; n == nil || *n == 0 {
			t.Fatalf("no unread count: %+v", x.Rooms[rooms[4]])
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", rooms[4], last), map[string]any{})
		x = waitSlide(t, bob, x.Pos, ext, func(r ssResp) bool { return r.Extensions["receipts"] != nil })
		if rc := string(x.Extensions["receipts"]); !strings.Contains(rc, last) || !strings.Contains(rc, bob.UserID) {
			t.Fatalf("receipts: %s", rc)
		}
		if n := x.Rooms[rooms[4]].Notifications; n != nil && *n != 0 {
			t.Fatalf("unread after the receipt: %d", *n)
		}
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/org.example", bob.UserID), map[string]any{"k": 1})
		x = waitSlide(t, bob, x.Pos, ext, func(r ssResp) bool { return r.Extensions["account_data"] != nil })
		if ad := string(x.Extensions["account_data"]); !strings.Contains(ad, "org.example") || strings.Contains(ad, "m.direct") {
			t.Fatalf("incremental account_data: %s", ad)
		}

		// Expiry: an idle connection's pos becomes unknown.
		srv.srv.hs.Sync.SetSlidingConnTTL(time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		if r := slideRaw(t, bob, x.Pos, 0, ext); r.Status != 400 || r.Errcode() != "M_UNKNOWN_POS" {
			t.Fatalf("expired pos: %d %s", r.Status, r.Raw)
		}
		srv.srv.hs.Sync.SetSlidingConnTTL(0)

		// A restart mid-connection: the pos is unknown, a new connection
		// sees the same rooms.
		before := slide(t, bob, "", 0, body(map[string]any{"all": list([2]int{0, 20}, 1, nameOnly, nil)}))
		srv.Stop()
		srv2 := startServer(t, db)
		bob.Base = srv2.URL
		if r := slideRaw(t, bob, before.Pos, 0, body(nil)); r.Status != 400 || r.Errcode() != "M_UNKNOWN_POS" {
			t.Fatalf("pos after restart: %d %s", r.Status, r.Raw)
		}
		after := slide(t, bob, "", 0, body(map[string]any{"all": list([2]int{0, 20}, 1, nameOnly, nil)}))
		if !slices.Equal(byBump(before), byBump(after)) || before.Lists["all"].Count != after.Lists["all"].Count {
			t.Fatalf("after restart %v, before %v", byBump(after), byBump(before))
		}
	})
}

// waitSlide long-polls until ok holds for a response.
func waitSlide(t *testing.T, c *mxtest.Client, pos string, body map[string]any, ok func(ssResp) bool) ssResp {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := slide(t, c, pos, 5*time.Second, body)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching response; last %+v", r)
		}
		pos = r.Pos
	}
}

func stateTypes(st []ev) []string {
	var out []string
	for _, e := range st {
		out = append(out, e.Type)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func memberEvents(st []ev) int {
	n := 0
	for _, e := range st {
		if e.Type == "m.room.member" {
			n++
		}
	}
	return n
}

// TestSlidingSyncPrivacy: sliding sync follows /sync's rules — history
// visibility bounds a later joiner's timeline, a knock is shown to the
// room's moderators only, a knocker and an invitee get stripped state
// only, and nobody gets a room they have no membership in.
func TestSlidingSyncPrivacy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "Conseil", "preset": "public_chat", "initial_state": []any{
			map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}},
		}}).Str("room_id")
		sendMsg(alice, room, "h1", map[string]any{"msgtype": "m.text", "body": "before bob"})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		sendMsg(alice, room, "h2", map[string]any{"msgtype": "m.text", "body": "after bob"})
		everything := map[string]any{"room_subscriptions": map[string]any{room: map[string]any{"timeline_limit": 50, "required_state": [][2]string{{"*", "*"}}}}}
		b := slide(t, bob, "", 0, everything)
		if got := bodiesOf(t, b.Rooms[room].Timeline); slices.Contains(got, "before bob") || !slices.Contains(got, "after bob") {
			t.Fatalf("bob's timeline %v", got)
		}

		// A knock: the moderator sees it, the other member does not.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.join_rules/", room), map[string]any{"join_rule": "knock"})
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/knock/%s", room), map[string]any{"reason": "let me in"})
		hasKnock := func(r ssResp) bool {
			for _, e := range evs(t, r.Rooms[room].RequiredState) {
				if e.Type == "m.room.member" && *e.StateKey == carol.UserID {
					return true
				}
			}
			return false
		}
		if b := slide(t, bob, "", 0, everything); hasKnock(b) {
			t.Fatal("a non-moderator sees the knock")
		}
		if a := slide(t, alice, "", 0, everything); !hasKnock(a) {
			t.Fatal("the moderator does not see the knock")
		}
		all := body(map[string]any{"all": list([2]int{0, 10}, 10, [][2]string{{"*", "*"}}, nil)})
		c := slide(t, carol, "", 0, all)
		k := c.Rooms[room]
		if k.Membership != "knock" || len(k.Timeline) != 0 || len(k.RequiredState) != 0 {
			t.Fatalf("knocker's room: %+v", k)
		}
		var stripped struct {
			Stripped []ev `json:"stripped_state"`
		}
		raw := slideRaw(t, carol, "", 0, all).Raw
		var whole struct {
			Rooms map[string]json.RawMessage `json:"rooms"`
		}
		_ = json.Unmarshal(raw, &whole)
		_ = json.Unmarshal(whole.Rooms[room], &stripped)
		for _, e := range stripped.Stripped {
			if e.Type == "m.room.member" && *e.StateKey != carol.UserID {
				t.Fatalf("stripped state names another member: %+v", e)
			}
			if e.Type == "m.room.message" || e.Type == "m.room.history_visibility" {
				t.Fatalf("stripped state carries %s", e.Type)
			}
		}

		// An invitee: stripped state only, no timeline, no member list.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": dave.UserID})
		d := slide(t, dave, "", 0, all)
		inv := d.Rooms[room]
		if inv.Membership != "invite" || len(inv.Timeline) != 0 || len(inv.RequiredState) != 0 || inv.JoinedCount != nil || len(inv.InviteState) == 0 {
			t.Fatalf("invitee's room: %+v", inv)
		}
		for _, e := range evs(t, inv.InviteState) {
			if e.Type == "m.room.member" && *e.StateKey != dave.UserID {
				t.Fatalf("invite state names another member: %+v", e)
			}
		}
		// A rejected invite is not listed on a new connection.
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		if d := slide(t, dave, "", 0, all); len(d.Rooms) != 0 || d.Lists["all"].Count != 0 {
			t.Fatalf("rejected invite listed: %+v", d)
		}
	})
}

// TestSlidingSyncBadInput: malformed requests get Matrix errors, never a
// 500 or a hang.
func TestSlidingSyncBadInput(t *testing.T) {
	srv := startServer(t, "sqlite:"+t.TempDir()+"/salon.db")
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	for _, tc := range []struct {
		name, query string
		body        any
		errcode     string
	}{
		{"not JSON", "", []byte("{"), "M_NOT_JSON"},
		{"lists of the wrong type", "", map[string]any{"lists": []int{1}}, "M_BAD_JSON"},
		{"reversed range", "", body(map[string]any{"l": list([2]int{5, 1}, 1, nil, nil)}), "M_INVALID_PARAM"},
		{"negative range", "", body(map[string]any{"l": list([2]int{-1, 1}, 1, nil, nil)}), "M_INVALID_PARAM"},
		{"negative timeline_limit", "", body(map[string]any{"l": list([2]int{0, 1}, -1, nil, nil)}), "M_INVALID_PARAM"},
		{"required_state triple", "", body(map[string]any{"l": list([2]int{0, 1}, 1, [][]string{{"a", "b", "c"}}, nil)}), "M_BAD_JSON"},
		{"required_state number", "", body(map[string]any{"l": list([2]int{0, 1}, 1, 7, nil)}), "M_BAD_JSON"},
		{"empty list key", "", body(map[string]any{"": list([2]int{0, 1}, 1, nil, nil)}), "M_INVALID_PARAM"},
		{"negative timeout", "?timeout=-5&pos=x", map[string]any{}, "M_INVALID_PARAM"},
		{"timeout not a number", "?timeout=soon", map[string]any{}, "M_INVALID_PARAM"},
		{"bad set_presence", "?set_presence=away", map[string]any{}, "M_INVALID_PARAM"},
		{"unknown pos", "?pos=s1_2", map[string]any{}, "M_UNKNOWN_POS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := alice.Do("POST", slidingPath+tc.query, tc.body)
			if r.Status != 400 || r.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want 400 %s", r.Status, r.Raw, tc.errcode)
			}
		})
	}
	many := map[string]any{}
	for i := range 101 {
		many[fmt.Sprint("l", i)] = list([2]int{0, 1}, 1, nil, nil)
	}
	if r := alice.Do("POST", slidingPath, body(many)); r.Status != 400 || r.Errcode() != "M_INVALID_PARAM" {
		t.Fatalf("101 lists: %d %s", r.Status, r.Raw)
	}
	if r := mxtest.New(t, srv.URL).Do("POST", slidingPath, map[string]any{}); r.Status != 401 {
		t.Fatalf("without a token: %d %s", r.Status, r.Raw)
	}
	if r := alice.Do("GET", slidingPath, nil); r.Status != 405 {
		t.Fatalf("GET: %d %s", r.Status, r.Raw)
	}
}

// TestSlidingSyncExtensionsOutOfWindow: receipts and room account data of
// a room that happen while the room is outside the list window arrive once
// it is back in the window.
func TestSlidingSyncExtensionsOutOfWindow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		var rooms []string
		var last string
		for i := range 3 {
			id := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "name": fmt.Sprint("W", i)}).Str("room_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", id), map[string]any{})
			last = sendMsg(alice, id, "m", map[string]any{"msgtype": "m.text", "body": "hi"})
			rooms = append(rooms, id)
		}
		sendMsg(alice, rooms[0], "m2", map[string]any{"msgtype": "m.text", "body": "now the newest"})
		req := func(to int) map[string]any {
			return map[string]any{
				"lists":      map[string]any{"all": list([2]int{0, to}, 1, [][2]string{{"m.room.name", ""}}, nil)},
				"extensions": map[string]any{"receipts": map[string]any{"enabled": true}, "account_data": map[string]any{"enabled": true}},
			}
		}
		// All three rooms are sent, then the window shrinks to the newest.
		r := slide(t, bob, "", 0, req(2))
		if len(r.Rooms) != 3 {
			t.Fatalf("rooms %v", byBump(r))
		}
		r = slide(t, bob, r.Pos, 0, req(0))
		// Room 2 is outside the window now (room 0 had the newest message).
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", rooms[2], last), map[string]any{})
		bob.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/account_data/m.tag", bob.UserID, rooms[2]), map[string]any{"tags": map[string]any{"u.work": map[string]any{}}})
		r = slide(t, bob, r.Pos, 0, req(0))
		if strings.Contains(string(r.Extensions["receipts"]), rooms[2]) || strings.Contains(string(r.Extensions["account_data"]), rooms[2]) {
			t.Fatalf("out-of-window room in extensions: %s %s", r.Extensions["receipts"], r.Extensions["account_data"])
		}
		r = slide(t, bob, r.Pos, 0, req(2))
		if rc := string(r.Extensions["receipts"]); !strings.Contains(rc, rooms[2]) || !strings.Contains(rc, last) {
			t.Fatalf("receipt missed while out of the window: %s", rc)
		}
		if ad := string(r.Extensions["account_data"]); !strings.Contains(ad, rooms[2]) || !strings.Contains(ad, "u.work") {
			t.Fatalf("room account data missed while out of the window: %s", ad)
		}
		// And only once.
		r = slide(t, bob, r.Pos, 0, req(2))
		if r.Extensions["receipts"] != nil || r.Extensions["account_data"] != nil {
			t.Fatalf("sent again: %s %s", r.Extensions["receipts"], r.Extensions["account_data"])
		}
	})
}

// TestSlidingSyncRoomConfigChanges: Element X opens a room by subscribing
// to it with a longer timeline and closes it by unsubscribing. Opening
// sends the room again in full (initial, the longer timeline); closing
// narrows the config and sends nothing, and the room's next message comes
// as an update, not as a replacement of what the client holds.
func TestSlidingSyncRoomConfigChanges(t *testing.T) {
	srv := startServer(t, "sqlite:"+t.TempDir()+"/salon.db")
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "Open me"}).Str("room_id")
	for i := range 5 {
		sendMsg(alice, room, fmt.Sprint("m", i), map[string]any{"msgtype": "m.text", "body": fmt.Sprint("message ", i)})
	}
	lists := map[string]any{"all": list([2]int{0, 10}, 1, [][2]string{{"m.room.name", ""}}, nil)}
	r := slide(t, alice, "", 0, body(lists))
	if got := bodiesOf(t, r.Rooms[room].Timeline); !slices.Equal(got, []string{"message 4"}) {
		t.Fatalf("list timeline %v", got)
	}
	open := map[string]any{"lists": lists, "room_subscriptions": map[string]any{room: map[string]any{"timeline_limit": 10, "required_state": [][2]string{{"*", "*"}}}}}
	r = slide(t, alice, r.Pos, 0, open)
	o := r.Rooms[room]
	if !o.Initial || len(bodiesOf(t, o.Timeline)) != 5 || len(o.RequiredState) < 5 {
		t.Fatalf("opened room: initial %v, %d messages, %d state", o.Initial, len(bodiesOf(t, o.Timeline)), len(o.RequiredState))
	}
	// The subscription is sticky: the next request need not repeat it.
	sendMsg(alice, room, "m5", map[string]any{"msgtype": "m.text", "body": "message 5"})
	r = slide(t, alice, r.Pos, 5*time.Second, body(lists))
	if o := r.Rooms[room]; o.Initial || !slices.Equal(bodiesOf(t, o.Timeline), []string{"message 5"}) {
		t.Fatalf("update while open: %+v", o)
	}
	// Closing: nothing is sent, and the next message is an update.
	r = slide(t, alice, r.Pos, 0, map[string]any{"lists": lists, "unsubscribe_rooms": []string{room}})
	if len(r.Rooms) != 0 {
		t.Fatalf("closing the room sent %+v", r.Rooms)
	}
	sendMsg(alice, room, "m6", map[string]any{"msgtype": "m.text", "body": "message 6"})
	r = slide(t, alice, r.Pos, 5*time.Second, body(lists))
	if o := r.Rooms[room]; o.Initial || !slices.Equal(bodiesOf(t, o.Timeline), []string{"message 6"}) {
		t.Fatalf("update after closing: %+v", o)
	}
	// Opening it again sends it in full again.
	r = slide(t, alice, r.Pos, 0, open)
	if o := r.Rooms[room]; !o.Initial || len(bodiesOf(t, o.Timeline)) != 7 {
		t.Fatalf("reopened: initial %v, %v", o.Initial, bodiesOf(t, o.Timeline))
	}
}
