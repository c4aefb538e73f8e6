package sync

import (
	"slices"
	"testing"
)

func TestLazyLoadMembers(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		for _, u := range []string{bob, carol, dave} {
			h.join(r.id, u)
		}
		h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Named"}})
		for range 12 {
			h.msg(r.id, alice, "filler")
		}
		h.msg(r.id, carol, "from carol")
		f := timelineFilter(3)
		f.Room.State.LazyLoadMembers = true
		resp, js := h.sync(Request{UserID: bob, Filter: f})
		room := js.Rooms.Join[r.id]
		var members []string
		for _, e := range room.State.Events {
			if e.Type == typeMember {
				members = append(members, *e.StateKey)
			}
		}
		slices.Sort(members)
		// Senders alice and carol, and bob himself; not dave.
		if want := []string{alice, bob, carol}; !slices.Equal(members, want) {
			t.Fatalf("lazy members %v, want %v", members, want)
		}
		// Other state is untouched.
		if !slices.Contains(types(room.State.Events), "m.room.name") {
			t.Fatalf("state %v", types(room.State.Events))
		}

		// Incremental: dave speaks; his member event comes as state.
		h.msg(r.id, dave, "from dave")
		_, js = h.sync(Request{UserID: bob, Since: resp.NextBatch, Filter: f})
		room = js.Rooms.Join[r.id]
		if got := types(room.State.Events); !slices.Equal(got, []string{typeMember + "/" + dave}) {
			t.Fatalf("incremental lazy state %v", got)
		}

		// Without lazy loading every member is in the state.
		_, js = h.sync(Request{UserID: bob, Filter: timelineFilter(3)})
		n := 0
		for _, e := range js.Rooms.Join[r.id].State.Events {
			if e.Type == typeMember {
				n++
			}
		}
		if n != 4 {
			t.Fatalf("%d member events without lazy loading", n)
		}
	})
}

func TestInviteJoinLeave(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		r := h.createRoom("!room:test", alice)
		h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Salon"}})
		h.send(r.id, alice, ev{typ: "m.room.topic", stateKey: sk(""), content: map[string]any{"topic": "chat"}})
		h.msg(r.id, alice, "before the invite")
		bobFirst, _ := h.sync(Request{UserID: bob})

		h.member(r.id, alice, bob, invite)
		resp, js := h.sync(Request{UserID: bob, Since: bobFirst.NextBatch})
		ir, ok := js.Rooms.Invite[r.id]
		if !ok {
			t.Fatalf("no invite: %s", mustJSON(t, resp))
		}
		got := types(ir.InviteState.Events)
		slices.Sort(got)
		want := []string{"m.room.create", "m.room.join_rules", typeMember + "/" + bob, "m.room.name", "m.room.topic"}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("invite state %v, want %v", got, want)
		}
		for _, e := range ir.InviteState.Events {
			if e.EventID != "" || e.RoomID != "" || e.Sender == "" || e.Content == nil {
				t.Fatalf("not a stripped event: %+v", e)
			}
		}
		// An initial sync shows the invite too.
		if _, js := h.sync(Request{UserID: bob}); len(js.Rooms.Invite) != 1 {
			t.Fatal("invite missing from initial sync")
		}

		// Joining: the room arrives with its full state.
		h.join(r.id, bob)
		resp, js = h.sync(Request{UserID: bob, Since: resp.NextBatch})
		jr, ok := js.Rooms.Join[r.id]
		if !ok || len(js.Rooms.Invite) != 0 {
			t.Fatalf("join: %s", mustJSON(t, resp))
		}
		all := append(types(jr.State.Events), types(jr.Timeline.Events)...)
		for _, w := range []string{"m.room.create", "m.room.name", "m.room.topic", typeMember + "/" + bob} {
			if !slices.Contains(all, w) {
				t.Fatalf("newly joined room lacks %s: %v", w, all)
			}
		}

		// Bob leaves; alice goes on talking.
		h.msg(r.id, alice, "while bob is here")
		lv := h.member(r.id, bob, bob, leave)
		after := h.msg(r.id, alice, "after bob left")
		resp, js = h.sync(Request{UserID: bob, Since: resp.NextBatch})
		lr, ok := js.Rooms.Leave[r.id]
		if !ok || len(js.Rooms.Join) != 0 {
			t.Fatalf("leave: %s", mustJSON(t, resp))
		}
		tl := ids(lr.Timeline.Events)
		if len(tl) != 2 || tl[1] != lv.EventID || slices.Contains(tl, after.EventID) {
			t.Fatalf("leave timeline %v", types(lr.Timeline.Events))
		}
		// Later messages never reach bob.
		h.msg(r.id, alice, "much later")
		_, js = h.sync(Request{UserID: bob, Since: resp.NextBatch})
		if len(js.Rooms.Leave)+len(js.Rooms.Join) != 0 {
			t.Fatal("left room in a later sync")
		}
		// Initial sync: left rooms only with include_leave, up to the leave.
		if _, js := h.sync(Request{UserID: bob}); len(js.Rooms.Leave) != 0 {
			t.Fatal("left room in initial sync without include_leave")
		}
		var f Filter
		f.Room.IncludeLeave = true
		_, js = h.sync(Request{UserID: bob, Filter: f})
		lr = js.Rooms.Leave[r.id]
		tl = ids(lr.Timeline.Events)
		if len(tl) == 0 || tl[len(tl)-1] != lv.EventID {
			t.Fatalf("include_leave timeline %v", types(lr.Timeline.Events))
		}
		if len(lr.State.Events)+len(lr.Timeline.Events) < 5 {
			t.Fatalf("include_leave state %v", types(lr.State.Events))
		}
	})
}

