package buffer

import (
	"bytes"
	"testing"
	"time"
)

func pkt(seq uint16, n int) []byte {
	p := make([]byte, n)
	p[0], p[n-1] = byte(seq), byte(seq>>8)
	return p
}

func TestCache(t *testing.T) {
	c := New(4, time.Second)
	if c.Get(1, make([]byte, 10)) != 0 {
		t.Fatal("empty cache answered")
	}
	// Packets a second apart: none is young enough to grow the ring.
	now := int64(time.Hour)
	for seq := uint16(65533); seq != 3; seq++ {
		c.Add(seq, []byte{byte(seq), 1, 2}, now)
		now += int64(time.Second)
	}
	dst := make([]byte, MaxPacket)
	for _, seq := range []uint16{65535, 0, 1, 2} {
		n := c.Get(seq, dst)
		if !bytes.Equal(dst[:n], []byte{byte(seq), 1, 2}) {
			t.Fatalf("seq %d: %v", seq, dst[:n])
		}
	}
	if c.Get(65533, dst) != 0 || c.Get(65534, dst) != 0 {
		t.Fatal("overwritten packets still answered")
	}
	c.Add(9, make([]byte, MaxPacket+1), now)
	if c.Get(9, dst) != 0 {
		t.Fatal("oversized packet kept")
	}
}

// A slow stream keeps a small ring; a fast one, or a burst, grows it to
// hold every packet of the last keep, up to max; packets survive growth.
func TestCacheHoldsWhatKeepAsks(t *testing.T) {
	const keep = 1500 * time.Millisecond
	tests := []struct {
		name      string
		perSecond int
		count     int
		wantSlots uint16
	}{
		{"thumbnail 30/s", 30, 600, 64},
		{"camera 250/s", 250, 2000, 512},
		{"camera beyond max 1000/s", 1000, 3000, 512},
		{"keyframe burst, all at once", 0, 400, 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(512, keep)
			start, now := int64(time.Hour), int64(time.Hour)
			seq := uint16(65000) // wraps during the test
			for i := 0; i < tc.count; i++ {
				if tc.perSecond > 0 {
					now = start + int64(i)*int64(time.Second)/int64(tc.perSecond)
				}
				c.Add(seq, pkt(seq, 100+i%1000), now)
				seq++
			}
			if c.size != tc.wantSlots {
				t.Fatalf("ring of %d slots, want %d", c.size, tc.wantSlots)
			}
			// Every packet of the last keep (or the last max) is answered.
			want := tc.count
			if tc.perSecond > 0 {
				want = min(want, int(keep.Seconds()*float64(tc.perSecond)))
			}
			want = min(want, int(c.max))
			dst := make([]byte, MaxPacket)
			for k := 1; k <= want; k++ {
				s := seq - uint16(k)
				i := tc.count - k
				n := c.Get(s, dst)
				if !bytes.Equal(dst[:n], pkt(s, 100+i%1000)) {
					t.Fatalf("packet %d back (seq %d) not answered: %d bytes", k, s, n)
				}
			}
		})
	}
}

// Without a keep, the ring holds the last max packets, as a fixed ring.
func TestCacheWithoutKeep(t *testing.T) {
	c := New(64, 0)
	for seq := uint16(0); seq < 200; seq++ {
		c.Add(seq, pkt(seq, 100), int64(seq+1)*int64(time.Hour))
	}
	dst := make([]byte, MaxPacket)
	if c.size != 64 || c.Get(136, dst) == 0 || c.Get(135, dst) != 0 {
		t.Fatalf("ring of %d slots; 136 kept %v, 135 dropped %v", c.size, c.Get(136, dst) != 0, c.Get(135, dst) == 0)
	}
}

// Slots widen to the largest packet seen, keeping what they hold.
func TestCacheWidensSlots(t *testing.T) {
	c := New(64, time.Second)
	c.Add(1, pkt(1, 200), 1)
	if c.stride != 256 {
		t.Fatalf("stride %d after a 200-byte packet", c.stride)
	}
	c.Add(2, pkt(2, 1200), 2)
	if c.stride != 1216 {
		t.Fatalf("stride %d after a 1200-byte packet", c.stride)
	}
	c.Add(3, pkt(3, MaxPacket), 3)
	dst := make([]byte, MaxPacket)
	for _, p := range []struct {
		seq uint16
		n   int
	}{{1, 200}, {2, 1200}, {3, MaxPacket}} {
		if n := c.Get(p.seq, dst); !bytes.Equal(dst[:n], pkt(p.seq, p.n)) {
			t.Fatalf("seq %d: %d bytes", p.seq, n)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	c := New(512, 1500*time.Millisecond)
	p := make([]byte, 1200)
	b.ReportAllocs()
	now := int64(time.Hour)
	for i := 0; i < b.N; i++ {
		now += int64(4 * time.Millisecond)
		c.Add(uint16(i), p, now)
	}
}
