package udpbatch

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchReader is the part of ipv4.PacketConn / ipv6.PacketConn a Reader
// uses (a fake in tests).
type batchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

type ipv6Reader struct{ p *ipv6.PacketConn }

func (r ipv6Reader) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return r.p.ReadBatch(ms, flags)
}

// Reader reads a UDP socket several datagrams per recvmmsg(2) call and
// hands them out one at a time. Use it from one goroutine.
type Reader struct {
	br   batchReader
	msgs []ipv4.Message
	n, i int
	size int
	// the last source address, reused while it repeats so a caller that
	// keeps it (pion does) sees one value per peer
	last *net.UDPAddr
}

// NewReader reads c up to batch datagrams at a time, each of at most size
// bytes (a longer one is cut to size, as a read into a size-byte buffer
// would be).
func NewReader(c *net.UDPConn, batch, size int) *Reader {
	var br batchReader = ipv4.NewPacketConn(c)
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		br = ipv6Reader{ipv6.NewPacketConn(c)}
	}
	return newReader(br, batch, size)
}

func newReader(br batchReader, batch, size int) *Reader {
	r := &Reader{br: br, msgs: make([]ipv4.Message, batch), size: size}
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{make([]byte, size)}
	}
	return r
}

// Buffered is how many datagrams the next ReadFrom calls return without
// reading the socket.
func (r *Reader) Buffered() int { return r.n - r.i }

// ReadFrom copies the next datagram into p, reading the socket when none
// is buffered.
func (r *Reader) ReadFrom(p []byte) (int, net.Addr, error) {
	for r.i >= r.n {
		r.i, r.n = 0, 0
		n, err := r.br.ReadBatch(r.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		r.n = n
	}
	m := &r.msgs[r.i]
	r.i++
	n := copy(p, m.Buffers[0][:m.N])
	addr := m.Addr
	if ua, ok := addr.(*net.UDPAddr); ok {
		if r.last != nil && r.last.Port == ua.Port && r.last.IP.Equal(ua.IP) && r.last.Zone == ua.Zone {
			addr = r.last
		} else {
			r.last = ua
		}
	}
	m.Addr = nil
	return n, addr, nil
}
