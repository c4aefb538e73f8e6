package participant

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu/buffer"
	"github.com/salonhq/salon/sfu/forward"
)

var errCodecNotNegotiated = errors.New("participant: subscriber did not accept the track's codec")

const sentSize = 512

type sentPacket struct {
	valid   bool
	rewrite bool
	layer   int8
	outSeq  uint16
	inSeq   uint16
	ts      uint32
	pic     uint16
	tl0     uint8
}

// DownTrack is one published track as one subscriber receives it. It is
// the webrtc.TrackLocal on the subscriber's connection; the publisher's
// reader goroutines call writeRTP for every packet.
type DownTrack struct {
	track    *MediaTrack
	sub      *Participant
	streamID string
	log      *slog.Logger
	counters *Counters
	budget   uint32

	mu  sync.Mutex
	fwd forward.Forwarder
	req forward.Request
	// congestion: the best layer the subscriber's reported loss allows
	lossCap    int8
	badReports int
	capSince   time.Time
	// bandwidth: the best layer the connection's estimate allows
	bwCap    int8
	bwSince  time.Time
	bwRetry  time.Duration
	layerBuf [MaxLayers]forward.Layer

	bound     atomic.Bool
	ssrc      uint32
	pt        uint8
	writer    webrtc.TrackLocalWriter
	redToOpus bool
	// head is the stream's interceptor chain (DirectOut.head), found on
	// the first write after Bind; written through with a reused
	// attributes map instead of writer's new one per packet.
	head atomic.Pointer[headWriter]

	// sent maps the last sentSize outgoing sequence numbers back to the
	// cached incoming packet, for NACKs; guarded by mu. Video only.
	sent []sentPacket
	// rtcpMu serializes handleRTCP: the subscriber's RTCP arrives on the
	// down track's reader (pion's path) or on the SFU socket's reader
	// (RTCPRouter); rtx* are its.
	rtcpMu   sync.Mutex
	rtxBuf   []byte
	rtxHdr   rtp.Header
	rtxAttrs interceptor.Attributes

	sender       *webrtc.RTPSender
	transceiver  *webrtc.RTPTransceiver
	rtcpDone     chan struct{}
	fractionLost atomic.Uint32 // last RR fraction lost, 0–255
}

func newDownTrack(t *MediaTrack, sub *Participant) *DownTrack {
	d := &DownTrack{
		track:    t,
		sub:      sub,
		streamID: t.owner.SID() + "|" + t.sid,
		log:      sub.log.With("track", t.sid),
		counters: sub.params.Counters,
		budget:   sub.params.MaxSubscriberBitrate,
		req:      forward.Request{MaxLayer: MaxLayers - 1},
		lossCap:  MaxLayers - 1,
		bwCap:    MaxLayers - 1,
		bwRetry:  bweRetry,
	}
	d.fwd.Reset(t.codec, t.clockRate)
	if t.codec.IsVideo() {
		d.sent = make([]sentPacket, sentSize)
		d.rtxBuf = make([]byte, buffer.MaxPacket)
		d.rtxHdr.Extensions = make([]rtp.Extension, 0, 4)
		d.rtxAttrs = interceptor.Attributes{}
	}
	d.SelectLayer(time.Now())
	return d
}

// ID is the track SID: livekit-client reads the subscribed track's SID
// from the MediaStreamTrack ID.
func (d *DownTrack) ID() string { return d.track.sid }

// RID is empty: a subscriber receives one stream.
func (d *DownTrack) RID() string { return "" }

// StreamID is "PA_…|TR_…", the pair livekit-client unpacks to find the
// publishing participant.
func (d *DownTrack) StreamID() string { return d.streamID }

// Kind is the media kind.
func (d *DownTrack) Kind() webrtc.RTPCodecType {
	if d.track.kind == livekit.TrackType_AUDIO {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

// Track is the published track this down track forwards.
func (d *DownTrack) Track() *MediaTrack { return d.track }

// Bind is called by pion once the subscriber's answer fixes the codec.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var chosen *webrtc.RTPCodecParameters
	var opus *webrtc.RTPCodecParameters
	for i, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.track.mime) && chosen == nil {
			chosen = &ctx.CodecParameters()[i]
		}
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) && opus == nil {
			opus = &ctx.CodecParameters()[i]
		}
	}
	if chosen == nil && d.track.codec == forward.CodecRED && opus != nil {
		chosen = opus
		d.redToOpus = true
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, errCodecNotNegotiated
	}
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(chosen.PayloadType)
	d.writer = ctx.WriteStream()
	d.head.Store(nil)
	d.sub.params.Direct.bindTrack(d.ssrc, d)
	d.bound.Store(true)
	d.track.RequestKeyframe(d.TargetLayer())
	if !d.track.subscribedOnce.Swap(true) {
		// livekit-client raises LocalTrackSubscribed on this.
		d.track.owner.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackSubscribed{TrackSubscribed: &livekit.TrackSubscribed{TrackSid: d.track.sid}}})
	}
	return *chosen, nil
}

