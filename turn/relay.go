package turn

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salonhq/salon/internal/udpbatch"
)

// relayConn is an allocation's relay socket as pion sees it. It counts
// traffic and applies the bandwidth caps on the packet path with atomics
// only, and its Close is where the server learns that an allocation ended.
//
// pion calls WriteTo for client-to-peer traffic (from the session's read
// loop) and ReadFrom for peer-to-client traffic (from the allocation's own
// goroutine).
type relayConn struct {
	net.PacketConn
	srv       *Server
	sess      *session
	user      string
	client    string
	transport transport
	limit     [directionCount]*rateLimiter // per allocation; nil: no cap
	limited   bool                         // any cap at all, this or total
	traffic   trafficCounters

	lifetime *time.Timer

	// batch reads the relay socket several datagrams per recvmmsg; while
	// it holds more, what pion writes to the client socket (out) is
	// gathered and leaves in one sendmmsg when the batch is used up.
	// Set when the relay socket is a *net.UDPConn (pion's generators make
	// one); otherwise reads go to the PacketConn. Touched only by the
	// single reader.
	batch *udpbatch.Reader
	out   *udpbatch.Conn
	held  bool

	// The channel fast path (channels.go): the relay socket written to
	// directly, the client's address as pion has it and as a key, and the
	// bindings. udp is nil when the fast path is off (a TCP or TLS client,
	// or a relay socket that is not a *net.UDPConn). fast counts the
	// packets it took (relayed, or dropped at a cap; traffic counts what
	// was relayed), before they leave; each counter is written by one
	// goroutine.
	udp        *net.UDPConn
	clientAddr net.Addr
	fastKey    netip.AddrPort
	chans      channels
	fast       [directionCount]atomic.Uint64

	readerSeen atomic.Bool
	readDone   chan struct{}
	readOnce   sync.Once
	closeOnce  sync.Once
}

func (s *Server) newRelayConn(pc net.PacketConn, ss *session, user string, client net.Addr) *relayConn {
	r := &relayConn{
		PacketConn: pc,
		srv:        s,
		sess:       ss,
		user:       user,
		client:     client.String(),
		transport:  ss.transport,
		readDone:   make(chan struct{}),
	}
	if u, ok := pc.(*net.UDPConn); ok {
		// pion reads a relay socket into a 1,600-byte buffer; the reader
		// keeps room for a ChannelData header before each datagram.
		r.batch, r.out = udpbatch.NewReaderHeadroom(u, relayReadBatch, 1600, channelHeader), ss.out
		if ap, ok := udpAddrPort(client); ok && ss.out != nil {
			r.udp, r.clientAddr, r.fastKey = u, client, ap
		}
	}
	for d := range directionCount {
		r.limit[d] = newRateLimiter(s.cfg.AllocationBytesPerSecond)
		r.limited = r.limited || r.limit[d] != nil || s.total[d] != nil
	}
	return r
}

// startLifetime arms the max_allocation_lifetime cap: closing the relay
// socket makes pion delete the allocation.
func (r *relayConn) startLifetime() {
	if d := r.srv.cfg.MaxAllocationLifetime; d > 0 {
		r.lifetime = time.AfterFunc(d, func() {
			r.srv.refuse(refusalLifetimeCap)
			r.sess.log.Info("TURN allocation reached its lifetime cap", "user", r.user, "client", r.client, "cap", d)
			r.close(false)
		})
	}
}

// admit applies the caps to an n-byte packet.
func (r *relayConn) admit(d direction, n int) bool {
	if !r.limited {
		return true
	}
	now := monotonicNow()
	if l := r.limit[d]; l != nil && !l.allow(now, n) {
		r.traffic.dropped[d][capAllocation].Add(1)
		return false
	}
	if l := r.srv.total[d]; l != nil && !l.allow(now, n) {
		r.traffic.dropped[d][capTotal].Add(1)
		return false
	}
	return true
}

func (r *relayConn) count(d direction, n int) {
	r.traffic.packets[d].Add(1)
	r.traffic.bytes[d].Add(uint64(n))
}

