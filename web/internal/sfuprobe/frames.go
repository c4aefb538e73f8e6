package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"sort"

	"github.com/pion/rtp"
	"golang.org/x/image/vp8"

	"github.com/salonhq/salon/sfu/forward"
)

// VP8 in RTP: RFC 7741. A frame is the payloads (after each packet's
// payload descriptor) of the packets from the one whose descriptor has S
// set and partition index 0 up to the one with the RTP marker bit, in
// sequence order, all sharing one RTP timestamp.

type packet struct {
	seq     uint16
	payload []byte // after the VP8 descriptor
	start   bool
	marker  bool
}

// assembler collects one track's packets and rebuilds its VP8 frames.
// Retransmitted duplicates are harmless (keyed by sequence number).
type assembler struct {
	byTS map[uint32]map[uint16]packet
	// order of first sight of each timestamp, to return frames in order
	order   []uint32
	packets int
	bad     int // packets whose descriptor did not parse
}

func newAssembler() *assembler { return &assembler{byTS: map[uint32]map[uint16]packet{}} }

// add records one RTP packet (header included); raw may be reused after.
func (a *assembler) add(raw []byte) {
	var p rtp.Packet
	if err := p.Unmarshal(raw); err != nil || len(p.Payload) == 0 {
		a.bad++
		return
	}
	d, ok := forward.ParseVP8(p.Payload)
	if !ok {
		a.bad++
		return
	}
	a.packets++
	m := a.byTS[p.Timestamp]
	if m == nil {
		m = map[uint16]packet{}
		a.byTS[p.Timestamp] = m
		a.order = append(a.order, p.Timestamp)
	}
	m[p.SequenceNumber] = packet{seq: p.SequenceNumber, payload: bytes.Clone(p.Payload[d.HeaderSize:]), start: d.StartOfFrame, marker: p.Marker}
}

// frames returns every frame whose packets all arrived, in order of
// arrival, and how many timestamps had an incomplete frame.
func (a *assembler) frames() (out [][]byte, incomplete int) {
	for _, ts := range a.order {
		m := a.byTS[ts]
		ps := make([]packet, 0, len(m))
		for _, p := range m {
			ps = append(ps, p)
		}
		// Sequence order, wrap-around aware: relative to the smallest gap.
		first := ps[0].seq
		for _, p := range ps {
			if int16(p.seq-first) < 0 {
				first = p.seq
			}
		}
		sort.Slice(ps, func(i, j int) bool { return uint16(ps[i].seq-first) < uint16(ps[j].seq-first) })
		ok := ps[0].start && ps[len(ps)-1].marker
		for i := 1; ok && i < len(ps); i++ {
			ok = ps[i].seq == ps[i-1].seq+1
		}
		if !ok {
			incomplete++
			continue
		}
		var f []byte
		for _, p := range ps {
			f = append(f, p.payload...)
		}
		out = append(out, f)
	}
	return out, incomplete
}

// LiveKit's end-to-end encryption of a video frame (livekit-client
// src/e2ee/worker/FrameCryptor.ts, encodeFunction): the first bytes of the
// VP8 frame stay clear — 10 for a key frame (the 3-byte frame tag, the
// start code and the dimensions, RFC 6386 section 9.1), 3 for a delta
// frame (the frame tag) —, then AES-GCM ciphertext of the rest with its
// 16-byte tag (the clear bytes are its additional data), the 12-byte IV,
// and a 2-byte trailer: the IV's length (12) and the key index.
const (
	clearKeyFrame   = 10
	clearDeltaFrame = 3
	ivLength        = 12
	gcmTagLength    = 16
	trailerLength   = 2
	// lkSalt is livekit-client's default ratchetSalt, the HKDF salt.
	lkSalt = "LKFrameEncryptionKey"
)

// vp8Tag is what the clear 3-byte VP8 frame tag says (RFC 6386 9.1).
type vp8Tag struct {
	key       bool
	firstPart int
}

func parseTag(f []byte) (vp8Tag, bool) {
	if len(f) < 3 {
		return vp8Tag{}, false
	}
	raw := uint32(f[0]) | uint32(f[1])<<8 | uint32(f[2])<<16
	return vp8Tag{key: raw&1 == 0, firstPart: int(raw >> 5)}, true
}

// keyFrameSize reads a key frame's start code and dimensions (bytes 3–9).
func keyFrameSize(f []byte) (w, h int, ok bool) {
	if len(f) < clearKeyFrame || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int(f[6]) | int(f[7]&0x3f)<<8, int(f[8]) | int(f[9]&0x3f)<<8, true
}

// decodePlain decodes f as a VP8 key frame with a VP8 decoder
// (golang.org/x/image/vp8, which decodes key frames only).
func decodePlain(f []byte) (*image.YCbCr, error) {
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(f), len(f))
	fh, err := d.DecodeFrameHeader()
	if err != nil {
		return nil, err
	}
	if !fh.KeyFrame {
		return nil, errors.New("not a key frame")
	}
	return d.DecodeFrame()
}

func samePicture(a, b *image.YCbCr) bool {
	return a.Rect == b.Rect && bytes.Equal(a.Y, b.Y) && bytes.Equal(a.Cb, b.Cb) && bytes.Equal(a.Cr, b.Cr)
}

// sealed is a frame read as LiveKit's encrypted frame format.
type sealed struct {
	header     []byte // the clear bytes
	ciphertext []byte // with the GCM tag
	iv         []byte
	keyIndex   int
}

