package participant

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu/buffer"
	"github.com/salonhq/salon/sfu/forward"
)

// nullWriter stands in for pion's SRTP writer: it counts and drops.
type nullWriter struct{ packets, bytes int }

func (w *nullWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.packets++
	w.bytes += len(payload)
	return len(payload), nil
}

func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

func testParticipant(sid string) *Participant {
	return &Participant{
		params: Params{SID: sid, Counters: &Counters{}, KeyframeInterval: time.Second},
		log:    slog.New(slog.DiscardHandler),
	}
}

// fanout builds a published VP8 (or Opus) track with n bound subscribers.
func fanout(tb testing.TB, codec webrtc.RTPCodecParameters, kind livekit.TrackType, layers []*livekit.VideoLayer, n int) (*MediaTrack, *nullWriter) {
	pub := testParticipant("PA_pub")
	t := newMediaTrack(pub, &livekit.TrackInfo{Sid: "TR_x", Type: kind, Layers: layers}, codec)
	w := &nullWriter{}
	for i := 0; i < n; i++ {
		d := newDownTrack(t, testParticipant("PA_sub"))
		d.ssrc, d.pt, d.writer = 1000+uint32(i), 96, w
		d.bound.Store(true)
		t.addDownTrack(d)
	}
	return t, w
}

func vp8Packet(seq uint16, ts uint32, pic uint16, key bool) []byte {
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 42, Marker: true}
	b, _ := h.Marshal()
	payload := make([]byte, 1100)
	payload[0], payload[1], payload[2], payload[3], payload[4] = 0x90, 0xc0, 0x80|byte(pic>>8), byte(pic), 1
	if !key {
		payload[5] = 1
	}
	return append(b, payload...)
}

func TestHandlePacketForwardsToEverySubscriber(t *testing.T) {
	tr, w := fanout(t, VideoCodecs[0], livekit.TrackType_VIDEO, nil, 3)
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	tr.handlePacket(vp8Packet(1, 3000, 7, false), 0, &hdr, &pkt, sc, 1)
	if w.packets != 0 {
		t.Fatal("forwarded a delta frame before any keyframe")
	}
	tr.handlePacket(vp8Packet(2, 6000, 8, true), 0, &hdr, &pkt, sc, 2)
	tr.handlePacket(vp8Packet(3, 9000, 9, false), 0, &hdr, &pkt, sc, 3)
	if w.packets != 6 {
		t.Fatalf("forwarded %d packets, want 6", w.packets)
	}
}

func TestSimulcastDownTrackSwitchesOnSettings(t *testing.T) {
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360},
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720},
	}
	tr, w := fanout(t, VideoCodecs[0], livekit.TrackType_VIDEO, layers, 1)
	d := tr.DownTracks()[0]
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	now := time.Now()
	send := func(layer int8, seq uint16, key bool) {
		tr.handlePacket(vp8Packet(seq, uint32(seq)*3000, seq, key), layer, &hdr, &pkt, sc, now.UnixNano())
	}
	for i := int8(0); i < 3; i++ {
		send(i, uint16(100*int(i)+1), true)
	}
	d.SelectLayer(now)
	if d.TargetLayer() != 2 {
		t.Fatalf("target %d, want 2", d.TargetLayer())
	}
	send(2, 202, true)
	if d.CurrentLayer() != 2 {
		t.Fatalf("current %d", d.CurrentLayer())
	}
	d.UpdateSettings(&livekit.UpdateTrackSettings{Width: 320, Height: 180})
	if d.TargetLayer() != 0 {
		t.Fatalf("target %d after a small size, want 0", d.TargetLayer())
	}
	before := w.packets
	send(0, 2, false) // delta: no switch yet
	send(2, 203, false)
	send(0, 3, true) // keyframe: switch
	if d.CurrentLayer() != 0 || w.packets != before+2 {
		t.Fatalf("current %d, forwarded %d", d.CurrentLayer(), w.packets-before)
	}
}

func TestRedPrimary(t *testing.T) {
	// One redundant block (F=1, PT 111, offset, length 3) then the primary.
	red := []byte{0x80 | 111, 0x00, 0x10, 0x03, 0x00 | 111, 'o', 'l', 'd', 'n', 'e', 'w'}
	if got := string(redPrimary(red)); got != "new" {
		t.Fatalf("%q", got)
	}
	if redPrimary([]byte{0x80, 0, 0}) != nil {
		t.Fatal("truncated header accepted")
	}
}