func TestKickBanAndRejectedInvite(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	h.join(r.id, bob)
	first, _ := h.sync(Request{UserID: bob})
	h.msg(r.id, alice, "bye")
	ban := h.member(r.id, alice, bob, "ban")
	h.msg(r.id, alice, "gone")
	_, js := h.sync(Request{UserID: bob, Since: first.NextBatch})
	tl := ids(js.Rooms.Leave[r.id].Timeline.Events)
	if len(tl) != 2 || tl[1] != ban.EventID {
		t.Fatalf("ban timeline %v", tl)
	}

	// Carol is invited and rejects: leave shows only her own event.
	cFirst, _ := h.sync(Request{UserID: carol})
	h.member(r.id, alice, carol, invite)
	h.msg(r.id, alice, "private chatter")
	rej := h.member(r.id, carol, carol, leave)
	_, js = h.sync(Request{UserID: carol, Since: cFirst.NextBatch})
	lr, ok := js.Rooms.Leave[r.id]
	if !ok || len(js.Rooms.Invite) != 0 {
		t.Fatalf("rejected invite: %+v", js.Rooms)
	}
	if got := ids(lr.Timeline.Events); !slices.Equal(got, []string{rej.EventID}) || len(lr.State.Events) != 0 {
		t.Fatalf("rejected invite timeline %v state %v", got, types(lr.State.Events))
	}
}

func TestForgottenRoomsHidden(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	h.join(r.id, bob)
	h.member(r.id, bob, bob, leave)
	if err := h.st.Forget(h.ctx, r.id, bob); err != nil {
		t.Fatal(err)
	}
	var f Filter
	f.Room.IncludeLeave = true
	_, js := h.sync(Request{UserID: bob, Filter: f})
	if len(js.Rooms.Leave)+len(js.Rooms.Join) != 0 {
		t.Fatalf("forgotten room shown: %+v", js.Rooms)
	}
	// Rejoining un-forgets it.
	h.join(r.id, bob)
	if _, js := h.sync(Request{UserID: bob}); len(js.Rooms.Join) != 1 {
		t.Fatal("rejoined room missing")
	}
}

