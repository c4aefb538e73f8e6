package sync

import (
	"context"
	"fmt"
	gosync "sync"

	"github.com/salonhq/salon/homeserver/store"
)

// memCache keeps users' membership lists between their syncs: reading a
// user's 200 memberships is most of the cost of an incremental sync.
//
// An entry stays valid while the Notifier has seen no write naming the
// user in a room the entry does not know (an invite or a join elsewhere
// makes the watch dirty), and, for the rooms it knows, the user's own
// membership events show no change: the rooms that changed since they were
// last checked have the user's membership history read again, which is one
// small query for the one room a message arrived in. Initial syncs always
// read the store (and refresh the entry).
type memCache struct {
	mu    gosync.Mutex
	users map[string]*memEntry
	rows  int
}

type memEntry struct {
	w    *memWatch
	mems []store.Membership // read-only once stored
	pos  map[string]int64   // room → the cached membership's event position
	// known is, per room, the stream head up to which the cached
	// membership was checked; guarded by memCache.mu.
	known map[string]int64
}

const (
	// memCacheRows bounds the memberships kept (about 150 bytes each).
	memCacheRows = 200_000
	// maxRecheck is how many changed rooms are checked one by one before
	// reading the whole list again is cheaper.
	maxRecheck = 8
)

// userMemberships returns the user's memberships, from the cache when
// cached is true and the entry is still valid.
func (e *Engine) userMemberships(ctx context.Context, userID string, cached bool) ([]store.Membership, error) {
	if cached {
		mems, ok, err := e.cachedMemberships(ctx, userID)
		if err != nil || ok {
			return mems, err
		}
	}
	return e.loadMemberships(ctx, userID)
}

func (e *Engine) cachedMemberships(ctx context.Context, userID string) ([]store.Membership, bool, error) {
	n := e.p.Notifier
	e.mc.mu.Lock()
	ent := e.mc.users[userID]
	var check []string
	if ent != nil {
		check = n.roomsAfter(ent.known)
	}
	e.mc.mu.Unlock()
	if ent == nil || !n.watchValid(userID, ent.w) || len(check) > maxRecheck {
		return nil, false, nil
	}
	for _, room := range check {
		head := e.p.Store.CurrentPos()
		h, err := e.p.Store.StateHistory(ctx, room, typeMember, userID)
		if err != nil {
			return nil, false, fmt.Errorf("sync: membership history: %w", err)
		}
		if len(h) == 0 || h[len(h)-1].Pos != ent.pos[room] {
			return nil, false, nil
		}
		e.mc.mu.Lock()
		if ent.known[room] < head {
			ent.known[room] = head
		}
		e.mc.mu.Unlock()
	}
	return ent.mems, true, nil
}

func (e *Engine) loadMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	n := e.p.Notifier
	// Watch first, then read: a write naming the user that commits during
	// the read makes the entry dirty rather than lost.
	w := n.watchUser(userID)
	head := e.p.Store.CurrentPos()
	mems, err := e.p.Store.UserMemberships(ctx, userID)
	if err != nil {
		n.unwatch(userID, w)
		return nil, fmt.Errorf("sync: memberships: %w", err)
	}
	ent := &memEntry{
		w:     w,
		mems:  mems,
		pos:   make(map[string]int64, len(mems)),
		known: make(map[string]int64, len(mems)),
	}
	rooms := make(map[string]bool, len(mems))
	for _, m := range mems {
		ent.pos[m.RoomID] = m.Pos
		ent.known[m.RoomID] = head
		rooms[m.RoomID] = true
	}
	n.setRooms(w, rooms)

	e.mc.mu.Lock()
	defer e.mc.mu.Unlock()
	if e.mc.users == nil {
		e.mc.users = map[string]*memEntry{}
	}
	if old := e.mc.users[userID]; old != nil {
		e.mc.rows -= len(old.mems)
		delete(e.mc.users, userID)
	}
	for u, old := range e.mc.users {
		if e.mc.rows+len(mems) <= memCacheRows {
			break
		}
		delete(e.mc.users, u)
		e.mc.rows -= len(old.mems)
		n.unwatch(u, old.w)
	}
	e.mc.users[userID] = ent
	e.mc.rows += len(mems)
	return mems, nil
}
