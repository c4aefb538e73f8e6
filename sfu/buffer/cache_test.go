package buffer

import (
	"bytes"
	"testing"
)

func TestCache(t *testing.T) {
	c := New(4)
	if c.Get(1, make([]byte, 10)) != 0 {
		t.Fatal("empty cache answered")
	}
	for seq := uint16(65533); seq != 3; seq++ {
		c.Add(seq, []byte{byte(seq), 1, 2})
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
	c.Add(9, make([]byte, MaxPacket+1))
	if c.Get(9, dst) != 0 {
		t.Fatal("oversized packet kept")
	}
}

func BenchmarkAdd(b *testing.B) {
	c := New(512)
	pkt := make([]byte, 1200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Add(uint16(i), pkt)
	}
}
