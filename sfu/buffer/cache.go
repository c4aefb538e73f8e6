// Package buffer keeps the recent packets of one incoming RTP stream, so
// that retransmission requests (NACKs) from any number of subscribers are
// answered from one copy per packet rather than one copy per subscriber.
package buffer

import (
	"math"
	"sync"
	"time"
)

// MaxPacket is the largest RTP packet kept.
const MaxPacket = 1500

// minSlots is the ring a cache starts with.
const minSlots = 16

// strideStep rounds the bytes kept per slot up to a multiple of itself.
const strideStep = 64

// Cache is a ring of the recent packets of one stream, indexed by sequence
// number. It holds every packet of the last Keep (and at least the last
// few), up to Max packets: the ring starts small and doubles when a packet
// would overwrite one younger than Keep, so a 30 packet/s thumbnail layer
// holds 64 packets where a 250 packet/s camera layer holds 512, and a
// keyframe's burst grows the ring to hold all of it. Each slot is as wide
// as the largest packet seen so far (rounded up to 64 bytes), not as
// MaxPacket: browsers send video packets of at most about 1200 bytes.
// Memory grows with a stream, never shrinks back; a stream lives as long
// as its publication.
//
// Add is called by the stream's single reader; Get by any goroutine.
// Critical sections only copy bytes, except the rare growth, which copies
// the ring once.
type Cache struct {
	max  uint16
	keep int64 // nanoseconds

	mu     sync.RWMutex
	size   uint16 // slots, a power of two
	stride int    // bytes per slot
	data   []byte // size × stride, allocated on first Add
	lens   []uint16
	seqs   []uint16
	at     []int64 // arrival (unix nanoseconds) of each slot's packet; 0: empty
}

// New returns a cache keeping the packets of the last keep, at most max
// of them; max must be a power of two. A keep of 0 or less keeps the last
// max packets, whatever their age.
func New(max uint16, keep time.Duration) *Cache {
	if max == 0 || max&(max-1) != 0 {
		panic("buffer: max must be a power of two")
	}
	if keep <= 0 {
		keep = math.MaxInt64
	}
	return &Cache{max: max, keep: int64(keep)}
}

// Add copies pkt (a whole RTP packet, arrived at now in unix nanoseconds)
// in under seq. Packets larger than MaxPacket are not kept.
func (c *Cache) Add(seq uint16, pkt []byte, now int64) {
	if len(pkt) > MaxPacket {
		return
	}
	c.mu.Lock()
	if c.data == nil {
		c.resize(min(minSlots, c.max), roundStride(len(pkt)))
	} else if len(pkt) > c.stride {
		c.resize(c.size, roundStride(len(pkt)))
	}
	i := seq & (c.size - 1)
	for c.size < c.max && c.at[i] != 0 && c.seqs[i] != seq && now-c.at[i] < c.keep {
		c.resize(c.size*2, c.stride)
		i = seq & (c.size - 1)
	}
	off := int(i) * c.stride
	copy(c.data[off:off+c.stride], pkt)
	c.lens[i], c.seqs[i], c.at[i] = uint16(len(pkt)), seq, max(now, 1)
	c.mu.Unlock()
}

// resize moves the ring to size slots of stride bytes. Doubling keeps
// every packet: the entries of one ring have distinct low bits, so they
// land in distinct slots of a larger one.
func (c *Cache) resize(size uint16, stride int) {
	data := make([]byte, int(size)*stride)
	lens := make([]uint16, size)
	seqs := make([]uint16, size)
	at := make([]int64, size)
	for j := range c.at {
		if c.at[j] == 0 {
			continue
		}
		k := c.seqs[j] & (size - 1)
		n := int(c.lens[j])
		copy(data[int(k)*stride:], c.data[j*c.stride:j*c.stride+n])
		lens[k], seqs[k], at[k] = c.lens[j], c.seqs[j], c.at[j]
	}
	c.size, c.stride, c.data, c.lens, c.seqs, c.at = size, stride, data, lens, seqs, at
}

func roundStride(n int) int {
	return min(MaxPacket, max(strideStep, (n+strideStep-1)/strideStep*strideStep))
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
	if c.at[i] == 0 || c.seqs[i] != seq {
		return 0
	}
	n := int(c.lens[i])
	off := int(i) * c.stride
	return copy(dst, c.data[off:off+n])
}
