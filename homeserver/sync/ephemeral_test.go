package sync

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

func typingUsers(t *testing.T, room roomJSON) ([]string, bool) {
	t.Helper()
	for _, e := range room.Ephemeral.Events {
		if e.Type == "m.typing" {
			var c struct {
				UserIDs []string `json:"user_ids"`
			}
			if err := json.Unmarshal(e.Content, &c); err != nil || c.UserIDs == nil {
				t.Fatalf("m.typing content %s", e.Content)
			}
			return c.UserIDs, true
		}
	}
	return nil, false
}

func TestTyping(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	h.join(r.id, bob)
	members := []string{alice, bob}
	first, _ := h.sync(Request{UserID: bob})

	h.ty.Set(r.id, alice, true, 30*time.Second, members)
	resp, js := h.sync(Request{UserID: bob, Since: first.NextBatch})
	if users, ok := typingUsers(t, js.Rooms.Join[r.id]); !ok || !slices.Equal(users, []string{alice}) {
		t.Fatalf("typing start: %v %v", users, ok)
	}
	tok, _ := ParseStreamToken(resp.NextBatch)
	if tok.Typing != h.ty.current() {
		t.Fatalf("typing part %d, counter %d", tok.Typing, h.ty.current())
	}
	// Initial sync shows current typing.
	if _, js := h.sync(Request{UserID: bob}); !slices.Contains(types(js.Rooms.Join[r.id].Ephemeral.Events), "m.typing") {
		t.Fatal("initial sync lacks typing")
	}
	// Refreshing the same state is no change.
	h.ty.Set(r.id, alice, true, 30*time.Second, members)
	if _, js := h.sync(Request{UserID: bob, Since: resp.NextBatch}); len(js.Rooms.Join) != 0 {
		t.Fatal("refresh reported")
	}
	// Stop: an empty list.
	h.ty.Set(r.id, alice, false, 0, members)
	resp, js = h.sync(Request{UserID: bob, Since: resp.NextBatch})
	if users, ok := typingUsers(t, js.Rooms.Join[r.id]); !ok || len(users) != 0 {
		t.Fatalf("typing stop: %v %v", users, ok)
	}
	// Expiry: the janitor removes alice after the timeout and wakes bob.
	h.ty.Set(r.id, alice, true, time.Second, members)
	resp, _ = h.sync(Request{UserID: bob, Since: resp.NextBatch})
	start := time.Now()
	_, js = h.sync(Request{UserID: bob, Since: resp.NextBatch, Timeout: 10 * time.Second})
	if users, ok := typingUsers(t, js.Rooms.Join[r.id]); !ok || len(users) != 0 {
		t.Fatalf("typing expiry: %v %v", users, ok)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("expiry took %v", d)
	}
	// A since token from another run gets every joined room's typing.
	stale := StreamToken{Pos: h.st.CurrentPos(), Typing: 5}
	_, js = h.sync(Request{UserID: bob, Since: stale.String()})
	if _, ok := typingUsers(t, js.Rooms.Join[r.id]); !ok {
		t.Fatal("stale typing token did not reset typing")
	}
	future := StreamToken{Pos: h.st.CurrentPos(), Typing: h.ty.current() + 100}
	_, js = h.sync(Request{UserID: bob, Since: future.String()})
	if _, ok := typingUsers(t, js.Rooms.Join[r.id]); !ok {
		t.Fatal("future typing token did not reset typing")
	}
}