// ReadFrom returns the next packet from a peer that the caps let through
// and that the channel fast path did not send on itself.
func (r *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if !r.readerSeen.Load() {
		r.readerSeen.Store(true)
	}
	for {
		// b, from the batched reader: channelHeader bytes of headroom,
		// then the datagram; nil when the datagram is in p.
		var b []byte
		var n int
		var addr net.Addr
		var err error
		if r.batch != nil {
			b, addr, err = r.next()
			n = len(b) - channelHeader
		} else {
			n, addr, err = r.PacketConn.ReadFrom(p)
		}
		if err != nil {
			r.readOnce.Do(func() { close(r.readDone) })
			return 0, addr, err
		}
		if !r.admit(peerToClient, n) {
			continue
		}
		r.count(peerToClient, n)
		if b == nil {
			return n, addr, nil
		}
		if r.udp != nil && r.toClient(b, addr) {
			continue
		}
		return copy(p, b[channelHeader:]), addr, nil
	}
}

// next reads the relay socket in batches: b is channelHeader bytes of
// headroom, then the datagram.
func (r *relayConn) next() ([]byte, net.Addr, error) {
	if r.held && r.batch.Buffered() == 0 {
		// About to wait for the socket: send what was gathered.
		r.held = false
		r.out.Release()
	}
	b, addr, err := r.batch.Next()
	if err == nil && !r.held && r.out != nil && r.batch.Buffered() > 0 {
		r.out.Hold()
		r.held = true
	}
	return b, addr, err
}

// WriteTo sends a client's packet to a peer, or drops it over a cap
// (reporting success, as a router would: pion treats a short write as an
// error).
//
// A packet for one of the relay's own listen addresses is dropped the
// same way: a permission is for a peer's IP, any port, and the relay IP is
// a legitimate peer (the embedded SFU, other allocations) on other ports.
func (r *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if r.srv.ownPeer(addr) {
		r.srv.refuse(refusalPeerSelf)
		return len(p), nil
	}
	if !r.admit(clientToPeer, len(p)) {
		return len(p), nil
	}
	n, err := r.PacketConn.WriteTo(p, addr)
	if err == nil {
		r.count(clientToPeer, n)
	}
	return n, err
}

// Close ends the allocation's relay socket. pion calls it when the
// allocation is deleted or expires; the server calls it at the lifetime cap
// and on shutdown.
func (r *relayConn) Close() error { return r.close(true) }

// close is Close; the lifetime timer's own call does not touch the timer,
// which may still be being assigned.
func (r *relayConn) close(stopTimer bool) error {
	err := net.ErrClosed
	r.closeOnce.Do(func() {
		if stopTimer && r.lifetime != nil {
			r.lifetime.Stop()
		}
		err = r.PacketConn.Close()
		r.sess.forget(r)
		s := r.srv
		s.mu.Lock()
		if _, ok := s.relays[r]; ok {
			delete(s.relays, r)
			r.traffic.addTo(&s.retired)
		}
		s.releaseUser(r.user)
		s.mu.Unlock()
	})
	if err == net.ErrClosed {
		return nil // already closed: pion closes, then deletes and closes again
	}
	return err
}

// waitReader waits for pion's goroutine reading this relay to see the
// close, if one started reading.
func (r *relayConn) waitReader() {
	if r.readerSeen.Load() {
		<-r.readDone
	}
}

// relayReadBatch is how many datagrams one read of a relay socket takes.
const relayReadBatch = 16

// addrCache turns the source of a datagram into a net.Addr without
// allocating while it stays the same (one client per UDP read is common
// under load). (A relay socket's reads have udpbatch.Reader's own cache.) The cached
// *net.UDPAddr is never modified, so pion may keep it (it does, in an
// allocation's 5-tuple). Use from one goroutine only.
type addrCache struct {
	last     netip.AddrPort
	lastAddr *net.UDPAddr
}

func (c *addrCache) addr(ap netip.AddrPort) *net.UDPAddr {
	if c.lastAddr == nil || ap != c.last {
		c.last, c.lastAddr = ap, net.UDPAddrFromAddrPort(ap)
	}
	return c.lastAddr
}

// udpReader is the part of *net.UDPConn the caches need.
type udpReader interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
}
