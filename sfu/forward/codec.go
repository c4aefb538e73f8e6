package forward

import "strings"

// Codec is the payload format of a track, as far as forwarding cares.
type Codec uint8

// Codecs the SFU forwards. CodecUnknown is forwarded as opaque audio.
const (
	CodecUnknown Codec = iota
	CodecOpus
	CodecRED
	CodecVP8
	CodecVP9
	CodecH264
	CodecAV1
)

var codecNames = [...]string{"unknown", "opus", "red", "vp8", "vp9", "h264", "av1"}

func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return "unknown"
}

// IsVideo reports whether packets of this codec carry video frames.
func (c Codec) IsVideo() bool { return c >= CodecVP8 }

// CodecFromMime maps an RTP mime type ("video/VP8") to a Codec.
func CodecFromMime(mime string) Codec {
	_, sub, _ := strings.Cut(strings.ToLower(mime), "/")
	switch sub {
	case "opus":
		return CodecOpus
	case "red":
		return CodecRED
	case "vp8":
		return CodecVP8
	case "vp9":
		return CodecVP9
	case "h264":
		return CodecH264
	case "av1":
		return CodecAV1
	}
	return CodecUnknown
}

// IsKeyframe reports whether payload is the first packet of a frame that
// can be decoded without earlier frames. It looks only at the payload
// descriptor and never allocates.
func IsKeyframe(c Codec, payload []byte) bool {
	switch c {
	case CodecVP8:
		d, ok := ParseVP8(payload)
		return ok && d.Keyframe
	case CodecVP9:
		return vp9Keyframe(payload)
	case CodecH264:
		return h264Keyframe(payload)
	case CodecAV1:
		return av1Keyframe(payload)
	}
	return false
}

// vp9Keyframe: RFC 9628 payload descriptor. A keyframe's first packet has
// B (start of frame) set, P (inter-picture predicted) clear, and belongs to
// spatial layer 0 when layer indices are present.
func vp9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	iBit, pBit, lBit, fBit, bBit := b0&0x80 != 0, b0&0x40 != 0, b0&0x20 != 0, b0&0x10 != 0, b0&0x08 != 0
	if pBit || !bBit {
		return false
	}
	i := 1
	if iBit {
		if len(p) <= i {
			return false
		}
		if p[i]&0x80 != 0 {
			i += 2
		} else {
			i++
		}
	}
	if lBit {
		if len(p) <= i {
			return false
		}
		sid := (p[i] >> 1) & 0x07
		if sid != 0 {
			return false
		}
		_ = fBit
	}
	return true
}

// h264Keyframe: an IDR slice or SPS, alone (types 1-23), in a STAP-A (24)
// or at the start of an FU-A (28). RFC 6184.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24:
		i := 1
		for i+2 < len(p) {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if i >= len(p) {
				break
			}
			if nt := p[i] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += size
		}
	case t == 28:
		if len(p) < 2 {
			return false
		}
		start, nt := p[1]&0x80 != 0, p[1]&0x1f
		return start && (nt == 5 || nt == 7)
	}
	return false
}

// av1Keyframe: the aggregation header's N bit marks the first packet of a
// new coded video sequence, which starts with a keyframe.
func av1Keyframe(p []byte) bool {
	return len(p) > 0 && p[0]&0x08 != 0
}
