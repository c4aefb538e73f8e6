package bwe

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// A simulated path: a FIFO bottleneck of capacity bit/s after prop of
// propagation; every lossEvery-th packet is lost (0: none). The receiver
// reports every 100 ms what has arrived, as browsers do.
type path struct {
	t        *testing.T
	e        *Estimator
	now      int64 // ns
	capacity float64
	prop     int64 // ns
	lossEvy  int
	jitter   func(arr int64) int64 // when the receiver stamps what arrives at arr; nil: then

	seq      uint16
	lastArr  int64 // ns
	pending  []pkt
	nextFb   int64
	fbCount  uint8
	congSeen bool
}

type pkt struct {
	seq     uint16
	arrival int64 // ns; lost: when the receiver notices
	lost    bool
}

func newPath(t *testing.T, capacity float64, lossEvery int) *path {
	e := New(Config{Initial: 3_000_000, Min: 100_000, Max: 100_000_000})
	p := &path{t: t, e: e, capacity: capacity, prop: int64(20 * time.Millisecond), lossEvy: lossEvery, now: 1}
	e.clock = func() int64 { return p.now }
	p.nextFb = int64(100 * time.Millisecond)
	return p
}

// run sends 1,200-byte packets at rate bit/s for d.
func (p *path) run(rate float64, d time.Duration) {
	const size = 1200
	interval := int64(float64(size*8) / rate * 1e9)
	end := p.now + int64(d)
	for p.now < end {
		p.e.Sent(p.seq, size)
		serial := int64(float64(size*8) / p.capacity * 1e9)
		arr := max(p.now+p.prop, p.lastArr+serial)
		lost := p.lossEvy > 0 && int(p.seq)%p.lossEvy == 0
		if !lost {
			p.lastArr = arr
		}
		if p.jitter != nil {
			arr = p.jitter(arr)
		}
		p.pending = append(p.pending, pkt{seq: p.seq, arrival: arr, lost: lost})
		p.seq++
		p.now += interval
		for p.now >= p.nextFb {
			p.feedback(p.nextFb)
			p.nextFb += int64(100 * time.Millisecond)
		}
	}
}

// feedback reports the packets that have arrived by at, in order.
func (p *path) feedback(at int64) {
	n := 0
	for n < len(p.pending) && p.pending[n].arrival <= at {
		n++
	}
	if n == 0 {
		return
	}
	fb := report(p.pending[:n], p.fbCount)
	p.fbCount++
	p.pending = p.pending[n:]
	if err := p.e.WriteRTCP([]rtcp.Packet{fb}, nil); err != nil {
		p.t.Fatal(err)
	}
	if p.e.Congested() {
		p.congSeen = true
	}
}

// report builds a TWCC feedback for ps (consecutive sequence numbers) with
// two-bit status vectors, as a receiver would.
func report(ps []pkt, count uint8) *rtcp.TransportLayerCC {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: ps[0].seq, PacketStatusCount: uint16(len(ps)), FbPktCount: count}
	var ref int64 = -1
	var last int64
	for i := 0; i < len(ps); i += 7 {
		c := &rtcp.StatusVectorChunk{Type: rtcp.TypeTCCStatusVectorChunk, SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit}
		for _, q := range ps[i:min(i+7, len(ps))] {
			if q.lost {
				c.SymbolList = append(c.SymbolList, rtcp.TypeTCCPacketNotReceived)
				continue
			}
			us := q.arrival / 1000 / 250 * 250
			if ref < 0 {
				ref = us / 64_000
				last = ref * 64_000
				fb.ReferenceTime = uint32(ref)
			}
			c.SymbolList = append(c.SymbolList, rtcp.TypeTCCPacketReceivedSmallDelta)
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: us - last})
			last = us
		}
		fb.PacketChunks = append(fb.PacketChunks, c)
	}
	return fb
}

func (p *path) acked() float64 {
	return p.e.GetStats()["ackedBitrate"].(float64)
}

// A path with room to spare: no congestion, the acknowledged rate is what
// is sent, and the estimate is not cut.
func TestUncongestedPath(t *testing.T) {
	p := newPath(t, 10_000_000, 0)
	p.run(1_000_000, 5*time.Second)
	if p.congSeen {
		t.Fatalf("congestion reported on an idle path: %v", p.e.GetStats())
	}
	if a := p.acked(); a < 900_000 || a > 1_100_000 {
		t.Fatalf("acknowledged %.0f bit/s, sending 1 Mbit/s", a)
	}
	if got := p.e.GetTargetBitrate(); got < 1_500_000 {
		t.Fatalf("target %d on an uncongested path", got)
	}
}

