package forward

import (
	"testing"
)

func vp8Payload(picID uint16, tl0 uint8, keyframe bool) []byte {
	// X=1, S=1, PID=0; I=1, L=1; 15-bit picture ID; TL0PICIDX; VP8 header.
	p := []byte{0x90, 0xc0, 0x80 | byte(picID>>8), byte(picID), tl0, 0x01, 0, 0}
	if keyframe {
		p[5] = 0x00
	}
	return p
}

func pkt(layer int8, seq uint16, ts uint32, at int64, key bool) *Packet {
	p := &Packet{Layer: layer, SequenceNumber: seq, Timestamp: ts, ArrivalNanos: at, PayloadSize: 100, Keyframe: key}
	return p
}

func TestForwarderStartsOnKeyframe(t *testing.T) {
	f := New(CodecVP8, 90000)
	if d := f.Forward(pkt(0, 10, 1000, 1, false)); d.Forward || !d.NeedKeyframe {
		t.Fatalf("delta frame before a keyframe: %+v", d)
	}
	d := f.Forward(pkt(0, 11, 1000, 2, true))
	if !d.Forward || !d.Switched || d.SequenceNumber != 11 || d.Timestamp != 1000 {
		t.Fatalf("keyframe: %+v", d)
	}
	if d := f.Forward(pkt(0, 12, 4000, 3, false)); !d.Forward || d.SequenceNumber != 12 {
		t.Fatalf("next: %+v", d)
	}
}

func TestForwarderAudioStartsAtOnce(t *testing.T) {
	f := New(CodecOpus, 48000)
	if d := f.Forward(pkt(0, 500, 960, 1, false)); !d.Forward || d.SequenceNumber != 500 {
		t.Fatalf("audio: %+v", d)
	}
}

func TestForwarderLayerSwitch(t *testing.T) {
	const ms = int64(1e6)
	f := New(CodecVP8, 90000)
	f.SetTargetLayer(2)
	mk := func(layer int8, seq uint16, ts uint32, at int64, key bool, pic uint16, tl0 uint8) *Packet {
		p := pkt(layer, seq, ts, at, key)
		p.VP8, _ = ParseVP8(vp8Payload(pic, tl0, key))
		p.HasVP8 = true
		return p
	}
	if d := f.Forward(mk(2, 100, 9000, 0, true, 300, 7)); !d.Forward || d.SequenceNumber != 100 || d.PictureID != 300 {
		t.Fatalf("start: %+v", d)
	}
	f.Forward(mk(2, 101, 12000, 33*ms, false, 301, 8))
	// Ask for layer 0; its delta frames are dropped until a keyframe.
	if !f.SetTargetLayer(0) {
		t.Fatal("switch should need a keyframe")
	}
	if d := f.Forward(mk(0, 5000, 777000, 40*ms, false, 20, 1)); d.Forward || !d.NeedKeyframe {
		t.Fatalf("delta on new layer: %+v", d)
	}
	// Layer 2 keeps flowing until the switch.
	if d := f.Forward(mk(2, 102, 15000, 66*ms, false, 302, 9)); !d.Forward || d.SequenceNumber != 102 {
		t.Fatalf("old layer before switch: %+v", d)
	}
	d := f.Forward(mk(0, 5001, 780000, 99*ms, true, 21, 2))
	if !d.Forward || !d.Switched {
		t.Fatalf("keyframe on new layer: %+v", d)
	}
	if d.SequenceNumber != 103 {
		t.Errorf("seq after switch = %d, want 103", d.SequenceNumber)
	}
	if want := uint32(15000 + 33*90); d.Timestamp != want {
		t.Errorf("ts after switch = %d, want %d", d.Timestamp, want)
	}
	if d.PictureID != 303 || d.TL0PICIDX != 10 || !d.RewriteVP8 {
		t.Errorf("vp8 after switch: pic %d tl0 %d rewrite %v", d.PictureID, d.TL0PICIDX, d.RewriteVP8)
	}
	// The old layer is now dropped, the new one continues.
	if d := f.Forward(mk(2, 103, 18000, 100*ms, false, 303, 10)); d.Forward {
		t.Fatalf("old layer after switch: %+v", d)
	}
	if d := f.Forward(mk(0, 5002, 783000, 132*ms, false, 22, 3)); !d.Forward || d.SequenceNumber != 104 || d.Timestamp != 15000+33*90+3000 || d.PictureID != 304 {
		t.Fatalf("new layer continues: %+v", d)
	}
}

func TestForwarderPaddingLeavesNoGap(t *testing.T) {
	f := New(CodecOpus, 48000)
	f.Forward(pkt(0, 1, 0, 1, false))
	pad := pkt(0, 2, 0, 2, false)
	pad.PayloadSize = 0
	if d := f.Forward(pad); d.Forward {
		t.Fatal("padding forwarded")
	}
	if d := f.Forward(pkt(0, 3, 960, 3, false)); d.SequenceNumber != 2 {
		t.Fatalf("seq after padding = %d, want 2", d.SequenceNumber)
	}
}

