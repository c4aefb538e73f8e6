package sqlstore

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

// memo is what the store remembers of its own recent writes, so that the
// reads every send causes (each woken /sync's timeline, unread counts,
// membership and receipt checks) are answered without SQL.
//
// It can be exact because every write to events, receipts and account
// data goes through streamTx: one writer, in position order, in this
// process (the stream position counter already lives here, so a second
// process writing the same database is not supported anyway). streamTx
// records a write here after its transaction committed and before the
// stream head moves past it, so a reader bounded by CurrentPos finds in
// memory everything SQL would give it.
//
// What it keeps:
//   - rings: per room, the newest events committed since the store opened
//     (at most ringPerRoom each, ringTotal in all). A ring knows every
//     event of its room after its floor, so RoomEvents, Event and
//     LastEvent are answered from it when the range asked lies there.
//   - hist: StateHistory answers, read through and kept current by the
//     writer.
//   - receipt: UserReceipt answers for unthreaded receipts, likewise.
//   - threadRcpt: UserThreadReceipts answers (a user's threaded receipts
//     of a type in a room), likewise.
//   - profiles: Profile answers, read through, dropped by every write to
//     a profile, and kept profileTTL at most: `salon user create` and
//     `deactivate` write accounts from another process while the server
//     runs (the same bound as the auth token cache).
//   - adPos, rcptPos: per user and per room, the position of the last
//     account data or receipt written since the store opened, so that
//     AccountDataSince and ReceiptsSince skip the query when nothing was
//     written after since.
//
// Read-through entries (hist, receipt) are stored by a reader only when no
// write of their kind happened while it was reading (the generation
// counters), so an answer read before a commit never lands after it.
type memo struct {
	mu sync.RWMutex

	// openPos is the stream head when the store opened: adPos and rcptPos
	// know every write after it.
	openPos int64
	adPos   map[string]int64 // user ID → position
	rcptPos map[string]int64 // room ID → position

	rings   map[string]*ring
	nRing   int               // events in all rings
	ringOf  map[string]string // event ID → room ID, for events in a ring
	histGen uint64
	hist    map[histKey][]store.EventRow
	nHist   int // rows in hist
	rcptGen uint64
	receipt map[receiptKey]receiptEntry
	// threadRcpt holds UserThreadReceipts answers; nThreadRcpt counts
	// their receipts.
	threadRcpt  map[receiptKey][]store.Receipt
	nThreadRcpt int
	profGen     uint64
	profiles    map[string]profileEntry
}

// ring is one room's newest events, oldest first: every event of the room
// with floor < Pos.
type ring struct {
	floor int64
	evs   []store.EventRow
}

type histKey struct{ room, typ, stateKey string }

type receiptKey struct{ room, user, typ string }

type receiptEntry struct {
	r     store.Receipt
	found bool
}

type profileEntry struct {
	p     store.Profile
	found bool
	at    time.Time // when it was read
}

// Bounds. An event row is about 1 KiB with its JSON, so the rings hold at
// most about 20 MiB. A room keeps its newest 256 events (up to a quarter
// more before the oldest are dropped together): a sync's default timeline
// (10), the unread count scan between two syncs, and in a room of
// thousands the gap of the syncs that fell behind — with 32, every sync
// more than 32 messages behind read its gap and its counts from SQL and
// fell further behind (issue 24).
const (
	ringPerRoom  = 256
	ringTotal    = 20_000
	histRows     = 50_000
	receiptCount = 100_000
	profileCount = 100_000
	profileTTL   = 10 * time.Second
)

func newMemo(openPos int64) *memo {
	return &memo{
		openPos:  openPos,
		adPos:    map[string]int64{},
		rcptPos:  map[string]int64{},
		rings:    map[string]*ring{},
		ringOf:   map[string]string{},
		hist:     map[histKey][]store.EventRow{},
		receipt:  map[receiptKey]receiptEntry{},
		profiles: map[string]profileEntry{},
	}
}

