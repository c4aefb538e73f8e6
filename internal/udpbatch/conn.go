// Package udpbatch gathers the datagrams a fan-out writes to one UDP socket
// and sends them with one sendmmsg(2) call (golang.org/x/net's WriteBatch)
// instead of one sendto(2) each.
//
// The SFU writes every subscriber's copy of a packet through pion's stack
// (interceptors, SRTP, ICE) to the single socket its UDP mux owns; pion
// offers no batch write, so the gathering happens at the socket: between
// Hold and Release the socket queues what is written to it, and Release
// sends the queue. Writes made while nobody holds the socket leave at once,
// so a writer that never calls Hold (STUN, DTLS, RTCP) is never delayed by
// more than the fan-out in progress. Datagrams leave in the order they were
// written, so each stream's order is kept.
//
// Reader is the receiving half: several datagrams per recvmmsg(2). The TURN
// relay reads a relay socket with it and holds the client socket while a
// batch lasts, so a burst from a peer goes back out in one sendmmsg. A Conn
// can read through one too (ReadBatches), and hand each datagram to a claim
// function before its reader sees it (SetClaim): the SFU takes its
// subscribers' RTCP there, on the socket's reading goroutine.
//
// UDP GSO (UDP_SEGMENT) is not used: it sends one buffer as equal segments
// to one destination, and a fan-out's copies each go to a different one.
//
// The package owns no policy and knows nothing of RTP or TURN.
package udpbatch

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MaxBatch is the most datagrams one sendmmsg call carries; a fuller queue
// is sent at once.
const MaxBatch = 64

// maxDatagram bounds the copy kept of a queued datagram (larger ones are
// sent alone, unqueued).
const maxDatagram = 1500

// batchWriter is the part of ipv4.PacketConn / ipv6.PacketConn used here
// (a fake in tests).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Conn is a net.PacketConn whose writes can be gathered. Reads pass
// through to the socket, or through a Reader after ReadBatches, and go
// past the claim function first (SetClaim).
type Conn struct {
	net.PacketConn
	bw  batchWriter
	udp *net.UDPConn // nil for a fake in tests

	// rd reads several datagrams per call once ReadBatches has set it;
	// ReadFrom is then for one goroutine at a time (pion's mux has one).
	rd    *Reader
	claim atomic.Pointer[Claim]

	holds atomic.Int32

	mu     sync.Mutex // guards queue, free, closed
	queue  []ipv4.Message
	free   [][][]byte // sent messages' Buffers, each one buffer, kept for reuse
	closed bool

	// sendMu is held across a send so batches leave in queue order.
	sendMu sync.Mutex
	spare  []ipv4.Message
	// one carries a write sent at once (guarded by sendMu): the caller's
	// buffer, neither copied nor queued.
	one []ipv4.Message

	// Batches and Datagrams count sendmmsg calls and the datagrams they
	// carried; Errors counts datagrams the kernel refused (skipped, the
	// rest of their batch still sent).
	Batches, Datagrams, Errors atomic.Uint64
}

// New wraps c. A socket other than a *net.UDPConn is returned as it is
// (batching needs the real socket); ok reports whether it was wrapped.
func New(c net.PacketConn) (net.PacketConn, bool) {
	u, ok := c.(*net.UDPConn)
	if !ok {
		return c, false
	}
	var bw batchWriter = ipv4.NewPacketConn(u)
	if a, ok := u.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		bw = ipv6Writer{ipv6.NewPacketConn(u)}
	}
	conn := newConn(c, bw)
	conn.udp = u
	return conn, true
}

// Claim is offered each datagram ReadFrom reads, before ReadFrom returns
// it; a datagram it takes (returns true for) is not returned. b is the
// claim's only for the call. It runs on the reading goroutine, so it must
// not block.
type Claim func(b []byte, from *net.UDPAddr) bool

// SetClaim installs f (nil removes it).
func (c *Conn) SetClaim(f Claim) {
	if f == nil {
		c.claim.Store(nil)
		return
	}
	c.claim.Store(&f)
}

// ReadBatches makes ReadFrom read up to batch datagrams of at most size
// bytes per recvmmsg(2) call, and hand them out one at a time. Call it
// before the first read; it does nothing on a Conn New did not wrap.
func (c *Conn) ReadBatches(batch, size int) {
	if c.udp != nil {
		c.rd = NewReader(c.udp, batch, size)
	}
}

// ReadFrom reads the next datagram no claim takes.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		var (
			b    []byte
			addr net.Addr
			err  error
		)
		if c.rd != nil {
			b, addr, err = c.rd.Next()
		} else {
			var n int
			n, addr, err = c.PacketConn.ReadFrom(p)
			b = p[:n]
		}
		if err != nil {
			return 0, addr, err
		}
		if f := c.claim.Load(); f != nil {
			if ua, ok := addr.(*net.UDPAddr); ok && (*f)(b, ua) {
				continue
			}
		}
		n := len(b) // unbatched, b is p's start
		if c.rd != nil {
			n = copy(p, b)
		}
		return n, addr, nil
	}
}

