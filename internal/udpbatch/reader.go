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
	raw  [][]byte // each message's buffer, headroom bytes before its datagram
	n, i int
	head int
	// the last source address, reused while it repeats so a caller that
	// keeps it (pion does) sees one value per peer
	last *net.UDPAddr
}

// NewReader reads c up to batch datagrams at a time, each of at most size
// bytes (a longer one is cut to size, as a read into a size-byte buffer
// would be).
func NewReader(c *net.UDPConn, batch, size int) *Reader {
	return NewReaderHeadroom(c, batch, size, 0)
}

// NewReaderHeadroom is NewReader with headroom bytes kept free before each
// datagram, which Next hands to the caller to fill: a relay prepends its
// own header there and sends the datagram on without copying it.
func NewReaderHeadroom(c *net.UDPConn, batch, size, headroom int) *Reader {
	var br batchReader = ipv4.NewPacketConn(c)
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		br = ipv6Reader{ipv6.NewPacketConn(c)}
	}
	return newReader(br, batch, size, headroom)
}

func newReader(br batchReader, batch, size, headroom int) *Reader {
	r := &Reader{br: br, msgs: make([]ipv4.Message, batch), raw: make([][]byte, batch), head: headroom}
	for i := range r.msgs {
		r.raw[i] = make([]byte, headroom+size)
		r.msgs[i].Buffers = [][]byte{r.raw[i][headroom:]}
	}
	return r
}

// Buffered is how many datagrams the next ReadFrom calls return without
// reading the socket.
func (r *Reader) Buffered() int { return r.n - r.i }

// ReadFrom copies the next datagram into p, reading the socket when none
// is buffered.
func (r *Reader) ReadFrom(p []byte) (int, net.Addr, error) {
	b, addr, err := r.Next()
	if err != nil {
		return 0, nil, err
	}
	return copy(p, b[r.head:]), addr, nil
}

// Next returns the next datagram where it was read, reading the socket
// when none is buffered: b holds the reader's headroom (free for the
// caller to write) and then the datagram. b is the caller's until the
// next call of Next or ReadFrom.
func (r *Reader) Next() (b []byte, addr net.Addr, err error) {
	for r.i >= r.n {
		r.i, r.n = 0, 0
		n, err := r.br.ReadBatch(r.msgs, 0)
		if err != nil {
			return nil, nil, err
		}
		r.n = n
	}
	m := &r.msgs[r.i]
	b = r.raw[r.i][:r.head+m.N]
	r.i++
	addr = m.Addr
	if ua, ok := addr.(*net.UDPAddr); ok {
		if r.last != nil && r.last.Port == ua.Port && r.last.IP.Equal(ua.IP) && r.last.Zone == ua.Zone {
			addr = r.last
		} else {
			r.last = ua
		}
	}
	m.Addr = nil
	return b, addr, nil
}
