package sync

import (
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"
)

// Notifier wakes the long-polling /sync requests of the users a write
// concerns, and keeps the two things the engine needs to read the stream
// safely: each room's newest position, and the highest position up to
// which every committed write has been reported.
//
// Why the second: the store hands out positions in commit order, but the
// writers call Notify after their transaction, so Notify calls can arrive
// out of order (a write at 7 may report before one at 6). A sync that used
// the store's head (7) before room A learnt of 6 would hand out next_batch
// 7 and lose 6 for good. So a sync reads up to Notifier's watermark only,
// the highest P such that every position <= P has been notified.
//
// Wake-ups are per user: a Notify touches only the listeners of the users
// it names, so one message wakes the members of one room, not every poll
// on the server. No goroutine is started; a waiting request blocks on a
// channel that the next relevant Notify closes.
type Notifier struct {
	log *slog.Logger

	// posMu guards the stream bookkeeping.
	posMu   gosync.RWMutex
	seeded  bool
	upTo    int64              // every position <= upTo has been notified
	pending map[int64]struct{} // notified positions above upTo
	// gapSince is when the engine first found the store ahead of upTo
	// with upTo unchanged; see Watermark.
	gapSince time.Time
	gapAt    int64
	rooms    map[string]int64 // room ID → newest notified position
	// reseed: a gap was skipped, room positions may be stale. Set under
	// posMu, and atomic so that every sync can look at it without
	// queueing for posMu (2,000 woken syncs did, 18 % of the lock waiting
	// at 2,000 members, issue 24).
	reseed atomic.Bool
	// watch holds, for the users whose memberships the engine caches, the
	// rooms the cache knows: a write naming the user in another room
	// (an invite, a join) makes the cache stale.
	watch map[string]*memWatch

	// listeners, sharded by user: every long-poll registers and
	// unregisters here, and a message into a room of 2,000 long-polling
	// members made them all do it at once (one mutex was 64 % of the lock
	// waiting on PostgreSQL, issue 24).
	shards [streamShards]streamShard
}

// streamShards is the number of listener shards.
const streamShards = 64

type streamShard struct {
	mu      gosync.Mutex
	streams map[string]*userStream
}

// shard returns the user's listener shard (FNV-1a of the user ID).
func (n *Notifier) shard(userID string) *streamShard {
	h := uint32(2166136261)
	for i := 0; i < len(userID); i++ {
		h ^= uint32(userID[i])
		h *= 16777619
	}
	return &n.shards[h%streamShards]
}

// userStream is the wake-up channel shared by the waiting requests of one
// user. A wake closes ch and removes the stream from the map; the next
// Listen makes a new one.
type userStream struct {
	ch   chan struct{}
	refs int
}

// gapGrace is how long the engine waits for a committed position to be
// notified before it gives up on it (a writer that never calls Notify is a
// bug; this keeps sync moving when there is one).
const gapGrace = 2 * time.Second

// maxPending bounds the positions remembered above a gap.
const maxPending = 100_000

// NewNotifier returns a Notifier. Until an Engine seeds it with the store's
// position (New does), it only wakes listeners.
func NewNotifier() *Notifier {
	return &Notifier{
		log:     slog.New(slog.DiscardHandler),
		pending: map[int64]struct{}{},
		rooms:   map[string]int64{},
		watch:   map[string]*memWatch{},
	}
}

// Notify reports one committed write at stream position pos and wakes the
// users it concerns. roomID is the room whose events or receipts changed,
// "" for anything else (account data, even per-room account data, is found
// per user without it). Call it after the transaction committed, once for
// every position the write used: for an event batch, once per event or
// NotifyRange once for the batch.
func (n *Notifier) Notify(pos int64, roomID string, userIDs []string) {
	n.NotifyRange(pos, pos, roomID, userIDs)
}

// NotifyRange is Notify for a write that used the positions first..last
// (an event batch: b.Events[0].Pos to the position PersistEvents
// returned).
func (n *Notifier) NotifyRange(first, last int64, roomID string, userIDs []string) {
	n.advance(first, last, roomID, userIDs, false)
	n.Wake(userIDs)
}

// NotifyAll reports a committed write at pos that concerns everyone and
// wakes every waiting request. It is for rare server-wide changes.
func (n *Notifier) NotifyAll(pos int64) {
	n.advance(pos, pos, "", nil, true)
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		for id, s := range sh.streams {
			close(s.ch)
			delete(sh.streams, id)
		}
		sh.mu.Unlock()
	}
}

