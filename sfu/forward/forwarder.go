package forward

// NoLayer means no layer is chosen (nothing is forwarded).
const NoLayer int8 = -1

// Packet is what the forwarder needs to know of one incoming RTP packet.
// The caller fills it from the RTP header and payload descriptor.
type Packet struct {
	Layer          int8 // simulcast stream, 0 (lowest) to 2; 0 without simulcast
	SequenceNumber uint16
	Timestamp      uint32
	ArrivalNanos   int64 // monotonic arrival time
	PayloadSize    int   // 0 for padding-only packets
	Keyframe       bool  // first packet of a keyframe
	VP8            VP8Descriptor
	HasVP8         bool
}

// Decision says whether and how to forward one packet.
type Decision struct {
	Forward        bool
	SequenceNumber uint16
	Timestamp      uint32
	// RewriteVP8 asks the caller to copy the payload and write PictureID and
	// TL0PICIDX into the copy (see RewriteVP8).
	RewriteVP8 bool
	PictureID  uint16
	TL0PICIDX  uint8
	// Switched is set on the first packet forwarded from a new layer.
	Switched bool
	// NeedKeyframe asks the caller to request a keyframe on TargetLayer:
	// the forwarder is waiting for one to start or switch.
	NeedKeyframe bool
}

// Forwarder rewrites one published track into one subscriber's stream.
// Not safe for concurrent use.
type Forwarder struct {
	clockRate uint32
	video     bool

	paused  bool
	target  int8
	current int8

	started     bool // something has been forwarded
	layerStart  uint16
	lastSeqIn   uint16
	lastSeqOut  uint16
	lastTsOut   uint32
	lastArrival int64
	seqOffset   uint16
	tsOffset    uint32

	vp8         bool
	picOffset   uint16
	lastPicOut  uint16
	tl0Offset   uint8
	lastTl0Out  uint8
	sentPackets uint64
}

// New returns a forwarder for a track of codec c sampled at clockRate Hz.
// It starts with target layer 0 and forwards once a layer is set.
func New(c Codec, clockRate uint32) *Forwarder {
	f := &Forwarder{}
	f.Reset(c, clockRate)
	return f
}

// Reset re-initialises f in place for a new track.
func (f *Forwarder) Reset(c Codec, clockRate uint32) {
	*f = Forwarder{clockRate: clockRate, video: c.IsVideo(), vp8: c == CodecVP8, target: 0, current: NoLayer}
	if f.clockRate == 0 {
		f.clockRate = 90000
	}
}

// TargetLayer is the layer the forwarder wants to be on.
func (f *Forwarder) TargetLayer() int8 { return f.target }

// CurrentLayer is the layer being forwarded, NoLayer before the first
// packet or while paused.
func (f *Forwarder) CurrentLayer() int8 { return f.current }

// Paused reports whether forwarding is paused.
func (f *Forwarder) Paused() bool { return f.paused }

// Forwarded is the number of packets forwarded so far.
func (f *Forwarder) Forwarded() uint64 { return f.sentPackets }

// SetTargetLayer chooses the layer to forward; NoLayer pauses. It returns
// true when a keyframe on the new target is needed (a switch or a start).
func (f *Forwarder) SetTargetLayer(l int8) bool {
	if l == NoLayer {
		f.paused = true
		f.current = NoLayer
		return false
	}
	f.paused = false
	f.target = l
	return f.video && f.current != l
}

// Pause stops forwarding until Resume; the stream continues seamlessly
// (sequence numbers without gaps) afterwards.
func (f *Forwarder) Pause() {
	f.paused = true
	f.current = NoLayer
}

// Resume undoes Pause. It returns true if a keyframe is needed.
func (f *Forwarder) Resume() bool {
	if !f.paused {
		return false
	}
	f.paused = false
	return f.video
}

// Forward decides the fate of p.
func (f *Forwarder) Forward(p *Packet) Decision {
	if f.paused {
		return Decision{}
	}
	if p.Layer != f.current {
		if p.Layer != f.target {
			return Decision{}
		}
		// Video can only start on, or switch to, a keyframe; audio any time.
		if f.video && !p.Keyframe {
			return Decision{NeedKeyframe: true}
		}
		f.switchTo(p)
		d := f.emit(p)
		d.Switched = true
		return d
	}
	diff := int16(p.SequenceNumber - f.lastSeqIn)
	if diff <= 0 {
		// Reordered or repeated: forward only what belongs to this run of
		// the layer, mapped with the current offsets.
		if int16(p.SequenceNumber-f.layerStart) < 0 || p.PayloadSize == 0 {
			return Decision{}
		}
		return f.rewrite(p)
	}
	if p.PayloadSize == 0 && diff == 1 {
		// Padding-only probe: swallow it without leaving a hole.
		f.lastSeqIn = p.SequenceNumber
		f.seqOffset++
		return Decision{}
	}
	return f.emit(p)
}

// switchTo sets the offsets so that p follows the last forwarded packet.
func (f *Forwarder) switchTo(p *Packet) {
	f.current = p.Layer
	f.layerStart = p.SequenceNumber
	if !f.started {
		// Keep the publisher's numbering for the first run.
		f.seqOffset, f.tsOffset = 0, 0
		f.lastSeqIn = p.SequenceNumber - 1
		if p.HasVP8 {
			f.picOffset, f.tl0Offset = 0, 0
		}
		f.started = true
		return
	}
	f.seqOffset = p.SequenceNumber - (f.lastSeqOut + 1)
	step := uint32(1)
	if f.lastArrival != 0 && p.ArrivalNanos > f.lastArrival {
		elapsed := uint64(p.ArrivalNanos - f.lastArrival)
		if s := uint32(elapsed * uint64(f.clockRate) / 1e9); s > 0 {
			step = s
		}
	}
	f.tsOffset = p.Timestamp - (f.lastTsOut + step)
	f.lastSeqIn = p.SequenceNumber - 1
	if p.HasVP8 {
		f.picOffset = (p.VP8.PictureID - (f.lastPicOut + 1)) & 0x7fff
		f.tl0Offset = p.VP8.TL0PICIDX - (f.lastTl0Out + 1)
	}
}

// emit forwards an in-order packet and records it as the newest.
func (f *Forwarder) emit(p *Packet) Decision {
	d := f.rewrite(p)
	f.lastSeqIn = p.SequenceNumber
	f.lastSeqOut = d.SequenceNumber
	f.lastTsOut = d.Timestamp
	f.lastArrival = p.ArrivalNanos
	if d.RewriteVP8 || p.HasVP8 {
		f.lastPicOut = d.PictureID
		f.lastTl0Out = d.TL0PICIDX
	}
	return d
}

func (f *Forwarder) rewrite(p *Packet) Decision {
	f.sentPackets++
	d := Decision{
		Forward:        true,
		SequenceNumber: p.SequenceNumber - f.seqOffset,
		Timestamp:      p.Timestamp - f.tsOffset,
	}
	if p.HasVP8 && f.vp8 {
		d.PictureID = (p.VP8.PictureID - f.picOffset) & 0x7fff
		if !p.VP8.PictureID15 {
			d.PictureID &= 0x7f
		}
		d.TL0PICIDX = p.VP8.TL0PICIDX - f.tl0Offset
		d.RewriteVP8 = f.picOffset != 0 || f.tl0Offset != 0
	}
	return d
}
