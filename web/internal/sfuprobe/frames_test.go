package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"

	"github.com/pion/rtp"

	"github.com/salonhq/salon/sfu/forward"
)

// keyFrame is a real VP8 key frame: the VP8 chunk of the WebP test image
// the media repository's tests use (150×100).
func keyFrame(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../homeserver/media/testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	if string(b[0:4]) != "RIFF" || string(b[8:16]) != "WEBPVP8 " {
		t.Fatal("not a simple lossy WebP")
	}
	n := binary.LittleEndian.Uint32(b[16:20])
	return b[20 : 20+n]
}

// packetize splits a frame into RTP packets with a 15-bit picture ID
// descriptor, as Chromium sends VP8.
func packetize(t *testing.T, f []byte, seq uint16, ts uint32, size int) [][]byte {
	t.Helper()
	var out [][]byte
	for off := 0; off < len(f); off += size {
		end := min(off+size, len(f))
		desc := []byte{0x80, 0x80, 0x80 | 0x12, 0x34}
		if off == 0 {
			desc[0] |= 0x10 // S, partition 0
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: end == len(f)},
			Payload: append(desc, f[off:end]...)}
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
		seq++
	}
	return out
}

// seal encrypts f as livekit-client's FrameCryptor does.
func seal(t *testing.T, f, raw []byte, index byte) []byte {
	t.Helper()
	aead, err := frameKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := parseTag(f)
	clear := clearDeltaFrame
	if tag.key {
		clear = clearKeyFrame
	}
	iv := make([]byte, ivLength)
	_, _ = rand.Read(iv)
	out := bytes.Clone(f[:clear])
	out = aead.Seal(out, iv, f[clear:], f[:clear])
	out = append(out, iv...)
	return append(out, ivLength, index)
}

func TestDescriptor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     []byte
		n     int
		start bool
		bad   bool
	}{
		{"minimal start", []byte{0x10, 0xaa}, 1, true, false},
		{"continuation", []byte{0x00, 0xaa}, 1, false, false},
		{"start of partition 1", []byte{0x11, 0xaa}, 1, false, false},
		{"7-bit picture ID", []byte{0x90, 0x80, 0x05, 0xaa}, 3, true, false},
		{"15-bit picture ID, TL0PICIDX, TID", []byte{0x90, 0xe0, 0x81, 0x02, 0x03, 0x40, 0xaa}, 6, true, false},
		{"truncated", []byte{0x90, 0x80}, 0, false, true},
		{"empty", nil, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := forward.ParseVP8(tc.p)
			if ok == tc.bad || (!tc.bad && (d.HeaderSize != tc.n || d.StartOfFrame != tc.start)) {
				t.Fatalf("got %d %v ok=%v, want %d %v bad=%v", d.HeaderSize, d.StartOfFrame, ok, tc.n, tc.start, tc.bad)
			}
		})
	}
}

func TestAssemblerRebuildsFrames(t *testing.T) {
	f := keyFrame(t)
	a := newAssembler()
	pkts := packetize(t, f, 65533, 1000, 500) // wraps the sequence number
	if len(pkts) != 5 {
		t.Fatalf("%d packets, want 5", len(pkts))
	}
	// Out of order, with a retransmitted duplicate.
	for _, i := range []int{2, 0, 1, 1, 4, 3} {
		a.add(pkts[i])
	}
	// A frame with a packet missing.
	lost := packetize(t, f, 100, 2000, 500)
	for i, p := range lost {
		if i != 1 {
			a.add(p)
		}
	}
	frames, incomplete := a.frames()
	if len(frames) != 1 || incomplete != 1 {
		t.Fatalf("%d frames, %d incomplete; want 1 and 1", len(frames), incomplete)
	}
	if !bytes.Equal(frames[0], f) {
		t.Fatal("rebuilt frame differs")
	}
}

func record(t *testing.T, frames ...[]byte) *assembler {
	a := newAssembler()
	seq := uint16(1)
	for i, f := range frames {
		for _, p := range packetize(t, f, seq, uint32(3000*(i+1)), 700) {
			a.add(p)
			seq++
		}
	}
	return a
}

func TestPlainFramesDecode(t *testing.T) {
	f := keyFrame(t)
	r := analyse("TR", record(t, f, f), nil)
	if r.Frames != 2 || r.KeyFrames != 2 || r.KeyFramesDecoded != 2 || r.ClearHeaderOK != 2 || r.FirstPartitionFits != 2 || r.Width != 150 || r.Height != 100 {
		t.Fatalf("%+v", r)
	}
	if r.Opened != 0 {
		t.Fatalf("opened %d plain frames", r.Opened)
	}
}

func TestSealedFrames(t *testing.T) {
	f := keyFrame(t)
	delta := append([]byte{0x31, 0x02, 0x00}, bytes.Repeat([]byte{0x5a}, 200)...) // P bit set
	raw := bytes.Repeat([]byte{0x42}, 16)
	sf, sd := seal(t, f, raw, 3), seal(t, delta, raw, 3)
	a := record(t, sf, sd)

	none := analyse("TR", a, nil)
	if none.Frames != 2 || none.Sealed != 2 || none.ClearHeaderOK != 2 || none.Opened != 0 || len(none.KeyIndexes) != 1 || none.KeyIndexes[0] != 3 {
		t.Fatalf("without keys: %+v", none)
	}
	if !bytes.Equal(sf[:clearKeyFrame], f[:clearKeyFrame]) || bytes.Contains(sf, f[clearKeyFrame:clearKeyFrame+16]) {
		t.Fatal("the sealed frame must keep the clear header and nothing else of the plaintext")
	}

	wrong, _ := prepareKeys([]MediaKey{{Index: 3, Key: bytes.Repeat([]byte{0x43}, 16)}, {Index: 2, Key: raw}})
	if r := analyse("TR", a, wrong); r.Opened != 0 {
		t.Fatalf("opened with a wrong key or index: %+v", r)
	}

	right, _ := prepareKeys([]MediaKey{{Index: 3, Key: raw}})
	r := analyse("TR", a, right)
	if r.Opened != 2 || r.OpenedKeyFramesDecoded != 1 || r.RawSameAsOpened != 0 || r.Width != 150 {
		t.Fatalf("with the key: %+v", r)
	}
}

// TestFrameKeyMatchesWebCrypto: the key derivation and AES-GCM agree with
// WebCrypto's, as livekit-client uses it: the ciphertext below is what
// Node's crypto.subtle gives for "salon" with HKDF-SHA-256 (salt
// "LKFrameEncryptionKey", 128 zero bytes of info) of the key 00…0f, IV of
// twelve 7s and additional data 01 02 03.
func TestFrameKeyMatchesWebCrypto(t *testing.T) {
	raw := make([]byte, 16)
	for i := range raw {
		raw[i] = byte(i)
	}
	aead, err := frameKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := hex.DecodeString("a942b4526cfd7c07ddf8ba41099c79a0e19b41404f")
	got, err := aead.Open(nil, bytes.Repeat([]byte{7}, 12), ct, []byte{1, 2, 3})
	if err != nil || string(got) != "salon" {
		t.Fatalf("got %q, %v", got, err)
	}
}
