// Package bwe is the SFU's send-side bandwidth estimator: for one
// subscriber connection it records when each packet left (by its
// transport-wide sequence number) and reads the subscriber's
// transport-wide congestion control feedback (TWCC, RTCP transport
// feedback) to tell whether the path is congested and what rate it
// carries.
//
// It follows Google Congestion Control (draft-ietf-rmcat-gcc) in shape:
// packets sent within a burst form a group; the change in one-way delay
// between consecutive groups is accumulated, smoothed and fitted with a
// least-squares line over the last groups (the trend); a trend above an
// adaptive threshold is overuse (queues are building), below its negative
// underuse. Overuse cuts the target to 85 % of the rate the subscriber
// acknowledged receiving; otherwise the target grows by 8 % a second, never
// past 1.5 times that rate. More than 10 % of packets reported lost cuts
// the target in proportion to the loss.
//
// It implements pion/interceptor's cc.BandwidthEstimator, so pion's cc
// interceptor feeds it. It replaces pion's gcc package there for cost:
// pion's records each sent packet in a list and a map (an allocation and
// a boxed record per packet, under a lock shared with the feedback
// parser) and runs its delay estimation on goroutines joined by channels.
// Here a sent packet is one store into a fixed ring under an uncontended
// mutex, nothing is allocated per packet, and the feedback is digested on
// the goroutine that reads it. No pacer: packets leave when forwarded.
//
// It knows nothing of Matrix, signalling or layers: the SFU asks it
// Congested and GetTargetBitrate.
package bwe

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// TransportCCURI is the RTP header extension carrying the transport-wide
// sequence number.
const TransportCCURI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

// Config bounds the estimate, in bit/s.
type Config struct {
	Initial, Min, Max int
}

// Usage is the delay detector's verdict.
type Usage int

const (
	Normal Usage = iota
	Overuse
	Underuse
)

func (u Usage) String() string {
	switch u {
	case Overuse:
		return "overuse"
	case Underuse:
		return "underuse"
	}
	return "normal"
}

// State is what the rate controller does.
type State int

const (
	Hold State = iota
	Increase
	Decrease
)

func (s State) String() string {
	switch s {
	case Increase:
		return "increase"
	case Decrease:
		return "decrease"
	}
	return "hold"
}

const (
	// ringSize sent packets are remembered (a power of two): at 300
	// packets a second, over three seconds, against feedback every 100 ms
	// or so.
	ringSize = 1024
	// burst: packets sent within this of a group's first form one group.
	burst = 5 * time.Millisecond
	// trendWindow groups are fitted; trendGain scales the slope.
	trendWindow = 20
	trendGain   = 4.0
	smoothing   = 0.9
	// The adaptive threshold (ms) and its rates up and down per ms.
	thresholdInit = 12.5
	thresholdMin  = 6
	thresholdMax  = 600
	kUp           = 0.0087
	kDown         = 0.039
	// overuseTime of trend above the threshold is overuse.
	overuseTime = 10 * time.Millisecond
	// beta is the cut on overuse; growth the increase per second.
	beta          = 0.85
	growth        = 1.08
	recutInterval = 300 * time.Millisecond
	// ackedWindow is what the acknowledged rate is measured over.
	ackedWindow = 500 * time.Millisecond
	// Loss: above lossHigh the target is cut (at most every lossInterval),
	// the average is smoothed by lossSmoothing per feedback.
	lossHigh      = 0.1
	lossInterval  = 300 * time.Millisecond
	lossSmoothing = 0.3
)

type sentPacket struct {
	at   int64 // ns on the estimator's clock; 0: empty
	seq  uint16
	size uint16
	// reported: feedback has already covered it (a packet is counted once)
	reported bool
}

type group struct {
	first, last int64 // send times, ns
	arrival     int64 // latest arrival, µs on the receiver's clock
}