// Wake wakes the users' waiting requests without reporting a position
// (typing notifications, which are not in the store).
func (n *Notifier) Wake(userIDs []string) {
	if len(userIDs) == 0 {
		return
	}
	for _, id := range userIDs {
		sh := n.shard(id)
		sh.mu.Lock()
		if s, ok := sh.streams[id]; ok {
			close(s.ch)
			delete(sh.streams, id)
		}
		sh.mu.Unlock()
	}
}

// advance records a notified write. The room position and the cache
// invalidation are made visible together with the watermark, under one
// lock: a sync that reads up to the write also sees what it changed.
func (n *Notifier) advance(first, last int64, roomID string, userIDs []string, all bool) {
	if last < first {
		first, last = last, first
	}
	n.posMu.Lock()
	defer n.posMu.Unlock()
	if roomID != "" && n.rooms[roomID] < last {
		n.rooms[roomID] = last
	}
	if all {
		for _, w := range n.watch {
			w.dirty = true
		}
	} else if roomID != "" && len(n.watch) > 0 {
		for _, u := range userIDs {
			if w := n.watch[u]; w != nil && !w.dirty && !w.rooms[roomID] {
				w.dirty = true
			}
		}
	}
	if !n.seeded {
		// Remember positions until seed learns the store's head, so a
		// write that commits while the engine starts is not taken for a
		// gap.
		for p := first; p <= last && len(n.pending) < maxPending; p++ {
			n.pending[p] = struct{}{}
		}
		return
	}
	if first <= n.upTo+1 {
		if last > n.upTo {
			n.upTo = last
		}
	} else {
		for p := first; p <= last; p++ {
			n.pending[p] = struct{}{}
		}
	}
	for {
		if _, ok := n.pending[n.upTo+1]; !ok {
			break
		}
		delete(n.pending, n.upTo+1)
		n.upTo++
	}
	if len(n.pending) > maxPending {
		n.skipGapLocked(last)
	}
}

// memWatch is one user's membership-cache registration.
type memWatch struct {
	rooms map[string]bool // nil until the memberships were read
	dirty bool
}

// watchUser starts a new watch for userID, replacing any earlier one. Call
// it before reading the user's memberships; until setRooms, any write that
// names the user marks the watch dirty.
func (n *Notifier) watchUser(userID string) *memWatch {
	w := &memWatch{}
	n.posMu.Lock()
	n.watch[userID] = w
	n.posMu.Unlock()
	return w
}

// setRooms records the rooms the memberships read for w contain.
func (n *Notifier) setRooms(w *memWatch, rooms map[string]bool) {
	n.posMu.Lock()
	w.rooms = rooms
	n.posMu.Unlock()
}

// watchValid reports whether w is still userID's watch and nothing made it
// dirty.
func (n *Notifier) watchValid(userID string, w *memWatch) bool {
	n.posMu.RLock()
	defer n.posMu.RUnlock()
	return n.watch[userID] == w && !w.dirty
}

// unwatch drops userID's watch if it is w.
func (n *Notifier) unwatch(userID string, w *memWatch) {
	n.posMu.Lock()
	if n.watch[userID] == w {
		delete(n.watch, userID)
	}
	n.posMu.Unlock()
}

// roomsAfter lists the rooms whose newest notified position is after the
// position given for them.
func (n *Notifier) roomsAfter(known map[string]int64) []string {
	var out []string
	n.posMu.RLock()
	for id, p := range known {
		if n.rooms[id] > p {
			out = append(out, id)
		}
	}
	n.posMu.RUnlock()
	return out
}

// seed starts the stream bookkeeping at the store's head, with the rooms'
// newest positions read after it.
func (n *Notifier) seed(head int64, rooms map[string]int64, log *slog.Logger) {
	n.posMu.Lock()
	defer n.posMu.Unlock()
	if log != nil {
		n.log = log
	}
	for id, p := range rooms {
		if n.rooms[id] < p {
			n.rooms[id] = p
		}
	}
	if head > n.upTo {
		n.upTo = head
	}
	n.seeded = true
	n.reseed.Store(false)
	for _, w := range n.watch {
		w.dirty = true
	}
	for p := range n.pending {
		if p <= n.upTo {
			delete(n.pending, p)
		}
	}
	for {
		if _, ok := n.pending[n.upTo+1]; !ok {
			break
		}
		delete(n.pending, n.upTo+1)
		n.upTo++
	}
}