// BenchmarkFanout is the SFU's per-packet cost: one incoming VP8 packet
// parsed and forwarded (decided, rewritten, handed to the writer) to n
// subscribers. The writer is a stand-in, so SRTP and the socket are not
// counted here.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(itoa(n)+"subs", func(b *testing.B) {
			tr, w := fanout(b, VideoCodecs[0], livekit.TrackType_VIDEO, nil, n)
			var hdr rtp.Header
			var pkt forward.Packet
			sc := newScratch()
			pkts := make([][]byte, 256)
			for i := range pkts {
				pkts[i] = vp8Packet(uint16(i), uint32(i)*3000, uint16(i), i == 0)
			}
			tr.handlePacket(pkts[0], 0, &hdr, &pkt, sc, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pkts[1+i%255]
				// advance sequence numbers so every packet is new
				seq := uint16(i + 1)
				p[2], p[3] = byte(seq>>8), byte(seq)
				tr.handlePacket(p, 0, &hdr, &pkt, sc, int64(i))
			}
			b.StopTimer()
			if w.packets < b.N*n {
				b.Fatalf("forwarded %d of %d", w.packets, b.N*n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/forwarded")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

type recordingWriter struct {
	seqs     []uint16
	payloads [][]byte
}

func (w *recordingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.seqs = append(w.seqs, h.SequenceNumber)
	w.payloads = append(w.payloads, append([]byte(nil), payload...))
	return len(payload), nil
}

func (w *recordingWriter) Write(b []byte) (int, error) { return len(b), nil }

// sentVideo is a VP8 track with a packet cache and one down track for
// sub, bound as ssrc, that has forwarded five packets (recorded by w).
func sentVideo(sub *Participant, ssrc uint32) (*DownTrack, *recordingWriter) {
	pub := testParticipant("PA_pub")
	tr := newMediaTrack(pub, &livekit.TrackInfo{Sid: "TR_x", Type: livekit.TrackType_VIDEO}, VideoCodecs[0])
	tr.layers[0].cache = buffer.New(cacheSize, cacheKeep)
	d := newDownTrack(tr, sub)
	w := &recordingWriter{}
	d.ssrc, d.pt, d.writer = ssrc, 96, w
	sub.params.Direct.bindTrack(d.ssrc, d)
	d.bound.Store(true)
	tr.addDownTrack(d)
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	for i := uint16(0); i < 5; i++ {
		tr.handlePacket(vp8Packet(100+i, 3000*uint32(i), i, i == 0), 0, &hdr, &pkt, sc, int64(i))
	}
	return d, w
}

func TestNACKAnsweredFromTheTrackCache(t *testing.T) {
	d, w := sentVideo(testParticipant("PA_sub"), 1)
	if len(w.seqs) != 5 {
		t.Fatalf("forwarded %d", len(w.seqs))
	}
	orig := w.payloads[2]
	d.retransmit(w.seqs[2])
	if len(w.seqs) != 6 || w.seqs[5] != w.seqs[2] || string(w.payloads[5]) != string(orig) {
		t.Fatalf("retransmission: seqs %v", w.seqs)
	}
	d.retransmit(w.seqs[4] + 10) // never sent
	if len(w.seqs) != 6 {
		t.Fatal("answered a NACK for a packet never sent")
	}
}

func TestDynacast(t *testing.T) {
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360},
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720},
	}
	tr, _ := fanout(t, VideoCodecs[0], livekit.TrackType_VIDEO, layers, 1)
	d := tr.DownTracks()[0]
	now := time.Now()
	if u := tr.Dynacast(now); u != nil {
		t.Fatalf("update with nothing changed: %v", u)
	}
	d.UpdateSettings(&livekit.UpdateTrackSettings{Width: 300, Height: 170})
	if u := tr.Dynacast(now); u != nil {
		t.Fatal("layers turned off without waiting")
	}
	u := tr.Dynacast(now.Add(4 * time.Second))
	if u == nil || len(u.SubscribedCodecs) != 1 || u.SubscribedCodecs[0].Codec != "vp8" {
		t.Fatalf("update: %v", u)
	}
	for _, q := range u.SubscribedQualities {
		if q.Enabled != (q.Quality == livekit.VideoQuality_LOW) {
			t.Fatalf("qualities %v", u.SubscribedQualities)
		}
	}
	d.UpdateSettings(&livekit.UpdateTrackSettings{Width: 1280, Height: 720})
	u = tr.Dynacast(now.Add(5 * time.Second))
	if u == nil || !u.SubscribedQualities[2].Enabled {
		t.Fatalf("high layer not turned back on at once: %v", u)
	}
	tr.removeDownTrack(d)
	tr.Dynacast(now.Add(6 * time.Second))
	if u := tr.Dynacast(now.Add(10 * time.Second)); u == nil || u.SubscribedQualities[0].Enabled {
		t.Fatalf("no subscriber, still publishing: %v", u)
	}
}