func TestReceipts(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		h.join(r.id, bob)
		m := h.msg(r.id, alice, "read me")
		first, _ := h.sync(Request{UserID: bob})
		firstAlice, _ := h.sync(Request{UserID: alice})

		put := func(user, typ, thread string) {
			t.Helper()
			pos, err := h.st.PutReceipt(h.ctx, store.Receipt{RoomID: r.id, UserID: user, Type: typ, EventID: m.EventID, ThreadID: thread, TS: 1234})
			if err != nil {
				t.Fatal(err)
			}
			wake := []string{alice, bob}
			if typ == "m.read.private" {
				wake = []string{user}
			}
			h.n.Notify(pos, r.id, wake)
		}
		put(bob, "m.read", "")
		put(bob, "m.read", "main")
		put(bob, "m.read.private", "")

		receipt := func(room roomJSON) map[string]map[string]map[string]map[string]any {
			for _, e := range room.Ephemeral.Events {
				if e.Type == "m.receipt" {
					var c map[string]map[string]map[string]map[string]any
					if err := json.Unmarshal(e.Content, &c); err != nil {
						t.Fatal(err)
					}
					return c
				}
			}
			return nil
		}
		_, js := h.sync(Request{UserID: bob, Since: first.NextBatch})
		c := receipt(js.Rooms.Join[r.id])
		if c[m.EventID]["m.read"][bob]["ts"] != float64(1234) || c[m.EventID]["m.read.private"][bob] == nil {
			t.Fatalf("own receipts %v", c)
		}
		_, js = h.sync(Request{UserID: alice, Since: firstAlice.NextBatch})
		c = receipt(js.Rooms.Join[r.id])
		if c[m.EventID]["m.read"][bob] == nil {
			t.Fatalf("alice misses bob's receipt: %v", c)
		}
		if _, ok := c[m.EventID]["m.read.private"]; ok {
			t.Fatalf("alice sees bob's private receipt: %v", c)
		}
		// Initial sync carries current receipts, also without the private one.
		_, js = h.sync(Request{UserID: alice})
		c = receipt(js.Rooms.Join[r.id])
		if c[m.EventID]["m.read"][bob] == nil || c[m.EventID]["m.read.private"] != nil {
			t.Fatalf("initial receipts %v", c)
		}
	})
}