func TestForwarderPauseResume(t *testing.T) {
	f := New(CodecVP8, 90000)
	f.Forward(pkt(0, 10, 100, 1, true))
	f.Pause()
	if d := f.Forward(pkt(0, 11, 200, 2, false)); d.Forward {
		t.Fatal("forwarded while paused")
	}
	if !f.Resume() {
		t.Fatal("resume should ask for a keyframe")
	}
	f.Forward(pkt(0, 12, 300, 3, false))
	d := f.Forward(pkt(0, 13, 400, 4, true))
	if !d.Forward || d.SequenceNumber != 11 {
		t.Fatalf("after resume: %+v", d)
	}
}

func TestForwarderReorderedPackets(t *testing.T) {
	f := New(CodecOpus, 48000)
	f.Forward(pkt(0, 10, 0, 1, false))
	f.Forward(pkt(0, 12, 1920, 2, false))
	if d := f.Forward(pkt(0, 11, 960, 3, false)); !d.Forward || d.SequenceNumber != 11 {
		t.Fatalf("late packet: %+v", d)
	}
	if d := f.Forward(pkt(0, 9, 0, 4, false)); d.Forward {
		t.Fatalf("packet from before the start: %+v", d)
	}
}

func TestSelectLayer(t *testing.T) {
	three := []Layer{{320, 180, 150e3, true}, {640, 360, 500e3, true}, {1280, 720, 1700e3, true}}
	tests := []struct {
		name   string
		layers []Layer
		req    Request
		budget uint32
		want   int8
	}{
		{"no preference takes the best", three, Request{MaxLayer: 2}, 0, 2},
		{"small element takes low", three, Request{Width: 200, Height: 100, MaxLayer: 2}, 0, 0},
		{"medium element", three, Request{Width: 640, Height: 360, MaxLayer: 2}, 0, 1},
		{"capped by quality", three, Request{MaxLayer: 1}, 0, 1},
		{"capped by budget", three, Request{MaxLayer: 2}, 600e3, 1},
		{"disabled", three, Request{Disabled: true, MaxLayer: 2}, 0, NoLayer},
		{"high inactive falls back", []Layer{{320, 180, 0, true}, {640, 360, 0, true}, {1280, 720, 0, false}}, Request{MaxLayer: 2}, 0, 1},
		{"only high active goes up", []Layer{{320, 180, 0, false}, {640, 360, 0, false}, {1280, 720, 0, true}}, Request{Width: 100, MaxLayer: 2}, 0, 2},
		{"nothing active", []Layer{{Active: false}}, Request{MaxLayer: 2}, 0, NoLayer},
		{"single layer", []Layer{{640, 480, 0, true}}, Request{Width: 100, MaxLayer: 0}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SelectLayer(tc.layers, tc.req, tc.budget); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestKeyframeDetection(t *testing.T) {
	tests := []struct {
		name  string
		codec Codec
		p     []byte
		want  bool
	}{
		{"vp8 key", CodecVP8, vp8Payload(1, 1, true), true},
		{"vp8 delta", CodecVP8, vp8Payload(1, 1, false), false},
		{"vp8 continuation", CodecVP8, []byte{0x00, 0x00}, false},
		{"h264 idr", CodecH264, []byte{0x65, 0}, true},
		{"h264 non-idr", CodecH264, []byte{0x41, 0}, false},
		{"h264 stap-a with sps", CodecH264, []byte{0x18, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true},
		{"h264 fu-a idr start", CodecH264, []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", CodecH264, []byte{0x7c, 0x05}, false},
		{"vp9 key", CodecVP9, []byte{0x08}, true},
		{"vp9 inter", CodecVP9, []byte{0x48}, false},
		{"av1 new sequence", CodecAV1, []byte{0x18}, true},
		{"av1 other", CodecAV1, []byte{0x10}, false},
		{"empty", CodecVP8, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsKeyframe(tc.codec, tc.p); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestRewriteVP8(t *testing.T) {
	p := vp8Payload(0x1234, 9, false)
	d, _ := ParseVP8(p)
	RewriteVP8(p, &d, 0x0042, 77)
	d2, ok := ParseVP8(p)
	if !ok || d2.PictureID != 0x42 || d2.TL0PICIDX != 77 || !d2.PictureID15 {
		t.Fatalf("%+v", d2)
	}
}

func BenchmarkForward(b *testing.B) {
	f := New(CodecVP8, 90000)
	payload := vp8Payload(1, 1, true)
	p := &Packet{Layer: 0, PayloadSize: 1000, Keyframe: true, HasVP8: true}
	p.VP8, _ = ParseVP8(payload)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.SequenceNumber++
		p.Timestamp += 3000
		p.ArrivalNanos += 1e6
		p.VP8.PictureID = (p.VP8.PictureID + 1) & 0x7fff
		d := f.Forward(p)
		if !d.Forward {
			b.Fatal("dropped")
		}
	}
}

func BenchmarkParseAndForward(b *testing.B) {
	f := New(CodecVP8, 90000)
	payload := vp8Payload(1, 1, true)
	dst := make([]byte, len(payload))
	p := &Packet{Layer: 0, PayloadSize: 1000}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.SequenceNumber++
		p.Timestamp += 3000
		p.VP8, p.HasVP8 = ParseVP8(payload)
		p.Keyframe = p.VP8.Keyframe
		d := f.Forward(p)
		if d.RewriteVP8 || i%2 == 0 {
			copy(dst, payload)
			RewriteVP8(dst, &p.VP8, d.PictureID, d.TL0PICIDX)
		}
	}
}