// Sending twice what the bottleneck carries builds a queue: overuse is
// seen within two seconds and the target falls below the bottleneck.
func TestOverloadedPathCutsTarget(t *testing.T) {
	p := newPath(t, 1_000_000, 0)
	p.run(2_000_000, 2*time.Second)
	if !p.congSeen {
		t.Fatalf("no congestion after 2 s at twice the capacity: %v", p.e.GetStats())
	}
	if got := p.e.GetTargetBitrate(); got > 1_000_000 {
		t.Fatalf("target %d above the 1 Mbit/s bottleneck", got)
	}

	// Below capacity the queue drains and congestion ends; sending more
	// (still below capacity) lets the target grow again (never past 1.5
	// times what arrives).
	low := p.e.GetTargetBitrate()
	p.run(500_000, 5*time.Second)
	p.run(900_000, 4*time.Second)
	p.congSeen = false
	p.run(900_000, 2*time.Second)
	if p.congSeen {
		t.Fatalf("still congested at half the capacity: %v", p.e.GetStats())
	}
	if got := p.e.GetTargetBitrate(); got <= low {
		t.Fatalf("target %d did not recover from %d", got, low)
	}
}

// A receiver that takes its packets in at random moments (a busy machine
// whose process runs every 1–15 ms and timestamps what waited as it
// wakes; no queue on the path) is not congested.
func TestJitterIsNotCongestion(t *testing.T) {
	p := newPath(t, 10_000_000, 0)
	r := rand.New(rand.NewPCG(1, 2))
	var wake int64
	p.jitter = func(arr int64) int64 {
		for wake < arr {
			wake += int64(time.Millisecond) + r.Int64N(int64(14*time.Millisecond))
		}
		return wake
	}
	cong := 0
	for range 100 {
		p.congSeen = false
		p.run(1_500_000, 100*time.Millisecond)
		if p.congSeen {
			cong++
		}
	}
	t.Logf("congested in %d of 100 reports", cong)
	if cong > 5 {
		t.Fatalf("congested in %d of 100 reports on a jittery, idle path: %v", cong, p.e.GetStats())
	}
}

// A fifth of the packets lost is congestion, and the target is cut.
func TestLossCutsTarget(t *testing.T) {
	p := newPath(t, 10_000_000, 5)
	p.run(1_000_000, 3*time.Second)
	st := p.e.GetStats()
	if l := st["averageLoss"].(float64); l < 0.15 || l > 0.25 {
		t.Fatalf("average loss %.2f, want about 0.2", l)
	}
	if !p.e.Congested() {
		t.Fatal("20 % loss is not congestion")
	}
	if got := p.e.GetTargetBitrate(); got >= 3_000_000 {
		t.Fatalf("target %d not cut for loss", got)
	}
}

// Feedback naming packets never sent, repeated, or with fewer deltas than
// received packets changes nothing and never fails the RTCP reader.
func TestBadFeedbackIsIgnored(t *testing.T) {
	p := newPath(t, 10_000_000, 0)
	p.run(1_000_000, time.Second)
	before := p.e.GetStats()
	bad := []rtcp.Packet{
		&rtcp.TransportLayerCC{BaseSequenceNumber: 60000, PacketStatusCount: 5,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 5}}},
		&rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 50,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 50}}},
		&rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 3,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedLargeDelta, RunLength: 3}},
			RecvDeltas:   []*rtcp.RecvDelta{nil}},
		&rtcp.PictureLossIndication{},
	}
	if err := p.e.WriteRTCP(bad, nil); err != nil {
		t.Fatal(err)
	}
	after := p.e.GetStats()
	if before["averageLoss"] != after["averageLoss"] || p.e.Congested() {
		t.Fatalf("bad feedback moved the estimator: %v → %v", before, after)
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	w.n++
	return len(payload), nil
}

// Recording a packet on its way out allocates nothing and passes it on.
func TestSentAllocatesNothing(t *testing.T) {
	e := New(Config{Initial: 1_000_000})
	w := &countingWriter{}
	out := e.AddStream(&interceptor.StreamInfo{RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: TransportCCURI, ID: 3}}}, w)
	h := &rtp.Header{Version: 2, SSRC: 1}
	ext := []byte{0, 0}
	if err := h.SetExtension(3, ext); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	var seq uint16
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		ext[0], ext[1] = byte(seq>>8), byte(seq) // SetExtension keeps the slice
		if _, err := out.Write(h, payload, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
	e.ringMu.Lock()
	s := e.ring[seq%ringSize]
	e.ringMu.Unlock()
	if s.seq != seq || s.at == 0 || int(s.size) != h.MarshalSize()+1000 || w.n != 1001 {
		t.Fatalf("last packet recorded as %+v after %d writes", s, w.n)
	}
	// Without the extension negotiated the writer is passed through.
	if got := e.AddStream(&interceptor.StreamInfo{}, w); got != interceptor.RTPWriter(w) {
		t.Fatal("a stream without transport-cc was wrapped")
	}
}

func FuzzFeedback(f *testing.F) {
	fb := report([]pkt{{seq: 1, arrival: 5e6}, {seq: 2, lost: true}, {seq: 3, arrival: 6e6}}, 1)
	b, _ := fb.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return
		}
		e := New(Config{Initial: 1_000_000})
		for i := range uint16(40) {
			e.Sent(i, 1200)
		}
		if err := e.WriteRTCP(pkts, nil); err != nil {
			t.Fatal(err)
		}
		if r := e.GetTargetBitrate(); r < e.cfg.Min || r > e.cfg.Max {
			t.Fatalf("target %d out of bounds", r)
		}
	})
}
