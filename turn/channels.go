package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"
)

// The channel fast path.
//
// Over UDP, once a client has bound a channel (RFC 8656 §12), its media
// flows as ChannelData both ways, and pion/turn v2 relays each such packet
// with work that costs more than the relaying itself: a debug log whose
// arguments are formatted (the client's address as a string) whether or
// not anything is logged, a 5-tuple fingerprint and a lookup under a lock
// per packet, and a freshly allocated copy of every packet a peer sends
// (its ChannelData encoder), whose garbage then keeps the collector busy.
//
// So the relay keeps its own copy of each UDP allocation's channel
// bindings, learned from what pion answers (a ChannelBind request read
// from a client, then pion's success response to it), and relays bound
// ChannelData itself: client to peer in the listener's read loop, peer to
// client in the allocation's read loop, each written in place (the peer's
// datagram is read behind room for the 4-byte ChannelData header). Caps
// and counters are the same calls as on pion's path. Everything else —
// requests, Send and Data indications, ChannelData for a channel the fast
// path does not know — goes to pion as before.
//
// The copy never outlives pion's state: a binding is forgotten
// channelMargin before pion's own timer (which started before its success
// response went out) ends it, and all of an allocation's bindings go when
// its relay socket closes, which is how pion deletes an allocation. A
// binding the fast path does not hold is pion's to relay or refuse.

// channelLifetime is how long a channel binding lasts unless refreshed
// (RFC 8656 §12: 10 minutes); pion is given the same (Server.chanLife,
// which tests shorten).
const channelLifetime = 10 * time.Minute

// channelMargin is how long before pion the fast path forgets a binding:
// 2 s, or an eighth of a (test's) shorter lifetime.
func channelMargin(life time.Duration) time.Duration { return min(2*time.Second, life/8) }

// maxFastChannels bounds the bindings per allocation the fast path keeps
// (a WebRTC client binds one per remote candidate it tries: a handful);
// pion relays any beyond.
const maxFastChannels = 32

// channelHeader is a ChannelData message's header: number, length.
const channelHeader = 4

// A channel is one binding as the fast path knows it.
type channel struct {
	number  uint16
	peer    netip.AddrPort // unmapped
	expires int64          // monotonicNow
}

// channels are an allocation's bindings: an immutable list, replaced
// whole on each change (changes are rare, lookups per packet).
type channels struct {
	mu   sync.Mutex // serialises changes
	list atomic.Pointer[[]channel]
}

func (cs *channels) byNumber(n uint16, now int64) (netip.AddrPort, bool) {
	if l := cs.list.Load(); l != nil {
		for _, c := range *l {
			if c.number == n {
				return c.peer, now < c.expires
			}
		}
	}
	return netip.AddrPort{}, false
}

func (cs *channels) byPeer(p netip.AddrPort, now int64) (uint16, bool) {
	if l := cs.list.Load(); l != nil {
		for _, c := range *l {
			if c.peer == p {
				return c.number, now < c.expires
			}
		}
	}
	return 0, false
}

// bind adds or refreshes a binding pion has just made, dropping expired
// ones. A binding that contradicts one held (pion refuses those, so it
// would mean the copy is out of step) empties the list: pion relays.
func (cs *channels) bind(n uint16, peer netip.AddrPort, now int64, life time.Duration) {
	expires := now + int64(life-channelMargin(life))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.list.Load()
	next := make([]channel, 0, 4)
	found := false
	if old != nil {
		for _, c := range *old {
			switch {
			case c.number == n && c.peer == peer:
				found = true
				c.expires = expires
			case c.number == n || c.peer == peer:
				cs.list.Store(nil)
				return
			case now >= c.expires:
				continue
			}
			next = append(next, c)
		}
	}
	if !found {
		if len(next) >= maxFastChannels {
			return
		}
		next = append(next, channel{number: n, peer: peer, expires: expires})
	}
	cs.list.Store(&next)
}

func (cs *channels) clear() {
	cs.mu.Lock()
	cs.list.Store(nil)
	cs.mu.Unlock()
}