// Unbind stops writing.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(false)
	d.sub.params.Direct.unbindTrack(d.ssrc, d)
	return nil
}

// TargetLayer is the simulcast layer this subscriber should receive.
func (d *DownTrack) TargetLayer() int8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.TargetLayer()
}

// CurrentLayer is the simulcast layer being forwarded, forward.NoLayer if
// none yet.
func (d *DownTrack) CurrentLayer() int8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fwd.CurrentLayer()
}

// UpdateSettings applies a subscriber's UpdateTrackSettings.
func (d *DownTrack) UpdateSettings(s *livekit.UpdateTrackSettings) {
	d.mu.Lock()
	d.req.Disabled = s.Disabled
	d.req.Width, d.req.Height = s.Width, s.Height
	d.req.MaxLayer = MaxLayers - 1
	if s.Width == 0 && s.Height == 0 && s.Quality != livekit.VideoQuality_HIGH {
		if s.Quality == livekit.VideoQuality_OFF {
			d.req.Disabled = true
		} else {
			d.req.MaxLayer = int8(s.Quality)
		}
	}
	d.mu.Unlock()
	d.SelectLayer(time.Now())
}

// SelectLayer re-evaluates the layer to forward from the subscriber's
// request and which layers the publisher is sending. The room calls it
// periodically, so a layer that stops (dynacast, publisher bandwidth) is
// left for one that flows.
func (d *DownTrack) SelectLayer(now time.Time) {
	t := d.track
	d.mu.Lock()
	layers := d.layerBuf[:t.nlayers]
	t.fillLayers(layers, now)
	var target int8
	if d.req.Disabled {
		target = forward.NoLayer
	} else if !t.simulcst {
		target = 0
	} else {
		req := d.req
		req.MaxLayer = min(req.MaxLayer, d.lossCap, d.bwCap)
		target = forward.SelectLayer(layers, req, d.budget)
		if target == forward.NoLayer {
			// Nothing active yet: aim at what was asked for, so the first
			// keyframe of that layer starts the stream.
			target = forward.SelectLayer(allActive(layers), req, d.budget)
		}
	}
	changed := target != d.fwd.TargetLayer() || (target != forward.NoLayer && d.fwd.Paused())
	needKey := false
	if changed {
		needKey = d.fwd.SetTargetLayer(target)
	}
	d.mu.Unlock()
	if needKey && d.bound.Load() {
		t.RequestKeyframe(target)
	}
}

// DesiredLayer is the layer this subscriber would take if every layer
// were flowing (NoLayer: none), what dynacast keeps the publisher sending.
func (d *DownTrack) DesiredLayer() int8 {
	t := d.track
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.req.Disabled {
		return forward.NoLayer
	}
	if !t.simulcst {
		return 0
	}
	var layers [MaxLayers]forward.Layer
	t.fillLayers(layers[:t.nlayers], time.Time{})
	return forward.SelectLayer(allActive(layers[:t.nlayers]), d.req, d.budget)
}

func allActive(in []forward.Layer) []forward.Layer {
	var out [MaxLayers]forward.Layer
	n := copy(out[:], in)
	for i := range out[:n] {
		out[i].Active = true
	}
	return out[:n]
}

// scratch is a reader goroutine's own space for building outgoing
// packets: the hot path writes through it without allocating or sharing.
type scratch struct {
	hdr   rtp.Header
	buf   []byte
	attrs interceptor.Attributes
}

func newScratch() *scratch {
	return &scratch{hdr: rtp.Header{Extensions: make([]rtp.Extension, 0, 4)}, buf: make([]byte, buffer.MaxPacket), attrs: interceptor.Attributes{}}
}

type headWriter struct{ w interceptor.RTPWriter }

// write sends one packet down the stream's interceptor chain. attrs is
// the caller's own map: the interceptors only set and read it during the
// call (the bandwidth estimator stores its TWCC extension ID in it).
func (d *DownTrack) write(h *rtp.Header, payload []byte, attrs interceptor.Attributes) (int, error) {
	hw := d.head.Load()
	if hw == nil {
		if w := d.sub.params.Direct.head(d.ssrc); w != nil {
			hw = &headWriter{w}
			d.head.Store(hw)
		}
	}
	if hw == nil {
		return d.writer.WriteRTP(h, payload)
	}
	return hw.w.Write(h, payload, attrs)
}

