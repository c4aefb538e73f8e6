package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// TestDerivedFollowsState: the member count, the users woken by a send and
// the power levels, which the room now keeps between state changes, are
// what the current state says after every kind of change — joins, invites,
// leaves, kicks, bans, a power-level change, its redaction — and after a
// failed write made the room reload its state.
func TestDerivedFollowsState(t *testing.T) {
	ctx := context.Background()
	base := newTestService(t, nil)
	fs := &failingState{Store: base.p.Store}
	p := base.p
	p.Store = fs
	var woken [][]string
	p.Notifier = notifyFunc(func(_, _ int64, _ string, users []string) { woken = append(woken, users) })
	s := New(p)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	// check compares the kept values with ones computed from the state
	// afresh, and the count with want.
	check := func(step string, want int) {
		t.Helper()
		n, err := s.MemberCount(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		joined, _ := s.Members(ctx, room, "join")
		if n != want || n != len(joined) {
			t.Errorf("%s: MemberCount %d, members %d, want %d", step, n, len(joined), want)
		}
		r, err := s.lockRoom(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		kept := r.interested()
		saved := r.derived.Load()
		r.derived.Store(nil)
		fresh := r.derive()
		r.derived.Store(saved)
		r.mu.Unlock()
		a, b := slices.Clone(kept), slices.Clone(fresh.interested)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("%s: woken %v, state says %v", step, a, b)
		}
		userPL, _, err := s.PowerLevels(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"@alice:hs", "@bob:hs", "@carol:hs"} {
			if userPL(u) != fresh.pl.UserLevel(u) {
				t.Errorf("%s: level of %s %d, state says %d", step, u, userPL(u), fresh.pl.UserLevel(u))
			}
		}
	}
	check("created", 1)
	for _, u := range []string{"@bob:hs", "@carol:hs", "@dan:hs"} {
		if _, err := s.Join(ctx, room, u, "", noProfile); err != nil {
			t.Fatal(err)
		}
	}
	check("three joined", 4)
	if err := s.Invite(ctx, room, "@alice:hs", "@erin:hs", "", noProfile); err != nil {
		t.Fatal(err)
	}
	check("invited (not counted, but woken)", 4)
	woken = nil
	if _, err := s.Send(ctx, room, "@bob:hs", msgEvent("hello")); err != nil {
		t.Fatal(err)
	}
	if len(woken) != 1 || len(woken[0]) != 5 || !slices.Contains(woken[0], "@erin:hs") {
		t.Errorf("a message woke %v, want the 4 joined and the invitee", woken)
	}
	if err := s.Leave(ctx, room, "@dan:hs", ""); err != nil {
		t.Fatal(err)
	}
	check("left", 3)
	if err := s.Kick(ctx, room, "@alice:hs", "@carol:hs", ""); err != nil {
		t.Fatal(err)
	}
	check("kicked", 2)
	if err := s.Ban(ctx, room, "@alice:hs", "@erin:hs", ""); err != nil {
		t.Fatal(err)
	}
	check("invitee banned", 2)

	// Power levels: bob becomes a moderator, then the change is redacted.
	plID, err := s.Send(ctx, room, "@alice:hs", stateEvent("m.room.power_levels", "",
		map[string]any{"users": map[string]int{"@alice:hs": 100, "@bob:hs": 50}, "notifications": map[string]int{"room": 100}}))
	if err != nil {
		t.Fatal(err)
	}
	if userPL, notif, _ := s.PowerLevels(ctx, room); userPL("@bob:hs") != 50 || notif("room") != 100 {
		t.Errorf("after the change: bob's level %d, @room's %d, want 50 and 100", userPL("@bob:hs"), notif("room"))
	}
	check("power levels changed", 2)
	if _, err := s.Send(ctx, room, "@alice:hs", Event{Type: "m.room.redaction", Redacts: plID, Content: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	check("power levels redacted", 2)
	// Redaction keeps users but not notifications: @room is back to 50.
	if _, notif, _ := s.PowerLevels(ctx, room); notif("room") != 50 {
		t.Errorf("@room's level after the redaction: %d, want 50", notif("room"))
	}

	// A failed write drops the state; the reload starts the values afresh.
	fs.failing.Store(true)
	if _, err := s.Join(ctx, room, "@frank:hs", "", noProfile); err == nil {
		t.Fatal("join during the outage succeeded")
	}
	fs.failing.Store(false)
	check("after a failed join", 2)
	if _, err := s.Join(ctx, room, "@frank:hs", "", noProfile); err != nil {
		t.Fatal(err)
	}
	check("after the join went through", 3)
}

type notifyFunc func(first, last int64, roomID string, users []string)

func (f notifyFunc) NotifyRange(first, last int64, roomID string, users []string) {
	f(first, last, roomID, users)
}

func (notifyFunc) Forgotten(string) {}

func msgEvent(body string) Event {
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	return Event{Type: "m.room.message", Content: c}
}

func stateEvent(typ, key string, content any) Event {
	c, err := json.Marshal(content)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return Event{Type: typ, StateKey: &key, Content: c}
}

// TestDerivedConcurrent: member counts, power levels and Readers asked for
// without the room's lock while members join and send (run with -race)
// end at what the state says.
func TestDerivedConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 8)
	for w := 0; w < 3; w++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if _, err := s.MemberCount(ctx, room); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.PowerLevels(ctx, room); err != nil {
					errs <- err
					return
				}
				if _, err := s.NewReader(ctx, room, "@alice:hs"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		u := fmt.Sprintf("@u%d:hs", i)
		if _, err := s.Join(ctx, room, u, "", noProfile); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(ctx, room, u, msgEvent("hi")); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for w := 0; w < 3; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.MemberCount(ctx, room); n != 21 {
		t.Fatalf("MemberCount %d, want 21", n)
	}
	rd, err := s.NewReader(ctx, room, "@u19:hs")
	if err != nil || rd.CurrentMembership() != "join" {
		t.Fatalf("the last joiner's Reader: %v, %v", rd, err)
	}
}

// TestMembersAtPosSameAsStateAtPos: the member events /messages sends
// with lazy-loaded members, now read from each sender's history, are
// those of the state at the position as StateAtPos bounds it, for every
// position, for a member, a later joiner under "joined" visibility (who
// must not see the members from before they joined) and someone who left.
func TestMembersAtPosSameAsStateAtPos(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"}, noProfile)
	if err != nil {
		t.Fatal(err)
	}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	join := func(u string) { _, err := s.Join(ctx, room, u, "", noProfile); step(err) }
	send := func(u string) { _, err := s.Send(ctx, room, u, msgEvent("x")); step(err) }
	join("@bob:hs")
	send("@bob:hs")
	join("@carol:hs")
	_, err = s.Send(ctx, room, "@alice:hs", stateEvent("m.room.history_visibility", "", map[string]string{"history_visibility": "joined"}))
	step(err)
	send("@carol:hs")
	_, err = s.Send(ctx, room, "@bob:hs", stateEvent("m.room.member", "@bob:hs", map[string]string{"membership": "join", "displayname": "Bob"}))
	step(err)
	step(s.Leave(ctx, room, "@carol:hs", ""))
	join("@dan:hs")
	send("@dan:hs")
	send("@bob:hs")
	step(s.Leave(ctx, room, "@bob:hs", ""))
	send("@alice:hs")
	who := []string{"@alice:hs", "@bob:hs", "@carol:hs", "@dan:hs", "@nobody:hs"}
	head := s.p.Store.CurrentPos()
	for _, reader := range []string{"@alice:hs", "@dan:hs", "@carol:hs"} {
		for pos := int64(0); pos <= head+1; pos++ {
			all, _, err1 := s.StateAtPos(ctx, reader, room, pos)
			got, _, err2 := s.MembersAtPos(ctx, reader, room, pos, who)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%s at %d: errors %v and %v", reader, pos, err1, err2)
			}
			var want, have []string
			for _, r := range all {
				if r.Type == "m.room.member" && slices.Contains(who, *r.StateKey) {
					want = append(want, r.EventID)
				}
			}
			for _, r := range got {
				have = append(have, r.EventID)
			}
			if !slices.Equal(have, want) {
				t.Errorf("%s at %d: members %v, state says %v", reader, pos, have, want)
			}
		}
	}
}

// TestSendWakesAfterUnlock: a send wakes the room's members once it has
// released the room, so the next send into the room does not wait for
// the notifier's work for thousands of members; the wake-up still comes
// before Send returns, naming every member.
func TestSendWakesAfterUnlock(t *testing.T) {
	ctx := context.Background()
	base := newTestService(t, nil)
	p := base.p
	var s *Service
	var room string
	var woken []string
	held := false
	p.Notifier = notifyFunc(func(_, _ int64, roomID string, users []string) {
		if roomID != room {
			return
		}
		s.mu.Lock()
		r := s.rooms[roomID]
		s.mu.Unlock()
		if r.mu.TryLock() {
			r.mu.Unlock()
		} else {
			held = true
		}
		woken = users
	})
	s = New(p)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	var err error
	if room, _, err = s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"}, noProfile); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, room, "@bob:hs", "", noProfile); err != nil {
		t.Fatal(err)
	}
	woken, held = nil, false
	if _, err := s.Send(ctx, room, "@bob:hs", msgEvent("hi")); err != nil {
		t.Fatal(err)
	}
	if held {
		t.Error("the send woke the members while holding the room's lock")
	}
	slices.Sort(woken)
	if !slices.Equal(woken, []string{"@alice:hs", "@bob:hs"}) {
		t.Errorf("woken %v, want alice and bob", woken)
	}
}