// persisted records a committed event batch.
func (m *memo) persisted(b *store.EventBatch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.Events {
		e := b.Events[i]
		if len(e.Unsigned) == 0 {
			e.Unsigned = nil // as the database gives it back
		}
		// An event stored before the timeline (store.PastTop) is below
		// every ring's floor: reads that reach it go to SQL.
		if e.Pos > 0 {
			r := m.rings[e.RoomID]
			if r == nil {
				// Nothing of the room after e.Pos-1 was committed before e.
				r = &ring{floor: e.Pos - 1}
				m.rings[e.RoomID] = r
			}
			r.evs = append(r.evs, e)
			m.ringOf[e.EventID] = e.RoomID
			m.nRing++
			if len(r.evs) > ringPerRoom+ringPerRoom/4 {
				drop := len(r.evs) - ringPerRoom
				for _, old := range r.evs[:drop] {
					delete(m.ringOf, old.EventID)
				}
				r.floor = r.evs[drop-1].Pos
				r.evs = append(r.evs[:0], r.evs[drop:]...)
				m.nRing -= drop
			}
		}
		if e.StateKey != nil {
			m.histGen++
			k := histKey{e.RoomID, e.Type, *e.StateKey}
			if h, ok := m.hist[k]; ok {
				if len(h) == 0 || h[len(h)-1].Pos < e.Pos {
					m.hist[k] = append(slices.Clip(h), e)
					m.nHist++
				} else if e.Pos < 0 { // an event of the past: read the history again
					delete(m.hist, k)
					m.nHist -= len(h)
				}
			}
		}
	}
	if m.nRing > ringTotal {
		// Drop whole rooms (in map order, which is arbitrary) down to
		// three quarters: their next event starts a new ring.
		for id, r := range m.rings {
			if m.nRing <= ringTotal*3/4 {
				break
			}
			m.dropRingLocked(id, r)
		}
	}
	if b.Backfill {
		// Events of the state a join brought may have moved (a new
		// position in the room's histories held); other rooms' stay.
		m.histGen++
		room := b.BatchRoom()
		for k, h := range m.hist {
			if k.room == room {
				delete(m.hist, k)
				m.nHist -= len(h)
			}
		}
	}
	for _, red := range b.Redactions {
		if room, ok := m.ringOf[red.EventID]; ok {
			r := m.rings[room]
			for i := range r.evs {
				if r.evs[i].EventID == red.EventID {
					r.evs[i].JSON = red.RedactedJSON
					r.evs[i].RedactedBy = red.By
				}
			}
		}
	}
	if len(b.Redactions) > 0 {
		// A redacted state event may be in any history: start again.
		m.histGen++
		clear(m.hist)
		m.nHist = 0
	}
	if m.nHist > histRows {
		clear(m.hist)
		m.nHist = 0
	}
}

func (m *memo) dropRingLocked(id string, r *ring) {
	for i := range r.evs {
		delete(m.ringOf, r.evs[i].EventID)
	}
	m.nRing -= len(r.evs)
	delete(m.rings, id)
}

// accountData records committed account data.
func (m *memo) accountData(userID string, pos int64) {
	m.mu.Lock()
	m.adPos[userID] = pos
	m.mu.Unlock()
}

// receiptPut records a committed receipt.
func (m *memo) receiptPut(r store.Receipt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rcptPos[r.RoomID] = r.Pos
	m.rcptGen++
	k := receiptKey{r.RoomID, r.UserID, r.Type}
	if r.ThreadID != "" {
		rs, ok := m.threadRcpt[k]
		if !ok {
			return
		}
		rs = slices.Clone(rs)
		if i := slices.IndexFunc(rs, func(x store.Receipt) bool { return x.ThreadID == r.ThreadID }); i >= 0 {
			rs[i] = r
		} else {
			rs = append(rs, r)
			m.nThreadRcpt++
		}
		m.threadRcpt[k] = rs
		return
	}
	if _, ok := m.receipt[k]; ok {
		m.receipt[k] = receiptEntry{r, true}
	}
}

