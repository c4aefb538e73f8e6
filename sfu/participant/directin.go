package participant

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v2"
	"github.com/pion/transport/v2/replaydetector"
)

// RTCPRouter takes the RTCP that subscribers send to the SFU's socket
// before pion's ICE mux reads it (its Claim is the socket's
// udpbatch.Claim), and hands it to the subscriber connection armed for
// the datagram's source address, which decrypts it and gives it to its
// down tracks and its bandwidth estimator on the spot.
//
// On pion's path the same packet crossed four goroutines (the UDP mux's
// reader, the connection's mux, the SRTP session's reader, each down
// track's RTCP reader), and was parsed again for each stream it named;
// with 200 viewers each sending receiver reports and TWCC feedback that
// was a fifth of a lecture's CPU.
//
// A datagram is taken only if the connection registered for its address
// authenticates it with the subscriber's SRTCP key; anything else (STUN,
// DTLS, media, another connection's RTCP, a compound packet led by a
// sender report, which only a connection that also publishes sends and
// whose reports pion's interceptors read) goes on to pion as before.
type RTCPRouter struct {
	mu sync.RWMutex
	by map[netip.AddrPort]*DirectOut

	// Read counts compound packets handled here; Refused counts those
	// the address's connection could not authenticate (left to pion).
	Read, Refused atomic.Uint64
}

// NewRTCPRouter returns an empty router.
func NewRTCPRouter() *RTCPRouter {
	return &RTCPRouter{by: map[netip.AddrPort]*DirectOut{}}
}

// Claim handles b if it is a subscriber's RTCP (see RTCPRouter).
func (r *RTCPRouter) Claim(b []byte, from *net.UDPAddr) bool {
	if !subscriberRTCP(b) {
		return false
	}
	key := addrKey(from)
	r.mu.RLock()
	o := r.by[key]
	r.mu.RUnlock()
	if o == nil {
		return false
	}
	if !o.readRTCP(b, time.Now()) {
		r.Refused.Add(1)
		return false
	}
	r.Read.Add(1)
	return true
}

// set routes addr's RTCP to o, and no other address's.
func (r *RTCPRouter) set(o *DirectOut, addr net.Addr) {
	ua, ok := addr.(*net.UDPAddr)
	if r == nil || !ok {
		return
	}
	key := addrKey(ua)
	r.mu.Lock()
	if o.in.inAddr.IsValid() && o.in.inAddr != key && r.by[o.in.inAddr] == o {
		delete(r.by, o.in.inAddr)
	}
	r.by[key] = o
	o.in.inAddr = key
	r.mu.Unlock()
}

// remove stops routing to o.
func (r *RTCPRouter) remove(o *DirectOut) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if o.in.inAddr.IsValid() && r.by[o.in.inAddr] == o {
		delete(r.by, o.in.inAddr)
	}
	o.in.inAddr = netip.AddrPort{}
	r.mu.Unlock()
}

// Taken is how many compound packets the router has handled (0 for a
// nil router: a socket that cannot be claimed from).
func (r *RTCPRouter) Taken() uint64 {
	if r == nil {
		return 0
	}
	return r.Read.Load()
}

// Len is how many addresses are routed.
func (r *RTCPRouter) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.by)
}

func addrKey(a *net.UDPAddr) netip.AddrPort {
	k := a.AddrPort()
	return netip.AddrPortFrom(k.Addr().Unmap(), k.Port())
}

// subscriberRTCP reports whether b looks like an RTCP compound packet a
// receiver sends: version 2, a first packet type in RTCP's range (RFC
// 5761 section 4) other than a sender report. Anything that passes is
// still authenticated before it is taken.
func subscriberRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223 && b[1] != uint8(rtcp.TypeSenderReport)
}

// directIn is DirectOut's receiving half: the subscriber's SRTCP context
// and where its feedback goes. mu serializes decryption (one reader in
// practice: the socket's).
type directIn struct {
	mu     sync.Mutex
	ctx    *srtp.Context
	tagLen int // SRTCP's authentication tag after the index (0 for AEAD)
	buf    []byte
	hdr    rtcp.Header // DecryptRTCP's, so it allocates none
	// replay holds a window per sending SSRC, checked after a packet
	// authenticates (ctx has none of its own, see readRTCP).
	replay map[uint32]replaydetector.ReplayDetector

	tracksMu sync.Mutex
	tracks   map[uint32]*DownTrack

	// inAddr is the address routed to this connection (RTCPRouter.mu).
	inAddr netip.AddrPort
}

// Replay windows: SRTCP's usual 64 packets over its 31-bit index, and at
// most maxReplaySSRCs senders per connection (a subscriber has one or
// two; a forged flood of new SSRCs cannot pass authentication anyway).
const (
	replayWindow   = 64
	maxReplaySSRCs = 16
)