// Estimator is one connection's estimator. Its methods are safe for
// concurrent use: packets are recorded from the forwarding goroutines,
// feedback comes from the connection's RTCP reader (e.mu, then
// e.ringMu per packet, is the lock order).
type Estimator struct {
	cfg   Config
	start time.Time
	clock func() int64 // ns since start; tests replace it

	// ringMu guards ring alone, so the forwarding goroutines recording
	// packets wait at most for one slot's lookup, never for a whole
	// report's digestion.
	ringMu sync.Mutex
	ring   [ringSize]sentPacket

	mu sync.Mutex // guards everything below

	cur, prev       group
	haveCur, havePr bool

	acc, smooth   float64 // accumulated and smoothed delay, ms
	trendX        [trendWindow]float64
	trendY        [trendWindow]float64
	trendN        int // points held (≤ trendWindow)
	trendHead     int
	deltas        int     // delay deltas seen (the slope's scale grows to 60)
	firstArrival  int64   // µs, the trend's time origin
	threshold     float64 // ms
	lastThreshold int64   // arrival µs of the last threshold update
	lastTrend     float64
	overSince     int64 // ns the trend went above the threshold; 0: not
	overCount     int
	usage         Usage
	state         State

	reported       int64 // packets feedback has covered, received or lost
	ackBytes       int64
	ackStart       int64 // arrival µs of the window's first packet; -1: none
	ackLast        int64
	acked          float64 // bit/s, 0 until measured
	loss           float64
	lastLossCut    int64 // ns
	lastCut        int64 // ns, the last overuse cut
	lastRateUpdate int64 // ns

	target   int
	onChange func(int)
}

// New returns an estimator starting at cfg.Initial.
func New(cfg Config) *Estimator {
	if cfg.Min <= 0 {
		cfg.Min = 50_000
	}
	if cfg.Max < cfg.Min {
		cfg.Max = math.MaxInt32
	}
	if cfg.Initial < cfg.Min || cfg.Initial > cfg.Max {
		cfg.Initial = max(cfg.Min, min(cfg.Max, 1_000_000))
	}
	e := &Estimator{cfg: cfg, start: time.Now(), threshold: thresholdInit, target: cfg.Initial, ackStart: -1}
	e.clock = func() int64 { return int64(time.Since(e.start)) + 1 }
	return e
}

// AddStream wraps a stream's writer so every packet it sends is recorded
// (pion's cc interceptor calls it for each local stream).
func (e *Estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, x := range info.RTPHeaderExtensions {
		if x.URI == TransportCCURI {
			id = uint8(x.ID)
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if ext := h.GetExtension(id); len(ext) >= 2 {
			e.Sent(binary.BigEndian.Uint16(ext), h.MarshalSize()+len(payload))
		}
		return w.Write(h, payload, a)
	})
}

// Sent records that the packet with transport-wide sequence number seq,
// size bytes on the wire (RTP header and payload), leaves now.
func (e *Estimator) Sent(seq uint16, size int) {
	now := e.clock()
	e.ringMu.Lock()
	e.ring[seq%ringSize] = sentPacket{at: now, seq: seq, size: uint16(min(size, math.MaxUint16))}
	e.ringMu.Unlock()
}

// WriteRTCP reads transport-wide feedback among pkts; other packets are
// ignored. Malformed feedback is ignored too: an error here would stop
// pion's RTCP reader.
func (e *Estimator) WriteRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) error {
	for _, p := range pkts {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			e.feedback(fb)
		}
	}
	return nil
}

// feedback digests one TWCC report.
func (e *Estimator) feedback(fb *rtcp.TransportLayerCC) {
	now := e.clock()
	var changed func(int)
	rate := 0
	e.mu.Lock()
	arrival := int64(fb.ReferenceTime) * 64_000 // µs
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	deltas := fb.RecvDeltas
	received, lost := 0, 0
	each := func(symbol uint16) bool {
		if left == 0 {
			return false
		}
		left--
		var at int64 = -1
		switch symbol {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) == 0 || deltas[0] == nil {
				return false // malformed: fewer deltas than received packets
			}
			arrival += deltas[0].Delta
			deltas = deltas[1:]
			at = arrival
		case rtcp.TypeTCCPacketReceivedWithoutDelta:
			at = -2
		}
		e.ringMu.Lock()
		slot := &e.ring[seq%ringSize]
		s := *slot
		fresh := s.at != 0 && s.seq == seq && !s.reported
		slot.reported = slot.reported || fresh
		e.ringMu.Unlock()
		if fresh {
			e.reported++
			if at == -1 {
				lost++
			} else {
				received++
				if at >= 0 {
					e.arrived(&s, at)
				}
			}
		}
		seq++
		return true
	}
