package participant

import (
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/sfu/buffer"
	"github.com/salonhq/salon/sfu/forward"
)

// MaxLayers is the number of simulcast layers a track may have
// (LiveKit's LOW, MEDIUM, HIGH).
const MaxLayers = 3

// layerActiveFor is how long a simulcast layer counts as active after its
// last packet.
const layerActiveFor = 1500 * time.Millisecond

// Each video stream keeps its packets of the last cacheKeep for
// retransmission, at most cacheSize of them (1.5 s of a layer sending
// 340 packets/s, about 3 Mbit/s); a slower layer's ring stays smaller
// (buffer.Cache).
const (
	cacheSize = 512
	cacheKeep = 1500 * time.Millisecond
)

// Counters are process-wide media counters, updated without locks.
type Counters struct {
	PacketsIn       atomic.Uint64
	BytesIn         atomic.Uint64
	PacketsOut      atomic.Uint64
	BytesOut        atomic.Uint64
	KeyframeRequest atomic.Uint64
	NACKed          atomic.Uint64 // packets subscribers asked again for
	Retransmitted   atomic.Uint64 // of those, resent from the cache
}

type layer struct {
	// cache keeps recent packets for retransmission (video only); set
	// before the layer's reader starts.
	cache      *buffer.Cache
	ssrc       atomic.Uint32
	lastPacket atomic.Int64 // unix nanos
	lastPLI    atomic.Int64
	width      uint32
	height     uint32
	bitrate    uint32
	// loss accounting, touched only by the layer's reader
	highest  uint16
	seen     bool
	received atomic.Uint32
	expected atomic.Uint32
}

// MediaTrack is one track a participant publishes, and the fan-out of its
// packets to the down tracks of its subscribers.
type MediaTrack struct {
	sid       string
	cid       string
	kind      livekit.TrackType
	owner     *Participant
	codec     forward.Codec
	mime      string
	clockRate uint32
	capab     webrtc.RTPCodecCapability
	log       *slog.Logger
	counters  *Counters
	keyEvery  time.Duration
	batch     Batcher

	mu       sync.Mutex
	info     *livekit.TrackInfo
	closed   bool
	nlayers  int
	simulcst bool

	layers [MaxLayers]layer
	downs  atomic.Pointer[[]*DownTrack]

	audioLevelID uint8
	levelSum     atomic.Uint64 // sum of linear levels × 1e6
	levelCount   atomic.Uint32

	readers sync.WaitGroup

	subscribedOnce atomic.Bool

	// dynacast state, touched only by the room's periodic work
	dynMax        int8
	dynLowerSince time.Time
}

func newMediaTrack(owner *Participant, info *livekit.TrackInfo, codec webrtc.RTPCodecParameters) *MediaTrack {
	t := &MediaTrack{
		sid:       info.Sid,
		kind:      info.Type,
		owner:     owner,
		codec:     forward.CodecFromMime(codec.MimeType),
		mime:      codec.MimeType,
		clockRate: codec.ClockRate,
		capab:     codec.RTPCodecCapability,
		log:       owner.log.With("track", info.Sid),
		counters:  owner.params.Counters,
		batch:     owner.params.Batch,
		keyEvery:  owner.params.KeyframeInterval,
		info:      info,
	}
	empty := []*DownTrack{}
	t.downs.Store(&empty)
	n := len(info.Layers)
	if n == 0 {
		n = 1
	}
	if n > MaxLayers {
		n = MaxLayers
	}
	t.nlayers = n
	t.simulcst = n > 1
	t.dynMax = int8(n - 1) // the publisher starts with every layer on
	for _, l := range info.Layers {
		q := int(l.Quality)
		if !t.simulcst {
			q = 0
		}
		if q >= 0 && q < MaxLayers {
			t.layers[q].width, t.layers[q].height, t.layers[q].bitrate = l.Width, l.Height, l.Bitrate
		}
	}
	return t
}

// SID is the track's server ID ("TR_…").
func (t *MediaTrack) SID() string { return t.sid }

// Kind is audio or video.
func (t *MediaTrack) Kind() livekit.TrackType { return t.kind }

// Owner is the publishing participant.
func (t *MediaTrack) Owner() *Participant { return t.owner }

// Info returns a copy of the track's protocol description.
func (t *MediaTrack) Info() *livekit.TrackInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return proto.Clone(t.info).(*livekit.TrackInfo)
}

func (t *MediaTrack) setMuted(muted bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.info.Muted == muted {
		return false
	}
	t.info.Muted = muted
	return true
}

