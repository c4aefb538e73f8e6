// Package buffer keeps the recent packets of one incoming RTP stream, so
// that retransmission requests (NACKs) from any number of subscribers are
// answered from one copy per packet rather than one copy per subscriber.
package buffer

import "sync"

// MaxPacket is the largest RTP packet kept.
const MaxPacket = 1500

// Cache is a ring of the last Size packets of one stream, indexed by
// sequence number. Add is called by the stream's single reader; Get by any
// goroutine. Critical sections only copy bytes.
type Cache struct {
	mu    sync.RWMutex
	size  uint16
	data  []byte // size × MaxPacket, allocated on first Add
	lens  []uint16
	seqs  []uint16
	valid []bool
}

// New returns a cache for size packets; size must be a power of two.
func New(size uint16) *Cache {
	if size == 0 || size&(size-1) != 0 {
		panic("buffer: size must be a power of two")
	}
	return &Cache{size: size}
}

// Add copies pkt (a whole RTP packet) in under seq. Packets larger than
// MaxPacket are not kept.
func (c *Cache) Add(seq uint16, pkt []byte) {
	if len(pkt) > MaxPacket {
		return
	}
	c.mu.Lock()
	if c.data == nil {
		c.data = make([]byte, int(c.size)*MaxPacket)
		c.lens = make([]uint16, c.size)
		c.seqs = make([]uint16, c.size)
		c.valid = make([]bool, c.size)
	}
	i := seq & (c.size - 1)
	off := int(i) * MaxPacket
	copy(c.data[off:off+MaxPacket], pkt)
	c.lens[i], c.seqs[i], c.valid[i] = uint16(len(pkt)), seq, true
	c.mu.Unlock()
}

// Get copies the packet stored under seq into dst and returns its length,
// or 0 if it is no longer (or never was) in the cache.
func (c *Cache) Get(seq uint16, dst []byte) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.data == nil {
		return 0
	}
	i := seq & (c.size - 1)
	if !c.valid[i] || c.seqs[i] != seq {
		return 0
	}
	n := int(c.lens[i])
	off := int(i) * MaxPacket
	return copy(dst, c.data[off:off+n])
}