// setRemoteKeys makes the SRTCP context for the subscriber's keys. It is
// called once per connection, where its outgoing keys are derived
// (armDirect): a new candidate pair keeps the context and its replay
// windows.
func (o *DirectOut) setRemoteKeys(k *srtpKeys) error {
	tagLen, err := k.profile.AuthTagRTCPLen()
	if err != nil {
		return err
	}
	ctx, err := srtp.CreateContext(k.key, k.salt, k.profile, srtp.SRTCPNoReplayProtection())
	if err != nil {
		return err
	}
	o.in.mu.Lock()
	o.in.ctx, o.in.tagLen = ctx, tagLen
	o.in.replay = map[uint32]replaydetector.ReplayDetector{}
	o.in.buf = make([]byte, 0, directBuf)
	o.in.mu.Unlock()
	return nil
}

// readRTCP decrypts b with the subscriber's key and delivers it; false
// when b is not this connection's (pion's path then has it).
//
// The replay check comes after authentication (pion's context checks
// before): a packet another connection sealed is never mistaken for a
// replay of this one's and dropped, and a replay of a packet taken here
// is dropped here, not handed on to pion, whose own window never saw it.
func (o *DirectOut) readRTCP(b []byte, now time.Time) bool {
	in := &o.in
	in.mu.Lock()
	if in.ctx == nil {
		in.mu.Unlock()
		return false
	}
	plain, err := in.ctx.DecryptRTCP(in.buf[:0], b, &in.hdr)
	if err != nil {
		in.mu.Unlock()
		return false
	}
	if cap(plain) > cap(in.buf) {
		in.buf = plain[:0]
	}
	if !in.fresh(b) {
		in.mu.Unlock()
		return true
	}
	pkts, err := rtcp.Unmarshal(plain)
	in.mu.Unlock()
	if err != nil {
		// Authentic but unreadable: dropped, as pion's readers would.
		return true
	}
	o.deliverRTCP(pkts, now)
	return true
}

// fresh checks an authenticated SRTCP packet's index (RFC 3711 section
// 3.4: E flag and 31-bit index, then the authentication tag) against its
// sender's window, and records it. Under mu; decryption has checked that
// b holds the header, the index and the tag.
func (in *directIn) fresh(b []byte) bool {
	at := len(b) - 4 - in.tagLen
	index := uint64(binary.BigEndian.Uint32(b[at:]) & 0x7fffffff)
	ssrc := binary.BigEndian.Uint32(b[4:])
	det := in.replay[ssrc]
	if det == nil {
		if len(in.replay) >= maxReplaySSRCs {
			clear(in.replay)
		}
		det = replaydetector.New(replayWindow, 0x7fffffff)
		in.replay[ssrc] = det
	}
	accept, ok := det.Check(index)
	if ok {
		accept()
	}
	return ok
}

// deliverRTCP gives TWCC feedback to the bandwidth estimator and the
// compound packet to each down track it concerns, once each.
func (o *DirectOut) deliverRTCP(pkts []rtcp.Packet, now time.Time) {
	if e := o.est.Load(); e != nil {
		_ = e.WriteRTCP(pkts, nil)
	}
	done := make([]uint32, 0, 8)
	for _, p := range pkts {
		if _, ok := p.(*rtcp.TransportLayerCC); ok {
			continue // the estimator's alone
		}
		for _, ssrc := range p.DestinationSSRC() {
			if slices.Contains(done, ssrc) {
				continue
			}
			done = append(done, ssrc)
			if d := o.track(ssrc); d != nil {
				d.handleRTCP(pkts, now)
			}
		}
	}
}

// bindTrack routes RTCP about ssrc to d.
func (o *DirectOut) bindTrack(ssrc uint32, d *DownTrack) {
	if o == nil {
		return
	}
	o.in.tracksMu.Lock()
	if o.in.tracks == nil {
		o.in.tracks = map[uint32]*DownTrack{}
	}
	o.in.tracks[ssrc] = d
	o.in.tracksMu.Unlock()
}

// unbindTrack stops routing RTCP about ssrc to d.
func (o *DirectOut) unbindTrack(ssrc uint32, d *DownTrack) {
	if o == nil {
		return
	}
	o.in.tracksMu.Lock()
	if o.in.tracks[ssrc] == d {
		delete(o.in.tracks, ssrc)
	}
	o.in.tracksMu.Unlock()
}

func (o *DirectOut) track(ssrc uint32) *DownTrack {
	o.in.tracksMu.Lock()
	defer o.in.tracksMu.Unlock()
	return o.in.tracks[ssrc]
}