chunks:
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				if !each(c.PacketStatusSymbol) {
					break chunks
				}
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if c.SymbolSize == rtcp.TypeTCCSymbolSizeOneBit && sym != 0 {
					sym = rtcp.TypeTCCPacketReceivedSmallDelta
				}
				if !each(sym) {
					break chunks
				}
			}
		}
	}
	if received+lost > 0 {
		e.loss = (1-lossSmoothing)*e.loss + lossSmoothing*float64(lost)/float64(received+lost)
	}
	old := e.target
	e.control(now)
	if e.target != old && e.onChange != nil {
		changed, rate = e.onChange, e.target
	}
	e.mu.Unlock()
	if changed != nil {
		changed(rate)
	}
}

// arrived handles one received packet: the acknowledged rate, then the
// delay trend by groups.
func (e *Estimator) arrived(s *sentPacket, at int64) {
	// Acknowledged rate over ackedWindow of arrivals.
	switch {
	case e.ackStart < 0 || at < e.ackStart:
		e.ackStart, e.ackLast, e.ackBytes = at, at, int64(s.size)
	default:
		e.ackBytes += int64(s.size)
		e.ackLast = max(e.ackLast, at)
		if span := e.ackLast - e.ackStart; span >= ackedWindow.Microseconds() {
			e.acked = float64(e.ackBytes*8) / (float64(span) / 1e6)
			e.ackStart, e.ackBytes = e.ackLast, 0
		}
	}

	if !e.haveCur {
		e.cur, e.haveCur = group{first: s.at, last: s.at, arrival: at}, true
		return
	}
	if s.at < e.cur.first {
		return // reordered: left out of the delay estimate
	}
	// One group: sent within a burst, or arriving in one (within 5 ms of
	// the group's last arrival and sooner after it than it was sent: the
	// receiver took in a backlog at once, as a busy machine does after
	// its process was descheduled).
	arrDelta := at - e.cur.arrival
	if s.at-e.cur.first <= int64(burst) ||
		(arrDelta <= burst.Microseconds() && arrDelta < (s.at-e.cur.last)/1e3) {
		e.cur.last = max(e.cur.last, s.at)
		e.cur.arrival = max(e.cur.arrival, at)
		return
	}
	if e.havePr {
		send := float64(e.cur.last-e.prev.last) / 1e6       // ms
		recv := float64(e.cur.arrival-e.prev.arrival) / 1e3 // ms
		e.trend(recv-send, e.cur.arrival)
	}
	e.prev, e.havePr = e.cur, true
	e.cur = group{first: s.at, last: s.at, arrival: at}
}