func TestLossStepsLayerDownAndBackUp(t *testing.T) {
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360},
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720},
	}
	tr, _ := fanout(t, VideoCodecs[0], livekit.TrackType_VIDEO, layers, 1)
	d := tr.DownTracks()[0]
	now := time.Now()
	for i := range tr.layers {
		tr.layers[i].lastPacket.Store(now.UnixNano())
	}
	d.SelectLayer(now)
	if d.TargetLayer() != 2 {
		t.Fatalf("start %d", d.TargetLayer())
	}
	d.onReceiverReport(0.3, now)
	if d.TargetLayer() != 2 {
		t.Fatal("one bad report is enough to step down")
	}
	d.onReceiverReport(0.3, now.Add(time.Second))
	if d.TargetLayer() != 1 {
		t.Fatalf("after two bad reports: %d", d.TargetLayer())
	}
	d.onReceiverReport(0.0, now.Add(2*time.Second))
	if d.TargetLayer() != 1 {
		t.Fatal("stepped back up at once")
	}
	later := now.Add(13 * time.Second)
	for i := range tr.layers {
		tr.layers[i].lastPacket.Store(later.UnixNano())
	}
	d.onReceiverReport(0.0, later)
	if d.TargetLayer() != 2 {
		t.Fatalf("after recovery: %d", d.TargetLayer())
	}
}

// fakeBWE is an estimator that says what the test sets.
type fakeBWE struct {
	rate      int
	congested bool
}

func (f *fakeBWE) GetTargetBitrate() int { return f.rate }
func (f *fakeBWE) Congested() bool       { return f.congested }

func TestBandwidthEstimateStepsLayers(t *testing.T) {
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180, Bitrate: 150_000},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360, Bitrate: 500_000},
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720, Bitrate: 1_700_000},
	}
	tr, _ := fanout(t, VideoCodecs[0], livekit.TrackType_VIDEO, layers, 1)
	d := tr.DownTracks()[0]
	sub := d.sub
	bwe := &fakeBWE{rate: 5_000_000}
	sub.params.BWE = func() Estimator { return bwe }
	sub.subscribed = map[string]*DownTrack{tr.sid: d}
	now := time.Now()
	live := func(at time.Time) {
		for i := range tr.layers {
			tr.layers[i].lastPacket.Store(at.UnixNano())
		}
	}
	live(now)
	d.SelectLayer(now)
	sub.AdaptToBandwidth(now)
	if d.TargetLayer() != 2 {
		t.Fatalf("plenty of bandwidth: layer %d", d.TargetLayer())
	}
	bwe.rate = 600_000
	sub.AdaptToBandwidth(now)
	if d.TargetLayer() != 2 {
		t.Fatal("stepped down on a low estimate without congestion")
	}
	bwe.congested = true
	sub.AdaptToBandwidth(now)
	if d.TargetLayer() != 1 {
		t.Fatalf("600 kbit/s: layer %d, want 1", d.TargetLayer())
	}
	bwe.rate = 200_000
	sub.AdaptToBandwidth(now.Add(time.Second))
	if d.TargetLayer() != 0 {
		t.Fatalf("200 kbit/s: layer %d, want 0", d.TargetLayer())
	}
	bwe.rate, bwe.congested = 5_000_000, false
	sub.AdaptToBandwidth(now.Add(2 * time.Second))
	if d.TargetLayer() != 0 {
		t.Fatal("went back up without waiting")
	}
	later := now.Add(time.Minute)
	live(later)
	sub.AdaptToBandwidth(later)
	if d.TargetLayer() != 1 {
		t.Fatalf("after the retry time: layer %d, want 1", d.TargetLayer())
	}
}

func TestCapVideoBitrate(t *testing.T) {
	in := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:9999\r\na=mid:1\r\n"
	out := capVideoBitrate(in, 2_500_000)
	if !strings.Contains(out, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:2500\r\nb=TIAS:2500000\r\na=mid:1") {
		t.Fatalf("%q", out)
	}
	if strings.Count(out, "b=AS") != 1 || strings.Contains(out, "9999") {
		t.Fatalf("audio touched or old cap kept: %q", out)
	}
}