func TestAccountData(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		first, _ := h.sync(Request{UserID: alice})
		put := func(room, typ, content string) {
			t.Helper()
			pos, err := h.st.PutAccountData(h.ctx, alice, room, typ, []byte(content))
			if err != nil {
				t.Fatal(err)
			}
			h.n.Notify(pos, "", []string{alice})
		}
		put("", "m.push_rules", `{"global":{}}`)
		put(r.id, "m.fully_read", `{"event_id":"$x"}`)
		put(r.id, "m.tag", `{"tags":{"u.work":{}}}`)
		resp, js := h.sync(Request{UserID: alice, Since: first.NextBatch})
		if got := types(js.AccountData.Events); !slices.Equal(got, []string{"m.push_rules"}) {
			t.Fatalf("global account data %v", got)
		}
		room, ok := js.Rooms.Join[r.id]
		if !ok || len(room.Timeline.Events) != 0 {
			t.Fatalf("room for account data: %+v", js.Rooms.Join)
		}
		got := types(room.AccountData.Events)
		slices.Sort(got)
		if !slices.Equal(got, []string{"m.fully_read", "m.tag"}) {
			t.Fatalf("room account data %v", got)
		}
		// Only the changed type next time.
		put(r.id, "m.tag", `{"tags":{}}`)
		_, js = h.sync(Request{UserID: alice, Since: resp.NextBatch})
		if got := types(js.Rooms.Join[r.id].AccountData.Events); !slices.Equal(got, []string{"m.tag"}) || len(js.AccountData.Events) != 0 {
			t.Fatalf("second round %v %v", got, types(js.AccountData.Events))
		}
		// Initial sync: everything, filtered by type.
		f, err := ParseFilter([]byte(`{"account_data":{"not_types":["m.push_*"]},"room":{"account_data":{"types":["m.tag"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		_, js = h.sync(Request{UserID: alice, Filter: f})
		if len(js.AccountData.Events) != 0 || !slices.Equal(types(js.Rooms.Join[r.id].AccountData.Events), []string{"m.tag"}) {
			t.Fatalf("filtered account data %v %v", types(js.AccountData.Events), types(js.Rooms.Join[r.id].AccountData.Events))
		}
	})
}

func TestUnsigned(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	first, _ := h.sync(Request{UserID: alice, DeviceID: "PHONE"})
	m := h.send(r.id, alice, ev{typ: "m.room.message", content: map[string]any{"body": "secret"}, device: "PHONE", txn: "t1"})
	red := h.send(r.id, alice, ev{typ: "m.room.redaction", content: map[string]any{}, redacts: m.EventID})
	get := func(device string) map[string]eventJSON {
		_, js := h.sync(Request{UserID: alice, DeviceID: device, Since: first.NextBatch})
		out := map[string]eventJSON{}
		for _, e := range js.Rooms.Join[r.id].Timeline.Events {
			out[e.EventID] = e
		}
		return out
	}
	phone := get("PHONE")
	e := phone[m.EventID]
	if e.Unsigned["transaction_id"] != "t1" {
		t.Fatalf("no transaction_id for the sending device: %v", e.Unsigned)
	}
	if string(e.Content) != "{}" {
		t.Fatalf("redacted content %s", e.Content)
	}
	because, _ := e.Unsigned["redacted_because"].(map[string]any)
	if because["event_id"] != red.EventID || because["type"] != "m.room.redaction" {
		t.Fatalf("redacted_because %v", e.Unsigned["redacted_because"])
	}
	if _, ok := get("LAPTOP")[m.EventID].Unsigned["transaction_id"]; ok {
		t.Fatal("transaction_id for another device")
	}
	// Stored unsigned (prev_content) reaches the client.
	_, row := h.build(r, alice, ev{typ: "m.room.topic", stateKey: sk(""), content: map[string]any{"topic": "b"}})
	row2 := row
	row2.Unsigned = []byte(`{"prev_content":{"topic":"a"},"replaces_state":"$old"}`)
	h.persist(r, &store.EventBatch{Events: []store.EventRow{row2}})
	_, js := h.sync(Request{UserID: alice, Since: first.NextBatch})
	tl := js.Rooms.Join[r.id].Timeline.Events
	last := tl[len(tl)-1]
	if pc, _ := last.Unsigned["prev_content"].(map[string]any); pc["topic"] != "a" || last.Unsigned["replaces_state"] != "$old" {
		t.Fatalf("unsigned %v", last.Unsigned)
	}
	// event_format federation gives PDUs; event_fields trims.
	f := Filter{EventFormat: "federation"}
	resp, err := h.e.Sync(h.ctx, Request{UserID: alice, Since: first.NextBatch, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	var pdu map[string]any
	if err := json.Unmarshal(resp.Rooms.Join[r.id].Timeline.Events[0], &pdu); err != nil {
		t.Fatal(err)
	}
	if pdu["hashes"] == nil || pdu["signatures"] == nil || pdu["unsigned"] == nil {
		t.Fatalf("federation format %v", pdu)
	}
	f = Filter{EventFields: []string{"type", "content.body"}}
	resp, err = h.e.Sync(h.ctx, Request{UserID: alice, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	evs := resp.Rooms.Join[r.id].Timeline.Events
	var got map[string]any
	if err := json.Unmarshal(evs[0], &got); err != nil || len(got) != 2 || got["type"] != "m.room.create" {
		t.Fatalf("event_fields %s", evs[0])
	}
}

func TestTypingPositions(t *testing.T) {
	n := NewNotifier()
	ty := NewTyping(n)
	defer ty.Close()
	l := n.Listen("@m:t")
	defer l.Stop()
	start := ty.current()
	ty.Set("!r1", "@a:t", true, time.Minute, []string{"@m:t"})
	select {
	case <-l.C:
	default:
		t.Fatal("typing start did not wake the member")
	}
	ty.Set("!r2", "@b:t", true, time.Minute, []string{"@x:t"})
	ty.Set("!r1", "@c:t", true, 0, nil) // default timeout, members kept
	cur, st := ty.snapshot([]string{"!r1", "!r2", "!r3"})
	if cur != start+3 || !slices.Equal(st["!r1"].users, []string{"@a:t", "@c:t"}) || st["!r1"].pos != start+3 ||
		st["!r2"].pos != start+2 {
		t.Fatalf("snapshot %d %+v", cur, st)
	}
	if _, ok := st["!r3"]; ok {
		t.Fatal("untouched room in snapshot")
	}
	ty.Set("!r1", "@a:t", false, 0, nil)
	ty.Set("!r1", "@a:t", false, 0, nil) // no change
	ty.Set("!r9", "@a:t", false, 0, nil) // no room, no change
	cur, st = ty.snapshot([]string{"!r1"})
	if cur != start+4 || !slices.Equal(st["!r1"].users, []string{"@c:t"}) {
		t.Fatalf("after stop %d %+v", cur, st)
	}
	if !ty.fromThisRun(start, cur) || ty.fromThisRun(start-1, cur) || ty.fromThisRun(cur+1, cur) {
		t.Fatal("fromThisRun")
	}
}