// roomEvents answers RoomEvents from the room's ring when the ring holds
// the whole answer: ascending, when after is at or above the floor;
// descending, also when the ring has limit events in range (the newest
// limit events below before are then all in it).
func (m *memo) roomEvents(roomID string, after, before int64, limit int, desc bool) ([]store.EventRow, bool) {
	if limit <= 0 {
		return nil, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rings[roomID]
	if r == nil {
		return nil, false
	}
	lo := sort.Search(len(r.evs), func(i int) bool { return r.evs[i].Pos > after })
	hi := sort.Search(len(r.evs), func(i int) bool { return r.evs[i].Pos >= before })
	n := max(hi-lo, 0)
	if after < r.floor && (!desc || n < limit) {
		return nil, false
	}
	n = min(n, limit)
	if n == 0 {
		return nil, true
	}
	out := make([]store.EventRow, n)
	if desc {
		for i := range n {
			out[i] = r.evs[hi-1-i]
		}
	} else {
		copy(out, r.evs[lo:lo+n])
	}
	return out, true
}

// event answers Event for an event in a ring.
func (m *memo) event(eventID string) (store.EventRow, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	room, ok := m.ringOf[eventID]
	if !ok {
		return store.EventRow{}, false
	}
	r := m.rings[room]
	for i := range r.evs {
		if r.evs[i].EventID == eventID {
			return r.evs[i], true
		}
	}
	return store.EventRow{}, false
}

// lastEvent answers LastEvent for a room with a ring.
func (m *memo) lastEvent(roomID string) (store.EventRow, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.rings[roomID]; r != nil && len(r.evs) > 0 {
		return r.evs[len(r.evs)-1], true
	}
	return store.EventRow{}, false
}

// stateHistory answers StateHistory from memory; when it cannot, gen is
// what storeHistory needs.
func (m *memo) stateHistory(k histKey) (rows []store.EventRow, ok bool, gen uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h, ok := m.hist[k]
	if !ok {
		return nil, false, m.histGen
	}
	return slices.Clone(h), true, 0
}

// storeHistory keeps a StateHistory answer read from SQL, unless a state
// event was committed since gen.
func (m *memo) storeHistory(k histKey, rows []store.EventRow, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.histGen != gen {
		return
	}
	if _, ok := m.hist[k]; ok {
		return
	}
	if m.nHist+len(rows) > histRows {
		clear(m.hist)
		m.nHist = 0
	}
	if rows == nil {
		rows = []store.EventRow{}
	}
	m.hist[k] = slices.Clone(rows)
	m.nHist += max(len(rows), 1)
}

// userReceipt answers UserReceipt from memory; when it cannot, gen is what
// storeReceipt needs.
func (m *memo) userReceipt(k receiptKey) (e receiptEntry, ok bool, gen uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok = m.receipt[k]
	return e, ok, m.rcptGen
}

// storeReceipt keeps a UserReceipt answer read from SQL (found or not),
// unless a receipt was committed since gen.
func (m *memo) storeReceipt(k receiptKey, e receiptEntry, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rcptGen != gen {
		return
	}
	if len(m.receipt) >= receiptCount {
		clear(m.receipt)
	}
	m.receipt[k] = e
}

// userThreadReceipts answers UserThreadReceipts from memory; when it
// cannot, gen is what storeThreadReceipts needs. The slice is shared:
// callers must not change it.
func (m *memo) userThreadReceipts(k receiptKey) (rs []store.Receipt, ok bool, gen uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rs, ok = m.threadRcpt[k]
	return rs, ok, m.rcptGen
}

// storeThreadReceipts keeps a UserThreadReceipts answer read from SQL,
// unless a receipt was committed since gen.
func (m *memo) storeThreadReceipts(k receiptKey, rs []store.Receipt, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rcptGen != gen {
		return
	}
	if m.threadRcpt == nil || m.nThreadRcpt+len(rs) >= receiptCount {
		m.threadRcpt = map[receiptKey][]store.Receipt{}
		m.nThreadRcpt = 0
	}
	m.threadRcpt[k] = slices.Clone(rs)
	m.nThreadRcpt += max(len(rs), 1)
}

// accountDataAfter reports whether the user may have account data after
// since (false only when the memo knows there is none).
func (m *memo) accountDataAfter(userID string, since int64) bool {
	if since < m.openPos {
		return true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.adPos[userID] > since
}

// receiptsAfter keeps the rooms that may have receipts after since.
func (m *memo) receiptsAfter(roomIDs []string, since int64) []string {
	if since < m.openPos {
		return roomIDs
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, id := range roomIDs {
		if m.rcptPos[id] > since {
			out = append(out, id)
		}
	}
	return out
}

// profileChanged drops a user's profile after a write to it (committed or
// not: the next read goes to the database).
func (m *memo) profileChanged(userID string) {
	m.mu.Lock()
	m.profGen++
	delete(m.profiles, userID)
	m.mu.Unlock()
}

// profile answers Profile from memory; when it cannot, gen is what
// storeProfile needs.
func (m *memo) profile(userID string) (e profileEntry, ok bool, gen uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok = m.profiles[userID]
	if ok && time.Since(e.at) >= profileTTL {
		ok = false
	}
	return e, ok, m.profGen
}

// storeProfile keeps a Profile answer read from SQL, unless a profile was
// written since gen.
func (m *memo) storeProfile(userID string, e profileEntry, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.profGen != gen {
		return
	}
	if len(m.profiles) >= profileCount {
		clear(m.profiles)
	}
	m.profiles[userID] = e
}
