package participant

import (
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu/buffer"
	"github.com/salonhq/salon/sfu/forward"
)

// FuzzPublishedPackets feeds a published track whatever a publisher sends
// on its media socket (after SRTP: any RTP, malformed, padded, VP8
// descriptors, RED blocks), on any layer, to three subscribers, and
// answers NACKs for every sequence number and any RTCP from the
// subscribers: the hot path never panics and never writes a payload
// larger than the packet it came from.
func FuzzPublishedPackets(f *testing.F) {
	var seed []byte
	for i := uint16(0); i < 4; i++ {
		p := vp8Packet(100+i, 3000*uint32(i), i, i == 0)[:40]
		seed = append(seed, byte(len(p)), byte(i%3))
		seed = append(seed, p...)
	}
	fb, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.TransportLayerNack{MediaSSRC: 1000, Nacks: []rtcp.NackPair{{PacketID: 0, LostPackets: 0xffff}}},
		&rtcp.PictureLossIndication{MediaSSRC: 1000},
		&rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{{SSRC: 1000, FractionLost: 200}, {SSRC: 1001, FractionLost: 255}}},
	})
	f.Add(seed, uint8(0), fb)
	red := []byte{0x80 | 111, 0x00, 0x10, 0x03, 0x00 | 111, 'o', 'l', 'd', 'n', 'e', 'w'}
	h := rtp.Header{Version: 2, PayloadType: 63, SequenceNumber: 9, SSRC: 1, Padding: true}
	hb, _ := h.Marshal()
	pkt := append(append(hb, red...), 0, 2)
	f.Add(append([]byte{byte(len(pkt)), 0}, pkt...), uint8(3), fb)
	f.Add([]byte{3, 0, 0x80, 0, 0}, uint8(1), []byte{0x81, 205, 0, 2})
	codecs := append(append([]webrtc.RTPCodecParameters(nil), VideoCodecs...), AudioCodecs...)
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, rtcpData []byte) {
		c := codecs[int(codec)%len(codecs)]
		kind := livekit.TrackType_VIDEO
		if c.MimeType == webrtc.MimeTypeOpus || c.MimeType == "audio/red" {
			kind = livekit.TrackType_AUDIO
		}
		layers := []*livekit.VideoLayer{{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
			{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360}, {Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720}}
		tr := newMediaTrack(testParticipant("PA_pub"), &livekit.TrackInfo{Sid: "TR_x", Type: kind, Layers: layers}, c)
		for i := range tr.layers {
			tr.layers[i].cache = buffer.New(cacheSize, cacheKeep)
		}
		w := &boundedWriter{t: t}
		var downs []*DownTrack
		for i := 0; i < 3; i++ {
			d := newDownTrack(tr, testParticipant("PA_sub"))
			d.ssrc, d.pt, d.writer = 1000+uint32(i), 96, w
			if i == 2 && kind == livekit.TrackType_AUDIO {
				d.redToOpus = true
			}
			d.bound.Store(true)
			tr.addDownTrack(d)
			downs = append(downs, d)
		}
		var hdr rtp.Header
		var fp forward.Packet
		sc := newScratch()
		for n := int64(1); len(data) >= 2; n++ {
			size, layer := int(data[0]), int8(data[1]%MaxLayers)
			data = data[2:]
			size = min(size, len(data))
			b := data[:size]
			data = data[size:]
			w.max = size
			tr.handlePacket(b, layer, &hdr, &fp, sc, n)
			if n%3 == 0 {
				downs[n%2].SelectLayer(time.Unix(0, n))
			}
		}
		w.max = buffer.MaxPacket
		for _, d := range downs {
			for seq := 0; seq < 1<<16; seq += 97 {
				d.retransmit(uint16(seq))
			}
		}
		// Whatever the packet data left over says as the subscribers'
		// RTCP (NACKs, PLI/FIR, receiver reports).
		if pkts, err := rtcp.Unmarshal(rtcpData); err == nil {
			for i, d := range downs {
				d.handleRTCP(pkts, time.Unix(0, int64(i+1)*int64(time.Second)))
			}
		}
	})
}

// boundedWriter fails the test when a payload is larger than the packet
// being forwarded.
type boundedWriter struct {
	t   *testing.T
	max int
}

func (w *boundedWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if len(payload) > w.max {
		w.t.Fatalf("wrote %d bytes of payload from a %d-byte packet", len(payload), w.max)
	}
	return len(payload), nil
}

func (w *boundedWriter) Write(b []byte) (int, error) { return len(b), nil }