// trend adds one delay delta (ms) measured at arrival (µs) and updates
// the detector.
func (e *Estimator) trend(delta float64, arrival int64) {
	if e.deltas == 0 {
		e.firstArrival = arrival
	}
	e.deltas++
	e.acc += delta
	e.smooth = smoothing*e.smooth + (1-smoothing)*e.acc
	e.trendX[e.trendHead] = float64(arrival-e.firstArrival) / 1e3
	e.trendY[e.trendHead] = e.smooth
	e.trendHead = (e.trendHead + 1) % trendWindow
	if e.trendN < trendWindow {
		e.trendN++
		return
	}
	// Least-squares slope of smoothed delay against arrival time.
	var mx, my float64
	for i := range trendWindow {
		mx += e.trendX[i]
		my += e.trendY[i]
	}
	mx /= trendWindow
	my /= trendWindow
	var num, den float64
	for i := range trendWindow {
		dx := e.trendX[i] - mx
		num += dx * (e.trendY[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return
	}
	m := num / den * float64(min(e.deltas, 60)) * trendGain
	e.detect(m, arrival)
}

// detect compares the trend m with the adaptive threshold.
func (e *Estimator) detect(m float64, arrival int64) {
	now := e.clock()
	switch {
	case m > e.threshold:
		if e.overSince == 0 {
			e.overSince = now
		}
		e.overCount++
		if now-e.overSince >= int64(overuseTime) && e.overCount > 1 && m >= e.lastTrend {
			e.usage = Overuse
			e.overSince, e.overCount = 0, 0
		}
	case m < -e.threshold:
		e.usage = Underuse
		e.overSince, e.overCount = 0, 0
	default:
		e.usage = Normal
		e.overSince, e.overCount = 0, 0
	}
	e.lastTrend = m

	// The threshold follows |m| (quickly down, slowly up), except for
	// spikes far above it.
	abs := math.Abs(m)
	if e.lastThreshold == 0 {
		e.lastThreshold = arrival
	}
	if abs <= e.threshold+15 {
		k := kDown
		if abs > e.threshold {
			k = kUp
		}
		dt := math.Min(float64(arrival-e.lastThreshold)/1e3, 100)
		e.threshold = math.Max(thresholdMin, math.Min(thresholdMax, e.threshold+k*(abs-e.threshold)*dt))
	}
	e.lastThreshold = arrival
}

// control moves the target after a report.
func (e *Estimator) control(now int64) {
	elapsed := time.Duration(now - e.lastRateUpdate)
	if e.lastRateUpdate == 0 {
		elapsed = 0
	}
	e.lastRateUpdate = now
	target := float64(e.target)
	switch e.usage {
	case Overuse:
		// Cut once per overuse, and again while it lasts past
		// recutInterval (the cut did not drain the queue).
		if e.state != Decrease || now-e.lastCut >= int64(recutInterval) {
			e.state, e.lastCut = Decrease, now
			base := target
			if e.acked > 0 {
				base = e.acked
			}
			target = math.Min(target, beta*base)
		}
	case Underuse:
		e.state = Hold
	default:
		e.state = Increase
		grown := target * math.Pow(growth, math.Min(elapsed.Seconds(), 1))
		if e.acked > 0 {
			// Not past 1.5 times what arrives, but never cut for it.
			grown = math.Min(grown, math.Max(target, 1.5*e.acked+10_000))
		}
		target = grown
	}
	if e.loss > lossHigh && now-e.lastLossCut >= int64(lossInterval) {
		target *= 1 - 0.5*e.loss
		e.lastLossCut = now
	}
	e.target = max(e.cfg.Min, min(e.cfg.Max, int(target)))
}

// GetTargetBitrate is the estimate, bit/s.
func (e *Estimator) GetTargetBitrate() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.target
}

// Congested reports whether the path shows congestion now: queues
// building (overuse), the target being cut, or more than 10 % loss.
func (e *Estimator) Congested() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.usage == Overuse || e.state == Decrease || e.loss > lossHigh
}

// OnTargetBitrateChange calls f with each new target, on the goroutine
// that read the feedback, after the estimator's lock is released.
func (e *Estimator) OnTargetBitrateChange(f func(int)) {
	e.mu.Lock()
	e.onChange = f
	e.mu.Unlock()
}

// GetStats reports the estimator's state (cc.BandwidthEstimator asks for it;
// the SFU itself reads Congested and GetTargetBitrate).
func (e *Estimator) GetStats() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return map[string]any{
		"targetBitrate":   e.target,
		"reportedPackets": e.reported,
		"ackedBitrate":    e.acked,
		"averageLoss":     e.loss,
		"usage":           e.usage.String(),
		"state":           e.state.String(),
		"delayThreshold":  e.threshold,
		"delayTrend":      e.lastTrend,
	}
}

// Close releases nothing: the estimator runs no goroutine.
func (e *Estimator) Close() error { return nil }