// parseSealed splits f per LiveKit's format; ok is false when f cannot be
// such a frame (too short, a trailer that does not say a 12-byte IV).
func parseSealed(f []byte) (s sealed, ok bool) {
	tag, ok := parseTag(f)
	if !ok {
		return s, false
	}
	clear := clearDeltaFrame
	if tag.key {
		clear = clearKeyFrame
	}
	if len(f) < clear+gcmTagLength+ivLength+trailerLength || int(f[len(f)-2]) != ivLength {
		return s, false
	}
	end := len(f) - trailerLength
	return sealed{
		header:     f[:clear],
		ciphertext: f[clear : end-ivLength],
		iv:         f[end-ivLength : end],
		keyIndex:   int(f[len(f)-1]),
	}, true
}

// MediaKey is one member's media key as MatrixRTC hands it to
// livekit-client (the raw bytes of io.element.call.encryption_keys).
type MediaKey struct {
	Index int    `json:"index"`
	Key   []byte `json:"key"` // base64 in JSON
}

// frameKey derives the AES-GCM key livekit-client derives from a raw key
// (utils.ts deriveKeys: HKDF-SHA-256, salt "LKFrameEncryptionKey", 128
// zero bytes of info, a 128-bit AES key).
func frameKey(raw []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, raw, []byte(lkSalt), string(make([]byte, 128)), 16)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// open decrypts s with the first key of the right index that
// authenticates it, and returns the plaintext VP8 frame.
func (s sealed) open(keys []keyed) ([]byte, bool) {
	for _, k := range keys {
		if k.index != s.keyIndex {
			continue
		}
		body, err := k.aead.Open(nil, s.iv, s.ciphertext, s.header)
		if err == nil {
			return append(bytes.Clone(s.header), body...), true
		}
	}
	return nil, false
}

type keyed struct {
	index int
	aead  cipher.AEAD
}

func prepareKeys(keys []MediaKey) ([]keyed, error) {
	var out []keyed
	for _, k := range keys {
		a, err := frameKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", k.Index, err)
		}
		out = append(out, keyed{index: k.Index, aead: a})
	}
	return out, nil
}

// TrackReport is what the probe found in one forwarded VP8 track.
type TrackReport struct {
	SID        string `json:"sid"`
	Packets    int    `json:"packets"`
	BadPackets int    `json:"badPackets"`
	Frames     int    `json:"frames"`
	KeyFrames  int    `json:"keyFrames"`
	Incomplete int    `json:"incomplete"`
	// ClearHeaderOK: frames whose clear bytes are a VP8 frame tag (and,
	// for key frames, the start code 9d 01 2a and non-zero dimensions).
	ClearHeaderOK int `json:"clearHeaderOK"`
	// KeyFramesDecoded: key frames a VP8 decoder decodes as they are, to
	// a picture of the size their header announces.
	KeyFramesDecoded int `json:"keyFramesDecoded"`
	// Sealed: frames in LiveKit's encrypted format (trailer: IV length 12,
	// key index; long enough for the GCM tag and IV).
	Sealed int `json:"sealed"`
	// FirstPartitionFits: frames whose first partition, as the tag says,
	// fits in the frame — true of every well-formed VP8 frame.
	FirstPartitionFits int `json:"firstPartitionFits"`
	// Opened: sealed frames that AES-GCM authenticates and decrypts with
	// one of the keys given; OpenedKeyFramesDecoded: key frames among
	// them that then decode with the VP8 decoder.
	Opened                 int `json:"opened"`
	OpenedKeyFramesDecoded int `json:"openedKeyFramesDecoded"`
	// RawSameAsOpened: opened key frames whose forwarded bytes, given to
	// the VP8 decoder as they are, make the same picture as the decrypted
	// frame (it must be none: the forwarded bytes do not show the video).
	RawSameAsOpened int `json:"rawSameAsOpened"`
	// KeyIndexes seen in the trailers.
	KeyIndexes []int  `json:"keyIndexes"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	FirstError string `json:"firstDecodeError,omitempty"`
}

// analyse checks every complete frame of a track.
func analyse(sid string, a *assembler, keys []keyed) TrackReport {
	r := TrackReport{SID: sid, Packets: a.packets, BadPackets: a.bad}
	frames, incomplete := a.frames()
	r.Incomplete = incomplete
	indexes := map[int]bool{}
	for _, f := range frames {
		r.Frames++
		tag, ok := parseTag(f)
		if !ok {
			continue
		}
		var rawPic *image.YCbCr
		clearOK := true
		if tag.key {
			r.KeyFrames++
			w, h, ok := keyFrameSize(f)
			clearOK = ok && w > 0 && h > 0
			if ok {
				r.Width, r.Height = w, h
			}
			raw, err := decodePlain(f)
			if err == nil && raw.Rect.Dx() == w && raw.Rect.Dy() == h {
				r.KeyFramesDecoded++
			} else if err != nil && r.FirstError == "" {
				r.FirstError = err.Error()
			}
			rawPic = raw
		}
		if clearOK {
			r.ClearHeaderOK++
		}
		hdr := clearDeltaFrame
		if tag.key {
			hdr = clearKeyFrame
		}
		if hdr+tag.firstPart <= len(f) {
			r.FirstPartitionFits++
		}
		s, ok := parseSealed(f)
		if !ok {
			continue
		}
		r.Sealed++
		indexes[s.keyIndex] = true
		if plain, ok := s.open(keys); ok {
			r.Opened++
			if tag.key {
				if pic, err := decodePlain(plain); err == nil && pic.Rect.Dx() == r.Width && pic.Rect.Dy() == r.Height {
					r.OpenedKeyFramesDecoded++
					if rawPic != nil && samePicture(rawPic, pic) {
						r.RawSameAsOpened++
					}
				}
			}
		}
	}
	for i := range indexes {
		r.KeyIndexes = append(r.KeyIndexes, i)
	}
	sort.Ints(r.KeyIndexes)
	return r
}
