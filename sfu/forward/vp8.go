package forward

// VP8Descriptor is the part of the VP8 payload descriptor (RFC 7741 §4.2)
// that forwarding rewrites or inspects.
type VP8Descriptor struct {
	HeaderSize    int  // bytes of descriptor before the VP8 payload header
	PictureIDAt   int  // offset of the picture ID, 0 if absent
	PictureID15   bool // 15-bit picture ID (M bit) rather than 7-bit
	PictureID     uint16
	TL0PICIDXAt   int // offset of TL0PICIDX, 0 if absent
	TL0PICIDX     uint8
	StartOfFrame  bool // S bit with partition index 0
	Keyframe      bool // start of a keyframe
	TemporalLayer int8 // TID, -1 if absent
}

// ParseVP8 reads the descriptor at the front of payload.
func ParseVP8(p []byte) (d VP8Descriptor, ok bool) {
	d.TemporalLayer = -1
	if len(p) < 1 {
		return d, false
	}
	b0 := p[0]
	x, s, pid := b0&0x80 != 0, b0&0x10 != 0, b0&0x07
	i := 1
	if x {
		if len(p) <= i {
			return d, false
		}
		b1 := p[i]
		i++
		iBit, lBit, tBit, kBit := b1&0x80 != 0, b1&0x40 != 0, b1&0x20 != 0, b1&0x10 != 0
		if iBit {
			if len(p) <= i {
				return d, false
			}
			d.PictureIDAt = i
			if p[i]&0x80 != 0 {
				if len(p) <= i+1 {
					return d, false
				}
				d.PictureID15 = true
				d.PictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				i += 2
			} else {
				d.PictureID = uint16(p[i])
				i++
			}
		}
		if lBit {
			if len(p) <= i {
				return d, false
			}
			d.TL0PICIDXAt = i
			d.TL0PICIDX = p[i]
			i++
		}
		if tBit || kBit {
			if len(p) <= i {
				return d, false
			}
			if tBit {
				d.TemporalLayer = int8(p[i] >> 6)
			}
			i++
		}
	}
	d.HeaderSize = i
	d.StartOfFrame = s && pid == 0
	if d.StartOfFrame && len(p) > i {
		// VP8 payload header: P bit (inverse keyframe flag) is bit 0.
		d.Keyframe = p[i]&0x01 == 0
	}
	return d, true
}

// RewriteVP8 writes picture ID and TL0PICIDX into p in place, at the
// offsets d was parsed with, keeping the original field widths.
func RewriteVP8(p []byte, d *VP8Descriptor, pictureID uint16, tl0 uint8) {
	if at := d.PictureIDAt; at > 0 {
		if d.PictureID15 {
			p[at] = 0x80 | byte(pictureID>>8)&0x7f
			p[at+1] = byte(pictureID)
		} else {
			p[at] = byte(pictureID) & 0x7f
		}
	}
	if at := d.TL0PICIDXAt; at > 0 {
		p[at] = tl0
	}
}