// watermark is the position a sync may read up to, given the store's
// head: the highest position up to which every write was notified, never
// more than head. A gap that stays open longer than gapGrace is skipped
// (and logged): the writer that left it forgot to call Notify, and the
// rooms it touched are found again through a reseed (see needsReseed).
func (n *Notifier) watermark(head int64, now time.Time) int64 {
	n.posMu.RLock()
	upTo := n.upTo
	n.posMu.RUnlock()
	if upTo >= head {
		return head
	}
	n.posMu.Lock()
	defer n.posMu.Unlock()
	if n.upTo >= head {
		return head
	}
	if n.gapAt != n.upTo || n.gapSince.IsZero() {
		n.gapAt, n.gapSince = n.upTo, now
		return n.upTo
	}
	if now.Sub(n.gapSince) < gapGrace {
		return n.upTo
	}
	n.log.Error("sync: stream positions committed but never notified; skipping them",
		"from", n.upTo+1, "to", head)
	n.skipGapLocked(head)
	return head
}

func (n *Notifier) skipGapLocked(to int64) {
	if to > n.upTo {
		n.upTo = to
	}
	for p := range n.pending {
		if p <= n.upTo {
			delete(n.pending, p)
		}
	}
	for {
		if _, ok := n.pending[n.upTo+1]; !ok {
			break
		}
		delete(n.pending, n.upTo+1)
		n.upTo++
	}
	n.gapSince = time.Time{}
	n.reseed.Store(true)
	// The skipped writes may have changed memberships.
	for _, w := range n.watch {
		w.dirty = true
	}
}

// Forgotten tells the engine that userID forgot a room (store.Forget,
// which uses no stream position), so its cached memberships are read
// again.
func (n *Notifier) Forgotten(userID string) {
	n.posMu.Lock()
	if w := n.watch[userID]; w != nil {
		w.dirty = true
	}
	n.posMu.Unlock()
}

// needsReseed reports (and clears) that a gap was skipped, so room
// positions must be read from the store again.
func (n *Notifier) needsReseed() bool {
	// Loaded first: the common answer (no) writes nothing.
	return n.reseed.Load() && n.reseed.Swap(false)
}

// changedRooms returns the rooms of ids whose newest notified position is
// after since.
func (n *Notifier) changedRooms(ids []string, since int64) map[string]bool {
	out := make(map[string]bool)
	n.posMu.RLock()
	for _, id := range ids {
		if n.rooms[id] > since {
			out[id] = true
		}
	}
	n.posMu.RUnlock()
	return out
}

// Listener is one waiting request's registration. C is closed by the
// first Notify, NotifyRange, NotifyAll or Wake that names the user after
// Listen returned. Stop must be called when the request stops waiting.
type Listener struct {
	C <-chan struct{}

	n    *Notifier
	user string
	s    *userStream
}

// Listen registers a waiting request of userID. Register first, then read
// what to answer, then wait on C: a write that commits after the read
// closes C, one that committed before it is in what was read.
func (n *Notifier) Listen(userID string) *Listener {
	sh := n.shard(userID)
	sh.mu.Lock()
	s, ok := sh.streams[userID]
	if !ok {
		s = &userStream{ch: make(chan struct{})}
		if sh.streams == nil {
			sh.streams = map[string]*userStream{}
		}
		sh.streams[userID] = s
	}
	s.refs++
	sh.mu.Unlock()
	return &Listener{C: s.ch, n: n, user: userID, s: s}
}

// Stop unregisters the listener. It is safe to call more than once.
func (l *Listener) Stop() {
	if l.s == nil {
		return
	}
	sh := l.n.shard(l.user)
	sh.mu.Lock()
	l.s.refs--
	if l.s.refs == 0 && sh.streams[l.user] == l.s {
		delete(sh.streams, l.user)
	}
	sh.mu.Unlock()
	l.s = nil
}

// waiting is the number of users with a waiting request (for tests).
func (n *Notifier) waiting() int {
	total := 0
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		total += len(sh.streams)
		sh.mu.Unlock()
	}
	return total
}

// Waiting reports whether userID has a /sync waiting for something to
// happen (for tests that must write only once a long-poll waits).
func (n *Notifier) Waiting(userID string) bool {
	sh := n.shard(userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.streams[userID] != nil
}
