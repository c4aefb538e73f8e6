package sync

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// countingStore counts the membership list reads.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) UserMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	c.reads.Add(1)
	return c.Store.UserMemberships(ctx, userID)
}

// TestMembershipCache drives a user's membership through every change an
// incremental sync must notice while the membership list is cached.
func TestMembershipCache(t *testing.T) {
	cs := &countingStore{Store: openSQLite(t)}
	h := newHarness(t, cs)
	var rooms []string
	for i := range 12 {
		id := fmt.Sprintf("!r%02d:test", i)
		h.createRoom(id, alice)
		h.join(id, bob)
		rooms = append(rooms, id)
	}
	resp, js := h.sync(Request{UserID: bob}) // 12 rooms: built concurrently
	if len(js.Rooms.Join) != 12 {
		t.Fatalf("%d rooms", len(js.Rooms.Join))
	}
	since := resp.NextBatch
	step := func(name string, check func(js syncJSON) bool) {
		t.Helper()
		resp, js := h.sync(Request{UserID: bob, Since: since})
		if !check(js) {
			t.Fatalf("%s: %s", name, mustJSON(t, resp))
		}
		since = resp.NextBatch
	}
	// A message: the cached list is used.
	before := cs.reads.Load()
	h.msg(rooms[0], alice, "hi")
	step("message", func(js syncJSON) bool { return len(js.Rooms.Join[rooms[0]].Timeline.Events) == 1 })
	h.msg(rooms[0], alice, "again")
	step("message", func(js syncJSON) bool { return len(js.Rooms.Join[rooms[0]].Timeline.Events) == 1 })
	if n := cs.reads.Load() - before; n != 0 {
		t.Fatalf("membership list read %d times for messages", n)
	}
	// A kick in a known room.
	h.member(rooms[1], alice, bob, leave)
	step("kick", func(js syncJSON) bool { _, ok := js.Rooms.Leave[rooms[1]]; return ok })
	h.msg(rooms[1], alice, "after the kick")
	step("after kick", func(js syncJSON) bool { return len(js.Rooms.Join)+len(js.Rooms.Leave) == 0 })
	// A new invite, in a known room and in a new one.
	h.member(rooms[1], alice, bob, invite)
	step("re-invite", func(js syncJSON) bool { _, ok := js.Rooms.Invite[rooms[1]]; return ok })
	h.createRoom("!new:test", carol)
	h.member("!new:test", carol, bob, invite)
	step("invite elsewhere", func(js syncJSON) bool { _, ok := js.Rooms.Invite["!new:test"]; return ok })
	h.join("!new:test", bob)
	step("join", func(js syncJSON) bool { _, ok := js.Rooms.Join["!new:test"]; return ok })
	// Many rooms changing at once: the list is read again.
	for _, id := range rooms[2:] {
		h.msg(id, alice, "busy")
	}
	h.member(rooms[11], alice, bob, "ban")
	step("busy", func(js syncJSON) bool {
		_, banned := js.Rooms.Leave[rooms[11]]
		return banned && len(js.Rooms.Join) == 9
	})
	// Forgetting a left room.
	h.member(rooms[1], bob, bob, leave) // reject the re-invite
	step("reject", func(js syncJSON) bool { _, ok := js.Rooms.Leave[rooms[1]]; return ok })
	if err := h.st.Forget(h.ctx, rooms[1], bob); err != nil {
		t.Fatal(err)
	}
	h.n.Forgotten(bob)
	var f Filter
	f.Room.IncludeLeave = true
	_, js = h.sync(Request{UserID: bob, Filter: f})
	if _, ok := js.Rooms.Leave[rooms[1]]; ok {
		t.Fatal("forgotten room in initial sync")
	}
	if _, ok := js.Rooms.Leave[rooms[11]]; !ok {
		t.Fatal("banned room missing with include_leave")
	}
}

func TestMembershipCacheBound(t *testing.T) {
	h := newHarness(t, openSQLite(t))
	h.createRoom("!r:test", alice)
	for i := range 5 {
		u := fmt.Sprintf("@u%d:test", i)
		h.join("!r:test", u)
		h.sync(Request{UserID: u})
	}
	h.e.mc.mu.Lock()
	rows, users := h.e.mc.rows, len(h.e.mc.users)
	h.e.mc.mu.Unlock()
	if rows != 5 || users != 5 {
		t.Fatalf("cache rows %d users %d", rows, users)
	}
	// Reloading a user replaces the entry without double counting.
	h.sync(Request{UserID: "@u0:test"})
	h.e.mc.mu.Lock()
	rows = h.e.mc.rows
	h.e.mc.mu.Unlock()
	if rows != 5 {
		t.Fatalf("rows after reload %d", rows)
	}
}