// writeRTP is the per-packet, per-subscriber step of the hot path. s
// belongs to the calling reader goroutine.
func (d *DownTrack) writeRTP(in *rtp.Header, payload []byte, p *forward.Packet, s *scratch) {
	if !d.bound.Load() {
		return
	}
	d.mu.Lock()
	dec := d.fwd.Forward(p)
	target := d.fwd.TargetLayer()
	if dec.Forward && d.sent != nil {
		d.sent[dec.SequenceNumber%sentSize] = sentPacket{
			valid: true, rewrite: dec.RewriteVP8, layer: p.Layer, outSeq: dec.SequenceNumber, inSeq: p.SequenceNumber,
			ts: dec.Timestamp, pic: dec.PictureID, tl0: dec.TL0PICIDX,
		}
	}
	d.mu.Unlock()
	if !dec.Forward {
		if dec.NeedKeyframe {
			d.track.RequestKeyframe(target)
		}
		return
	}
	h := &s.hdr
	h.Version = 2
	h.Padding = false
	h.Marker = in.Marker
	h.PayloadType = d.pt
	h.SequenceNumber = dec.SequenceNumber
	h.Timestamp = dec.Timestamp
	h.SSRC = d.ssrc
	h.CSRC = nil
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = h.Extensions[:0]
	out := payload
	if dec.RewriteVP8 && len(payload) <= len(s.buf) {
		n := copy(s.buf, payload)
		out = s.buf[:n]
		forward.RewriteVP8(out, &p.VP8, dec.PictureID, dec.TL0PICIDX)
	}
	if d.redToOpus {
		out = redPrimary(out)
		if out == nil {
			return
		}
	}
	if _, err := d.write(h, out, s.attrs); err != nil {
		return
	}
	d.counters.PacketsOut.Add(1)
	d.counters.BytesOut.Add(uint64(len(out) + 12))
}

// redPrimary returns the primary (last) block of an RFC 2198 payload.
func redPrimary(p []byte) []byte {
	i, skip := 0, 0
	for {
		if i >= len(p) {
			return nil
		}
		if p[i]&0x80 == 0 {
			i++ // last header: one byte
			break
		}
		if i+4 > len(p) {
			return nil
		}
		skip += int(p[i+2]&0x03)<<8 | int(p[i+3])
		i += 4
	}
	if i+skip > len(p) {
		return nil
	}
	return p[i+skip:]
}

// retransmit resends one packet a subscriber reported lost, from the
// publisher stream's cache, rewritten as it was first sent. Runs under
// rtcpMu.
func (d *DownTrack) retransmit(seq uint16) {
	if d.sent == nil || !d.bound.Load() {
		return
	}
	d.counters.NACKed.Add(1)
	d.mu.Lock()
	e := d.sent[seq%sentSize]
	d.mu.Unlock()
	if !e.valid || e.outSeq != seq || e.layer < 0 || int(e.layer) >= MaxLayers {
		return
	}
	cache := d.track.layers[e.layer].cache
	if cache == nil {
		return
	}
	n := cache.Get(e.inSeq, d.rtxBuf)
	if n == 0 {
		return
	}
	h := &d.rtxHdr
	hl, err := h.Unmarshal(d.rtxBuf[:n])
	if err != nil {
		return
	}
	end := n
	if h.Padding && end > hl {
		if pad := int(d.rtxBuf[end-1]); pad <= end-hl {
			end -= pad
		}
	}
	payload := d.rtxBuf[hl:end]
	if e.rewrite {
		if vp8, ok := forward.ParseVP8(payload); ok {
			forward.RewriteVP8(payload, &vp8, e.pic, e.tl0)
		}
	}
	h.Padding = false
	h.PayloadType = d.pt
	h.SequenceNumber = e.outSeq
	h.Timestamp = e.ts
	h.SSRC = d.ssrc
	h.CSRC = nil
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = h.Extensions[:0]
	if _, err := d.write(h, payload, d.rtxAttrs); err == nil {
		d.counters.Retransmitted.Add(1)
	}
}

// readRTCP answers the subscriber's feedback: NACKs from the publisher's
// packet cache, keyframe requests to the publisher (rate-limited there),
// receiver reports into quality.
//
// It reads into one buffer of its own, where RTPSender.ReadRTCP made one
// per packet, and takes the packets the interceptors parsed already (the
// bandwidth estimator parses every compound packet into the attributes)
// instead of parsing them again. A packet that does not parse is skipped.
func (d *DownTrack) readRTCP() {
	defer close(d.rtcpDone)
	buf := make([]byte, buffer.MaxPacket)
	for {
		n, attrs, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := attrs.GetRTCPPackets(buf[:n])
		if err != nil {
			continue
		}
		d.handleRTCP(pkts, time.Now())
	}
}