// parseChannelData splits a ChannelData message (RFC 8656 §12.4) into its
// channel number and data, as pion's decoder does: a number in
// 0x4000–0x7FFF, and a length the datagram holds (UDP may pad after it).
func parseChannelData(b []byte) (uint16, []byte, bool) {
	if len(b) < channelHeader {
		return 0, nil, false
	}
	n := binary.BigEndian.Uint16(b)
	l := int(binary.BigEndian.Uint16(b[2:]))
	if n < 0x4000 || n > 0x7fff || l > len(b)-channelHeader {
		return 0, nil, false
	}
	return n, b[channelHeader : channelHeader+l], true
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	return unmapped(ua.AddrPort()), true
}

// pendingBind is the ChannelBind request pion is handling: pion answers
// each request on the read loop before reading the next, so its success
// response is for the request read last.
type pendingBind struct {
	txid   [stun.TransactionIDSize]byte
	client netip.AddrPort
	number uint16
	peer   netip.AddrPort
}

// noteChannelBind remembers a ChannelBind request (m, decoded) about to go
// to pion.
func (ss *session) noteChannelBind(m *stun.Message, from net.Addr) {
	client, ok := udpAddrPort(from)
	if !ok {
		return
	}
	v, err := m.Get(stun.AttrChannelNumber)
	if err != nil || len(v) != 4 {
		return
	}
	peer, ok := peerAddress(m)
	if !ok {
		return
	}
	ss.pending.Store(&pendingBind{txid: m.TransactionID, client: client, number: binary.BigEndian.Uint16(v), peer: unmapped(peer)})
}

var channelBindSuccess = stun.NewType(stun.MethodChannelBind, stun.ClassSuccessResponse).Value()

// sent sees what pion writes to a client: a ChannelBind success response
// installs the binding it confirms.
func (ss *session) sent(b []byte, to net.Addr) {
	if len(b) < stunHeaderSize || binary.BigEndian.Uint16(b) != channelBindSuccess ||
		binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return
	}
	p := ss.pending.Swap(nil)
	if p == nil || string(p.txid[:]) != string(b[8:stunHeaderSize]) {
		return
	}
	if client, ok := udpAddrPort(to); !ok || client != p.client {
		return
	}
	// (A binding to the relay's own addresses never gets here: screen
	// refuses it with 403 before pion sees it.)
	ss.fastMu.RLock()
	r := ss.fast[p.client]
	ss.fastMu.RUnlock()
	if r != nil {
		r.chans.bind(p.number, p.peer, monotonicNow(), ss.srv.chanLife)
	}
}

// fromClient relays a client's ChannelData on a bound channel to its peer
// and reports true, or leaves the packet to pion.
func (ss *session) fromClient(pkt []byte, from netip.AddrPort) bool {
	n, data, ok := parseChannelData(pkt)
	if !ok {
		return false
	}
	ss.fastMu.RLock()
	r := ss.fast[unmapped(from)]
	ss.fastMu.RUnlock()
	if r == nil {
		return false
	}
	peer, ok := r.chans.byNumber(n, monotonicNow())
	if !ok {
		return false
	}
	r.fast[clientToPeer].Add(1) // before the packet leaves: a test may see its echo next
	if r.admit(clientToPeer, len(data)) {
		if _, err := r.udp.WriteToUDPAddrPort(data, peer); err == nil {
			r.count(clientToPeer, len(data))
		}
	}
	return true
}

// toClient sends a peer's datagram (b: channelHeader bytes of headroom,
// then the datagram) to the client as ChannelData when the peer is on a
// bound channel, and reports whether it did.
func (r *relayConn) toClient(b []byte, from net.Addr) bool {
	peer, ok := udpAddrPort(from)
	if !ok {
		return false
	}
	n, ok := r.chans.byPeer(peer, monotonicNow())
	if !ok {
		return false
	}
	binary.BigEndian.PutUint16(b, n)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-channelHeader))
	r.fast[peerToClient].Add(1)
	_, _ = r.out.WriteTo(b, r.clientAddr)
	return true
}

// track makes r's client reachable by the fast path (UDP allocations on
// a relay socket the fast path can write to).
func (ss *session) track(r *relayConn) {
	if r.udp == nil {
		return
	}
	ss.fastMu.Lock()
	ss.fast[r.fastKey] = r
	ss.fastMu.Unlock()
}

// untrack ends r's fast path.
func (ss *session) untrack(r *relayConn) {
	r.chans.clear()
	if r.udp == nil {
		return
	}
	ss.fastMu.Lock()
	if ss.fast[r.fastKey] == r {
		delete(ss.fast, r.fastKey)
	}
	ss.fastMu.Unlock()
}