func newConn(c net.PacketConn, bw batchWriter) *Conn {
	return &Conn{PacketConn: c, bw: bw, queue: make([]ipv4.Message, 0, MaxBatch), spare: make([]ipv4.Message, 0, MaxBatch),
		one: []ipv4.Message{{Buffers: make([][]byte, 1)}}}
}

// ipv6Writer adapts ipv6.PacketConn (whose Message is the same type).
type ipv6Writer struct{ p *ipv6.PacketConn }

func (w ipv6Writer) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return w.p.WriteBatch(ms, flags)
}

// Hold starts gathering: writes queue until the matching Release. Holds
// nest and may overlap across goroutines.
func (c *Conn) Hold() { c.holds.Add(1) }

// Release ends one Hold and sends what is queued.
func (c *Conn) Release() {
	c.holds.Add(-1)
	c.Flush()
}

// WriteTo sends b to addr at once when no fan-out holds the socket and
// nothing is queued; otherwise it queues b (copied: the caller may reuse
// b) and, unless a fan-out holds the socket, sends the queue. The error of a queued
// datagram is not the caller's to see (UDP promises nothing more); a
// closed socket is.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if len(b) > maxDatagram {
		if err := c.Flush(); err != nil {
			return 0, err
		}
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		return c.PacketConn.WriteTo(b, addr)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if c.holds.Load() == 0 && len(c.queue) == 0 {
		// Nothing to gather with (STUN, DTLS, RTCP, a track's only
		// subscriber): send it now. A flush of earlier datagrams in
		// progress holds sendMu, so they still leave first.
		c.mu.Unlock()
		return c.writeNow(b, addr)
	}
	var bufs [][]byte
	if n := len(c.free); n > 0 {
		bufs, c.free = c.free[n-1], c.free[:n-1]
		bufs[0] = bufs[0][:len(b)]
	} else {
		bufs = [][]byte{make([]byte, len(b), maxDatagram)}
	}
	copy(bufs[0], b)
	c.queue = append(c.queue, ipv4.Message{Buffers: bufs, Addr: addr})
	full := len(c.queue) >= MaxBatch
	c.mu.Unlock()
	if full || c.holds.Load() == 0 {
		if err := c.Flush(); errors.Is(err, net.ErrClosed) {
			return 0, err
		}
	}
	return len(b), nil
}

// writeNow sends b alone, with the same accounting as a batch: a datagram
// the kernel refuses is counted and not the caller's error; a closed
// socket is.
func (c *Conn) writeNow(b []byte, addr net.Addr) (int, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	m := &c.one[0]
	m.Buffers[0], m.Addr = b, addr
	n, err := c.bw.WriteBatch(c.one, 0)
	m.Buffers[0], m.Addr = nil, nil
	switch {
	case n == 1:
		c.Batches.Add(1)
		c.Datagrams.Add(1)
	case isClosed(err):
		c.Errors.Add(1)
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		return 0, net.ErrClosed
	default:
		c.Errors.Add(1)
	}
	return len(b), nil
}

// Flush sends everything queued, in order. A datagram the kernel refuses
// (an unreachable address, say) is skipped and counted; the batch goes on.
// A closed socket drops the queue and returns net.ErrClosed.
func (c *Conn) Flush() error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	if len(c.queue) == 0 {
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return net.ErrClosed
		}
		return nil
	}
	batch := c.queue
	c.queue = c.spare[:0]
	c.mu.Unlock()

	var err error
	for off := 0; off < len(batch); {
		n, werr := c.bw.WriteBatch(batch[off:], 0)
		if n > 0 {
			c.Batches.Add(1)
			c.Datagrams.Add(uint64(n))
			off += n
			continue
		}
		if werr == nil {
			// Nothing sent and no reason given: do not spin.
			werr = errors.New("udpbatch: sendmmsg sent nothing")
		}
		if isClosed(werr) {
			err = net.ErrClosed
			c.Errors.Add(uint64(len(batch) - off))
			break
		}
		// sendmmsg reports the first datagram's failure only when
		// nothing was sent: skip that one and send the rest.
		c.Errors.Add(1)
		off++
	}

	c.mu.Lock()
	for i := range batch {
		c.free = append(c.free, batch[i].Buffers)
		batch[i] = ipv4.Message{}
	}
	c.spare = batch[:0]
	if err != nil {
		c.closed = true
	}
	c.mu.Unlock()
	return err
}

// Close sends nothing more: what is queued is dropped, later writes fail.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.PacketConn.Close()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}
