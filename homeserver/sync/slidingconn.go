package sync

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/salonhq/salon/internal/mxerr"
)

// Sliding sync connections (MSC4186 "Connections"): per user, device and
// conn_id, what was sent on the connection, so a later request sends only
// what changed.
//
// Each response's pos names an immutable snapshot of that memory. The
// server cannot know a response arrived until the client comes back with
// its pos, so the snapshot the request started from stays usable too: a
// retry with the same pos (the response was lost) starts from it again.
// Coming back with a newer pos confirms it and drops the older ones. Any
// other pos, and every pos of a connection idle for longer than the TTL or
// from before a restart, is M_UNKNOWN_POS.
type slidingConns struct {
	mu        gosync.Mutex
	conns     map[connKey]*slidingConn
	ttl       time.Duration
	lastSweep time.Time
	run       string // random per process: a pos from another run is unknown
}

type connKey struct{ user, device, conn string }

type slidingConn struct {
	key      connKey
	id       string // random per connection
	seq      int64
	states   map[string]*connState // pos → snapshot (guarded by slidingConns.mu)
	lastUsed time.Time
}

// connState is what a connection has been sent, as of one pos. It is never
// changed once stored; a request copies what it changes.
type connState struct {
	tok   StreamToken
	rooms map[string]*sentRoom
	subs  map[string]RoomConfig // sticky room subscriptions
	ext   extState
	// counts are the list counts last sent, to answer at once when a
	// list's count changes.
	counts map[string]int
	// dm is the user's m.direct as of tok (nil: not read yet).
	dm map[string]bool
	// tags are the user's room tags as of tok (nil: no list has filtered
	// on tags yet).
	tags map[string][]string
	// keys is the device's key counts as the e2ee extension last sent
	// them.
	keys string
}

// sentRoom is what the connection was sent of one room.
type sentRoom struct {
	pos        int64       // the room is up to date to this stream position
	cfg        *sentConfig // the room config it was last built with
	membership string
	memberPos  int64 // position of the membership event it was sent at
	isDM       bool
	// notif and highlight are the unread counts sent (-1: none).
	notif, highlight int
	// rcptPos and adPos: the receipts and room account data extensions
	// sent the room's data up to these positions (0: never); typing: the
	// room was in the typing extension's scope.
	rcptPos, adPos int64
	typing         bool
	// members are the users whose member events the client holds (lazy
	// loading), sorted; nil when the config does not lazy-load.
	members []string
}

// extState is which extensions are on (extensions are sticky).
type extState struct {
	toDevice, e2ee, accountData, receipts, typing, presence bool
}

const (
	// DefaultSlidingConnTTL is how long a connection lives without a
	// request.
	DefaultSlidingConnTTL = 30 * time.Minute
	// maxConnsPerDevice bounds one device's connections (MSC4186 security
	// considerations); the least recently used goes first.
	maxConnsPerDevice = 10
	maxSlidingConns   = 100_000
	// maxStatesPerConn bounds the snapshots kept while a client races
	// requests with the same pos.
	maxStatesPerConn = 4
)

func newSlidingConns() slidingConns {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return slidingConns{conns: map[connKey]*slidingConn{}, ttl: DefaultSlidingConnTTL, run: base64.RawURLEncoding.EncodeToString(b)}
}

// SetSlidingConnTTL sets how long an idle connection is kept (0: the
// default). Call it before serving.
func (e *Engine) SetSlidingConnTTL(d time.Duration) {
	if d <= 0 {
		d = DefaultSlidingConnTTL
	}
	e.sliding.mu.Lock()
	e.sliding.ttl = d
	e.sliding.mu.Unlock()
}

func unknownPos() error {
	return mxerr.New(mxerr.UnknownPos, "Unknown or expired pos: start a new connection")
}

// begin finds the request's connection and the snapshot it continues
// from; without a pos it starts the connection over.
func (c *slidingConns) begin(e *Engine, req *SlidingRequest) (*slidingConn, *connState, error) {
	now := e.p.Now()
	key := connKey{req.UserID, req.DeviceID, req.ConnID}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	if req.Pos == "" {
		conn := &slidingConn{key: key, id: c.run + "." + randomID(), states: map[string]*connState{}, lastUsed: now}
		c.addLocked(conn)
		return conn, &connState{}, nil
	}
	conn := c.conns[key]
	if conn == nil || now.Sub(conn.lastUsed) > c.ttl {
		return nil, nil, unknownPos()
	}
	st := conn.states[req.Pos]
	if st == nil {
		return nil, nil, unknownPos()
	}
	// The client holds this pos: every other snapshot is obsolete.
	for p := range conn.states {
		if p != req.Pos {
			delete(conn.states, p)
		}
	}
	conn.lastUsed = now
	return conn, st, nil
}

// commit stores the snapshot a response leads to and returns its pos.
func (c *slidingConns) commit(conn *slidingConn, st *connState) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn.seq++
	pos := conn.id + "." + strconv.FormatInt(conn.seq, 10)
	if len(conn.states) >= maxStatesPerConn {
		// Keep the newest few: drop the lowest sequence numbers.
		for len(conn.states) >= maxStatesPerConn {
			oldest, oldSeq := "", int64(-1)
			for p := range conn.states {
				s := posSeq(p)
				if oldSeq < 0 || s < oldSeq {
					oldest, oldSeq = p, s
				}
			}
			delete(conn.states, oldest)
		}
	}
	// If the connection was replaced meanwhile (a request without pos),
	// the pos is unknown to the next request: the client starts over.
	conn.states[pos] = st
	return pos
}

func posSeq(p string) int64 {
	i := strings.LastIndexByte(p, '.')
	n, _ := strconv.ParseInt(p[i+1:], 10, 64)
	return n
}

func (c *slidingConns) addLocked(conn *slidingConn) {
	c.conns[conn.key] = conn
	var oldest *slidingConn
	n := 0
	for k, o := range c.conns {
		if k.user == conn.key.user && k.device == conn.key.device {
			n++
			if oldest == nil || o.lastUsed.Before(oldest.lastUsed) {
				oldest = o
			}
		}
	}
	if n > maxConnsPerDevice && oldest != nil {
		delete(c.conns, oldest.key)
	}
	for k := range c.conns {
		if len(c.conns) <= maxSlidingConns {
			break
		}
		if k != conn.key {
			delete(c.conns, k)
		}
	}
}

// sweepLocked drops idle connections, at most once a minute.
func (c *slidingConns) sweepLocked(now time.Time) {
	if now.Sub(c.lastSweep) < time.Minute && now.After(c.lastSweep) {
		return
	}
	c.lastSweep = now
	for k, conn := range c.conns {
		if now.Sub(conn.lastUsed) > c.ttl {
			delete(c.conns, k)
		}
	}
}

func randomID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// next starts the snapshot a response leads to from base.
func (st *connState) next() *connState {
	n := &connState{tok: st.tok, ext: st.ext, dm: st.dm, keys: st.keys, tags: st.tags}
	n.rooms = make(map[string]*sentRoom, len(st.rooms))
	maps.Copy(n.rooms, st.rooms)
	n.subs = make(map[string]RoomConfig, len(st.subs))
	maps.Copy(n.subs, st.subs)
	return n
}

// sameLists reports whether the list counts are those base sent.
func (st *connState) sameLists(base *connState) bool {
	if len(st.counts) != len(base.counts) {
		return false
	}
	for k, v := range st.counts {
		if b, ok := base.counts[k]; !ok || b != v {
			return false
		}
	}
	return true
}