// handleRTCP acts on what one compound RTCP packet from the subscriber
// says about this down track's stream. A compound packet can concern
// several streams of the connection (a receiver report with a block per
// stream, then a NACK for one of them), and each is handed all of it, so
// feedback for another SSRC is skipped here.
func (d *DownTrack) handleRTCP(pkts []rtcp.Packet, now time.Time) {
	d.rtcpMu.Lock()
	defer d.rtcpMu.Unlock()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			if p.MediaSSRC != d.ssrc {
				continue
			}
			for _, pair := range p.Nacks {
				pair.Range(func(seq uint16) bool {
					d.retransmit(seq)
					return true
				})
			}
		case *rtcp.PictureLossIndication:
			if p.MediaSSRC == d.ssrc {
				d.track.RequestKeyframe(d.CurrentLayer())
			}
		case *rtcp.FullIntraRequest:
			for _, e := range p.FIR {
				if e.SSRC == d.ssrc {
					d.track.RequestKeyframe(d.CurrentLayer())
					break
				}
			}
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				if r.SSRC == d.ssrc {
					d.fractionLost.Store(uint32(r.FractionLost))
					d.onReceiverReport(float64(r.FractionLost)/256, now)
				}
			}
		}
	}
}

// defaultLayerBitrate stands in for a layer whose bitrate the publisher
// did not announce (livekit-client's camera presets, roughly).
var defaultLayerBitrate = [MaxLayers]uint64{150_000, 500_000, 1_700_000}

// targetBitrate is what the layer this subscriber is aimed at costs.
func (d *DownTrack) targetBitrate() uint64 {
	d.mu.Lock()
	l := d.fwd.TargetLayer()
	d.mu.Unlock()
	if l < 0 || int(l) >= MaxLayers {
		return 0
	}
	if b := d.track.layers[l].bitrate; b > 0 {
		return uint64(b)
	}
	return defaultLayerBitrate[l]
}

// capBandwidth steps the subscriber one layer down for lack of bandwidth.
func (d *DownTrack) capBandwidth(now time.Time) {
	d.mu.Lock()
	cur := d.fwd.TargetLayer()
	changed := false
	if cur > 0 && d.bwCap >= cur {
		d.bwCap = cur - 1
		// An attempt to go up that congested the link: wait longer next time.
		if !d.bwSince.IsZero() && now.Sub(d.bwSince) < 2*bweRetry && d.bwRetry < bweRetryMax {
			d.bwRetry *= 2
		}
		d.bwSince = now
		changed = true
	}
	d.mu.Unlock()
	if changed {
		d.SelectLayer(now)
	}
}

// uncapBandwidth lets a capped subscriber try one layer up once the retry
// time has passed. It reports whether it did.
func (d *DownTrack) uncapBandwidth(now time.Time) bool {
	d.mu.Lock()
	ok := d.bwCap < MaxLayers-1 && now.Sub(d.bwSince) >= d.bwRetry
	if ok {
		d.bwCap++
		d.bwSince = now
	}
	d.mu.Unlock()
	if ok {
		d.SelectLayer(now)
	}
	return ok
}

// Loss thresholds for stepping a subscriber's simulcast layer (RTCP
// receiver reports come about once a second).
const (
	lossDown     = 0.10 // two reports above this: one layer down
	lossUp       = 0.02 // below this for lossRecovery: one layer back up
	lossRecovery = 10 * time.Second
)

// onReceiverReport adapts the layer to the loss the subscriber reports: a
// congested downlink gets a smaller layer instead of a broken picture.
func (d *DownTrack) onReceiverReport(fraction float64, now time.Time) {
	if !d.track.simulcst {
		return
	}
	d.mu.Lock()
	changed := false
	switch {
	case fraction > lossDown:
		d.badReports++
		if d.badReports >= 2 && d.lossCap > 0 {
			d.lossCap--
			d.badReports = 0
			d.capSince = now
			changed = true
		}
	case fraction < lossUp:
		d.badReports = 0
		if d.lossCap < MaxLayers-1 && now.Sub(d.capSince) >= lossRecovery {
			d.lossCap++
			d.capSince = now
			changed = true
		}
	default:
		d.badReports = 0
	}
	d.mu.Unlock()
	if changed {
		d.SelectLayer(now)
	}
}

// FractionLost is the subscriber's last reported loss on this track, 0–1.
func (d *DownTrack) FractionLost() float64 { return float64(d.fractionLost.Load()) / 256 }