func TestRoomFilterAndTimelineFilter(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r1 := h.createRoom("!one:test", alice)
	r2 := h.createRoom("!two:test", alice)
	h.msg(r1.id, alice, "m")
	h.send(r1.id, alice, ev{typ: "m.room.message", content: map[string]any{"msgtype": "m.image", "body": "x", "url": "mxc://test/x"}})
	f, err := ParseFilter([]byte(`{"room":{"not_rooms":["!two:test"],"timeline":{"types":["m.room.mess*"],"contains_url":true},
		"state":{"types":["m.room.create"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, js := h.sync(Request{UserID: alice, Filter: f})
	if _, ok := js.Rooms.Join[r2.id]; ok || len(js.Rooms.Join) != 1 {
		t.Fatal("not_rooms ignored")
	}
	room := js.Rooms.Join[r1.id]
	if got := types(room.Timeline.Events); !slices.Equal(got, []string{"m.room.message"}) || room.Timeline.Limited {
		t.Fatalf("filtered timeline %v", got)
	}
	if got := types(room.State.Events); !slices.Equal(got, []string{"m.room.create"}) {
		t.Fatalf("filtered state %v", got)
	}
}

func TestLazyLoadRedundantMembers(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	r := h.createRoom("!room:test", alice)
	for _, u := range []string{bob, carol, dave} {
		h.join(r.id, u)
	}
	h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "Named"}})
	h.msg(r.id, alice, "one")
	h.msg(r.id, alice, "two")
	h.msg(r.id, carol, "hi")
	f := timelineFilter(3)
	f.Room.State.LazyLoadMembers = true
	members := func(js syncJSON) []string {
		var out []string
		for _, e := range js.Rooms.Join[r.id].State.Events {
			if e.Type == typeMember {
				out = append(out, *e.StateKey)
			}
		}
		slices.Sort(out)
		return out
	}
	syncLL := func(since string, f Filter) (string, []string) {
		t.Helper()
		resp, js := h.sync(Request{UserID: bob, DeviceID: "D", Since: since, Filter: f})
		return resp.NextBatch, members(js)
	}
	t0, got := syncLL("", f)
	if !slices.Equal(got, []string{alice, bob, carol}) {
		t.Fatalf("initial %v", got)
	}
	// Carol again: the device holds her member event.
	h.msg(r.id, carol, "again")
	t1, got := syncLL(t0, f)
	if len(got) != 0 {
		t.Fatalf("redundant members sent: %v", got)
	}
	// Dave is new to the device.
	h.msg(r.id, dave, "hello")
	t2, got := syncLL(t1, f)
	if !slices.Equal(got, []string{dave}) {
		t.Fatalf("new sender %v", got)
	}
	// The response to t1 may have been lost: a retry with t1 sends dave
	// again, as he was only pending.
	if _, got := syncLL(t1, f); !slices.Equal(got, []string{dave}) {
		t.Fatalf("retry %v", got)
	}
	h.msg(r.id, dave, "hello again")
	t3, got := syncLL(t2, f)
	if len(got) != 0 {
		t.Fatalf("confirmed dave sent again: %v", got)
	}
	// include_redundant_members sends them anyway.
	fr := f
	fr.Room.State.IncludeRedundantMembers = true
	h.msg(r.id, dave, "third")
	if _, got := syncLL(t3, fr); !slices.Equal(got, []string{dave}) {
		t.Fatalf("include_redundant_members %v", got)
	}
	// A change in the gap of a limited sync is always sent.
	h.send(r.id, carol, ev{typ: typeMember, stateKey: sk(carol), content: map[string]any{"membership": "join", "displayname": "Carol"}})
	for range 4 {
		h.msg(r.id, carol, "filler")
	}
	if _, got := syncLL(t3, f); !slices.Contains(got, carol) {
		t.Fatalf("gap member change missing: %v", got)
	}
	// An unknown since starts the device over.
	if _, got := syncLL(t0, f); !slices.Contains(got, carol) {
		t.Fatalf("unknown since: %v", got)
	}
	// A filtered timeline cannot vouch for what the client holds.
	ft := f
	ft.Room.Timeline.Types = []string{"m.room.message"}
	ta, _ := syncLL("", ft)
	h.msg(r.id, carol, "filtered")
	if _, got := syncLL(ta, ft); !slices.Equal(got, []string{carol}) {
		t.Fatalf("filtered timeline %v", got)
	}
}