// layerForRID maps a simulcast stream ID to a layer index. livekit-client
// names its encodings q, h and f (quarter, half, full).
func (t *MediaTrack) layerForRID(rid string) int8 {
	if !t.simulcst || rid == "" {
		return 0
	}
	t.mu.Lock()
	for _, l := range t.info.Layers {
		if l.Rid == rid {
			t.mu.Unlock()
			return int8(l.Quality)
		}
	}
	t.mu.Unlock()
	switch rid {
	case "q":
		return 0
	case "h":
		return 1
	case "f":
		return 2
	}
	return 0
}

// addLayer starts reading one RTP stream of the track.
func (t *MediaTrack) addLayer(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	idx := t.layerForRID(remote.RID())
	if idx < 0 || int(idx) >= MaxLayers {
		idx = 0
	}
	t.layers[idx].ssrc.Store(uint32(remote.SSRC()))
	if t.codec.IsVideo() && t.layers[idx].cache == nil {
		t.layers[idx].cache = buffer.New(cacheSize, cacheKeep)
	}
	if t.kind == livekit.TrackType_AUDIO {
		for _, e := range receiver.GetParameters().HeaderExtensions {
			if e.URI == audioLevelURI {
				t.audioLevelID = uint8(e.ID)
			}
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.readers.Add(1)
	t.mu.Unlock()
	go t.readLoop(remote, idx)
}

// readLoop is the media hot path for one incoming stream: read, inspect,
// and hand the packet to every down track, on this goroutine.
func (t *MediaTrack) readLoop(remote *webrtc.TrackRemote, idx int8) {
	defer t.readers.Done()
	buf := make([]byte, 1500)
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		t.handlePacket(buf[:n], idx, &hdr, &pkt, sc, time.Now().UnixNano())
	}
}

// handlePacket is the per-packet work of the hot path: parse, account,
// inspect the payload and hand the packet to every down track. It
// allocates nothing.
func (t *MediaTrack) handlePacket(b []byte, idx int8, hdr *rtp.Header, pkt *forward.Packet, sc *scratch, now int64) {
	n := len(b)
	hl, err := hdr.Unmarshal(b)
	if err != nil {
		return
	}
	end := n
	if hdr.Padding && end > hl {
		pad := int(b[end-1])
		if pad > end-hl {
			return
		}
		end -= pad
	}
	payload := b[hl:end]
	l := &t.layers[idx]
	if l.cache != nil {
		l.cache.Add(hdr.SequenceNumber, b, now)
	}
	l.lastPacket.Store(now)
	t.counters.PacketsIn.Add(1)
	t.counters.BytesIn.Add(uint64(n))
	t.account(l, hdr.SequenceNumber)

	*pkt = forward.Packet{
		Layer:          idx,
		SequenceNumber: hdr.SequenceNumber,
		Timestamp:      hdr.Timestamp,
		ArrivalNanos:   now,
		PayloadSize:    len(payload),
	}
	switch t.codec {
	case forward.CodecVP8:
		pkt.VP8, pkt.HasVP8 = forward.ParseVP8(payload)
		pkt.Keyframe = pkt.HasVP8 && pkt.VP8.Keyframe
	case forward.CodecOpus, forward.CodecRED:
		if t.audioLevelID != 0 {
			if ext := hdr.GetExtension(t.audioLevelID); len(ext) > 0 {
				t.observeLevel(ext[0] & 0x7f)
			}
		}
	default:
		if t.codec.IsVideo() {
			pkt.Keyframe = forward.IsKeyframe(t.codec, payload)
		}
	}
	downs := *t.downs.Load()
	if t.batch != nil && len(downs) > 1 {
		// Every subscriber's copy leaves in one sendmmsg.
		t.batch.Hold()
		for _, d := range downs {
			d.writeRTP(hdr, payload, pkt, sc)
		}
		t.batch.Release()
		return
	}
	for _, d := range downs {
		d.writeRTP(hdr, payload, pkt, sc)
	}
}

func (t *MediaTrack) account(l *layer, seq uint16) {
	if !l.seen {
		l.seen, l.highest = true, seq
		l.received.Add(1)
		l.expected.Add(1)
		return
	}
	l.received.Add(1)
	if d := int16(seq - l.highest); d > 0 {
		l.expected.Add(uint32(d))
		l.highest = seq
	}
}

// observeLevel records one audio-level header value (RFC 6464: 0 is
// loudest, 127 silence, in -dBov).
func (t *MediaTrack) observeLevel(dBov uint8) {
	t.levelSum.Add(uint64(levelTable[dBov]))
	t.levelCount.Add(1)
}

// TakeAudioLevel returns the mean linear audio level (0–1) since the last
// call and how many packets it covers.
func (t *MediaTrack) TakeAudioLevel() (level float64, packets uint32) {
	sum := t.levelSum.Swap(0)
	cnt := t.levelCount.Swap(0)
	if cnt == 0 {
		return 0, 0
	}
	return float64(sum) / 1e6 / float64(cnt), cnt
}

// TakeLoss returns the fraction of packets lost upstream since the last
// call, over all layers.
func (t *MediaTrack) TakeLoss() (lost float64, expected uint32) {
	var rec, exp uint32
	for i := range t.layers {
		rec += t.layers[i].received.Swap(0)
		exp += t.layers[i].expected.Swap(0)
	}
	if exp == 0 || rec >= exp {
		return 0, exp
	}
	return float64(exp-rec) / float64(exp), exp
}

// Layers describes the simulcast layers for layer selection.
func (t *MediaTrack) Layers(now time.Time) []forward.Layer {
	out := make([]forward.Layer, t.nlayers)
	t.fillLayers(out, now)
	return out
}

func (t *MediaTrack) fillLayers(out []forward.Layer, now time.Time) {
	cutoff := now.Add(-layerActiveFor).UnixNano()
	for i := range out {
		l := &t.layers[i]
		out[i] = forward.Layer{Width: l.width, Height: l.height, Bitrate: l.bitrate, Active: l.lastPacket.Load() > cutoff}
	}
}

// levelTable maps -dBov to linear level × 1e6, so the packet path does no
// floating point.
var levelTable = func() (t [128]uint32) {
	for i := range t {
		t[i] = uint32(math.Pow(10, -float64(i)/20) * 1e6)
	}
	return t
}()

// RequestKeyframe asks the publisher for a keyframe on layer, at most once
// per keyframe interval per layer.
func (t *MediaTrack) RequestKeyframe(idx int8) {
	if !t.codec.IsVideo() || idx < 0 || int(idx) >= MaxLayers {
		return
	}
	l := &t.layers[idx]
	ssrc := l.ssrc.Load()
	if ssrc == 0 {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(t.keyEvery) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	t.counters.KeyframeRequest.Add(1)
	t.owner.writePublisherRTCP(&rtcp.PictureLossIndication{MediaSSRC: ssrc})
}

func (t *MediaTrack) addDownTrack(d *DownTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	old := *t.downs.Load()
	next := make([]*DownTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	t.downs.Store(&next)
	return true
}

func (t *MediaTrack) removeDownTrack(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.downs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, o := range old {
		if o != d {
			next = append(next, o)
		}
	}
	t.downs.Store(&next)
}

// DownTracks returns the current subscribers' down tracks.
func (t *MediaTrack) DownTracks() []*DownTrack { return *t.downs.Load() }

// close detaches every down track (telling each subscriber) and waits for
// the readers, which end when the publisher connection closes.
func (t *MediaTrack) close() []*DownTrack {
	t.mu.Lock()
	t.closed = true
	downs := *t.downs.Load()
	empty := []*DownTrack{}
	t.downs.Store(&empty)
	t.mu.Unlock()
	return downs
}

// dynacastHold is how long a lower demand must last before layers are
// turned off at the publisher, so a resize or a subscriber's brief absence
// does not make it flap.
const dynacastHold = 3 * time.Second

// Dynacast works out which simulcast layers subscribers need and, when
// that changed, returns the SubscribedQualityUpdate for the publisher:
// unneeded layers are switched off at the encoder. Layers come back at
// once when wanted, go away only after dynacastHold. nil: no change.
func (t *MediaTrack) Dynacast(now time.Time) *livekit.SubscribedQualityUpdate {
	if !t.simulcst {
		return nil
	}
	want := forward.NoLayer
	for _, d := range t.DownTracks() {
		if l := d.DesiredLayer(); l > want {
			want = l
		}
	}
	switch {
	case want > t.dynMax:
		t.dynMax, t.dynLowerSince = want, time.Time{}
	case want < t.dynMax:
		if t.dynLowerSince.IsZero() {
			t.dynLowerSince = now
			return nil
		}
		if now.Sub(t.dynLowerSince) < dynacastHold {
			return nil
		}
		t.dynMax, t.dynLowerSince = want, time.Time{}
	default:
		t.dynLowerSince = time.Time{}
		return nil
	}
	qualities := make([]*livekit.SubscribedQuality, 0, MaxLayers)
	for q := livekit.VideoQuality_LOW; q <= livekit.VideoQuality_HIGH; q++ {
		qualities = append(qualities, &livekit.SubscribedQuality{Quality: q, Enabled: int8(q) <= t.dynMax})
	}
	// livekit-client matches the codec against its own lower-case name
	// ("vp8"); anything else reads as a backup codec to start.
	codec := strings.ToLower(t.mime[strings.IndexByte(t.mime, '/')+1:])
	return &livekit.SubscribedQualityUpdate{
		TrackSid:            t.sid,
		SubscribedQualities: qualities,
		SubscribedCodecs:    []*livekit.SubscribedCodec{{Codec: codec, Qualities: qualities}},
	}
}
