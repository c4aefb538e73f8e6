package participant

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/ice/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"go.uber.org/goleak"

	"github.com/salonhq/salon/internal/udpbatch"
	"github.com/salonhq/salon/sfu/buffer"
	"github.com/salonhq/salon/sfu/bwe"
	"github.com/salonhq/salon/sfu/forward"
)

// loopSFU is the SFU's media side on loopback: one UDP socket behind
// udpbatch and pion's ICE mux, as sfu.New sets it up.
type loopSFU struct {
	sock   *udpbatch.Conn
	mux    ice.UDPMux
	se     webrtc.SettingEngine
	router *RTCPRouter
}

func newLoopSFU(tb testing.TB) *loopSFU {
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := udpbatch.New(u)
	l := &loopSFU{sock: c.(*udpbatch.Conn), router: NewRTCPRouter()}
	l.sock.ReadBatches(16, 8192)
	l.sock.SetClaim(l.router.Claim)
	l.mux = webrtc.NewICEUDPMux(nil, l.sock)
	l.se = loopbackSettings()
	l.se.SetICEUDPMux(l.mux)
	return l
}

func (l *loopSFU) close() {
	_ = l.mux.Close()
	_ = l.sock.Close()
}

func loopbackSettings() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return se
}

// subscriberClient is one subscriber: the SFU's connection with the down
// track on it, and a pion client receiving it.
type subscriberClient struct {
	d      *DownTrack
	sub    *Participant
	client *webrtc.PeerConnection

	mu      sync.Mutex
	got     []rtp.Packet // kept when keep is set
	keep    bool
	closing bool
	n       atomic.Int64
	done    sync.WaitGroup
}

// subscribe connects a subscriber to t through the loop SFU. sfuOffers
// picks the SFU's role: offerer (the /rtc subscriber connection) or
// answerer (/rtc/v1's single connection).
func subscribe(tb testing.TB, l *loopSFU, t *MediaTrack, sfuOffers, keep bool) *subscriberClient {
	api, bwe, out, err := NewSubscriberAPI(l.se, true, !sfuOffers)
	if err != nil {
		tb.Fatal(err)
	}
	sfuPC, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	sub := testParticipant("PA_sub")
	sub.params.Direct, sub.params.Socket, sub.params.BWE, sub.params.RTCP = out, l.sock, bwe, l.router
	sub.sub = sfuPC
	sfuPC.OnConnectionStateChange(sub.onSubscriberState)
	sub.watchSelectedPair()

	me, ir, err := NewMediaEngine()
	if err != nil {
		tb.Fatal(err)
	}
	cse := loopbackSettings()
	// The NACK test asks again for a packet it did receive.
	cse.DisableSRTPReplayProtection(true)
	client, err := webrtc.NewAPI(webrtc.WithSettingEngine(cse), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	sc := &subscriberClient{sub: sub, client: client, keep: keep}
	var once sync.Once
	client.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			sc.mu.Lock()
			if sc.closing {
				sc.mu.Unlock()
				return
			}
			sc.done.Add(1)
			sc.mu.Unlock()
			defer sc.done.Done()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				sc.n.Add(1)
				if sc.keep {
					sc.mu.Lock()
					sc.got = append(sc.got, *p)
					sc.mu.Unlock()
				}
			}
		})
	})

	d := newDownTrack(t, sub)
	sc.d = d
	addTrack := func() {
		sender, err := sfuPC.AddTrack(d)
		if err != nil {
			tb.Fatal(err)
		}
		d.sender = sender
		d.rtcpDone = make(chan struct{})
		go d.readRTCP()
	}
	offerer, answerer := sfuPC, client
	if sfuOffers {
		addTrack()
	} else {
		offerer, answerer = client, sfuPC
		if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			tb.Fatal(err)
		}
	}
	var beforeAnswer func()
	if !sfuOffers {
		beforeAnswer = addTrack
	}
	negotiate(tb, offerer, answerer, beforeAnswer)
	deadline := time.Now().Add(30 * time.Second)
	for !(out.Armed() && d.bound.Load()) {
		if time.Now().After(deadline) {
			tb.Fatalf("not armed (%v) or not bound (%v)", out.Armed(), d.bound.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.addDownTrack(d)
	return sc
}

func (sc *subscriberClient) close() {
	sc.mu.Lock()
	sc.closing = true
	sc.mu.Unlock()
	sc.d.track.removeDownTrack(sc.d)
	sc.d.bound.Store(false)
	_ = sc.client.Close()
	_ = sc.sub.sub.Close()
	<-sc.d.rtcpDone
	sc.done.Wait()
}

func (sc *subscriberClient) packets() []rtp.Packet {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]rtp.Packet(nil), sc.got...)
}

func waitFor(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func videoTrack(l *loopSFU) *MediaTrack {
	pub := testParticipant("PA_pub")
	pub.params.Batch = l.sock
	t := newMediaTrack(pub, &livekit.TrackInfo{Sid: "TR_v", Type: livekit.TrackType_VIDEO}, VideoCodecs[0])
	t.layers[0].cache = buffer.New(cacheSize, cacheKeep)
	return t
}

// TestDirectWritePathCall forwards VP8 through real pion subscribers over
// loopback, with the SFU as offerer and as answerer (the DTLS roles
// differ, and so do the SRTP keys each side uses): every packet arrives,
// decrypted by the subscriber's own SRTP session, in order, with the
// sequence numbers and timestamps the forwarder wrote and the TWCC
// sequence number stamped; the subscriber's RTCP is read off the SFU's
// socket (RTCPRouter), its TWCC feedback reaching the estimator and a NACK
// answered from the track's cache through the same path.
func TestDirectWritePathCall(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, sfuOffers := range []bool{true, false} {
		name := "sfu-answers"
		if sfuOffers {
			name = "sfu-offers"
		}
		t.Run(name, func(t *testing.T) {
			l := newLoopSFU(t)
			defer l.close()
			tr := videoTrack(l)
			subs := []*subscriberClient{subscribe(t, l, tr, sfuOffers, true), subscribe(t, l, tr, sfuOffers, true)}
			defer func() {
				for _, s := range subs {
					s.close()
				}
			}()
			if l.router.Len() != len(subs) {
				t.Fatalf("%d subscriber addresses routed, want %d", l.router.Len(), len(subs))
			}
			var hdr rtp.Header
			var pkt forward.Packet
			sc := newScratch()
			const n = 200
			for i := 0; i < n; i++ {
				tr.handlePacket(vp8Packet(uint16(65400+i), 1000+3000*uint32(i/4), uint16(i/4), i == 0), 0, &hdr, &pkt, sc, time.Now().UnixNano())
				if i%10 == 9 {
					// A burst no larger than a frame: loopback drops
					// what the clients' sockets cannot hold.
					for _, s := range subs {
						waitFor(t, "a burst", func() bool { return s.n.Load() > int64(i) })
					}
				}
			}
			for _, s := range subs {
				if s.d.head.Load() == nil {
					t.Fatal("the down track writes through pion's track writer, not the interceptor chain")
				}
				waitFor(t, "every packet", func() bool { return s.n.Load() >= n })
				got := s.packets()
				first := got[0]
				for i, p := range got {
					if p.SequenceNumber != first.SequenceNumber+uint16(i) {
						t.Fatalf("packet %d: sequence %d after %d (out of order or lost)", i, p.SequenceNumber, first.SequenceNumber)
					}
					if p.Timestamp-first.Timestamp != 3000*uint32(i/4) {
						t.Fatalf("packet %d: timestamp %d, first %d", i, p.Timestamp, first.Timestamp)
					}
					if p.SSRC != s.d.ssrc || p.PayloadType != s.d.pt || len(p.Payload) != 1100 {
						t.Fatalf("packet %d: ssrc %d pt %d len %d", i, p.SSRC, p.PayloadType, len(p.Payload))
					}
					if len(p.Extensions) == 0 {
						t.Fatalf("packet %d carries no TWCC sequence number", i)
					}
				}
				// The subscriber's TWCC feedback reaches the estimator
				// (sfu/bwe), which sees no congestion on loopback.
				est := s.sub.params.BWE().(*bwe.Estimator)
				waitFor(t, "TWCC feedback for most packets", func() bool {
					return est.GetStats()["reportedPackets"].(int64) >= n/2
				})
				if est.Congested() {
					t.Fatalf("congestion on loopback: %v", est.GetStats())
				}
				// The subscriber reports one packet lost: it comes again.
				lost := got[n/2]
				read := l.router.Read.Load()
				if err := s.client.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: s.d.ssrc, Nacks: []rtcp.NackPair{{PacketID: lost.SequenceNumber}}}}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the retransmission", func() bool { return s.n.Load() > n })
				if l.router.Read.Load() == read {
					t.Fatalf("the NACK was answered, but not from the SFU socket's read path (read %d, refused %d)", l.router.Read.Load(), l.router.Refused.Load())
				}
				again := s.packets()[n]
				if again.SequenceNumber != lost.SequenceNumber || again.Timestamp != lost.Timestamp || string(again.Payload) != string(lost.Payload) {
					t.Fatalf("retransmitted %d/%d, want %d/%d", again.SequenceNumber, again.Timestamp, lost.SequenceNumber, lost.Timestamp)
				}
			}
		})
	}
}

// TestDirectWritePathSocketClosedMidFanout closes the SFU's socket while a
// fan-out holds it: the writes fail, nothing panics or hangs, and the
// down tracks count nothing as sent.
func TestDirectWritePathSocketClosedMidFanout(t *testing.T) {
	l := newLoopSFU(t)
	tr := videoTrack(l)
	subs := []*subscriberClient{subscribe(t, l, tr, true, false), subscribe(t, l, tr, true, false)}
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	tr.handlePacket(vp8Packet(1, 0, 0, true), 0, &hdr, &pkt, sc, time.Now().UnixNano())
	waitFor(t, "the keyframe", func() bool { return subs[0].n.Load() == 1 && subs[1].n.Load() == 1 })
	sent := func() uint64 {
		return subs[0].sub.params.Counters.PacketsOut.Load() + subs[1].sub.params.Counters.PacketsOut.Load()
	}
	before := sent()
	l.sock.Hold()
	subs[0].d.writeRTP(&hdr, make([]byte, 100), &forward.Packet{SequenceNumber: 2, Timestamp: 3000}, sc)
	_ = l.sock.Close()
	subs[1].d.writeRTP(&hdr, make([]byte, 100), &forward.Packet{SequenceNumber: 2, Timestamp: 3000}, sc)
	if err := l.sock.Flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("flush after close: %v", err)
	}
	l.sock.Release()
	if got := sent() - before; got > 1 {
		t.Fatalf("%d packets counted as sent after the socket closed", got)
	}
	for _, s := range subs {
		s.close()
	}
	_ = l.mux.Close()
}

// BenchmarkWritePath is the whole per-subscriber write path over real
// pion subscribers on loopback: forwarding decision, interceptors, SRTP
// and the batched socket, for pion's path and the direct one, interleaved.
func BenchmarkWritePath(b *testing.B) {
	for _, n := range []int{1, 10, 25} {
		for _, direct := range []bool{false, true} {
			name := itoa(n) + "subs/pion"
			if direct {
				name = itoa(n) + "subs/direct"
			}
			b.Run(name, func(b *testing.B) {
				l := newLoopSFU(b)
				defer l.close()
				tr := videoTrack(l)
				subs := make([]*subscriberClient, n)
				for i := range subs {
					subs[i] = subscribe(b, l, tr, true, false)
					if !direct {
						subs[i].sub.params.Direct.disarm()
						subs[i].sub.params.Direct = nil // no re-arming
					}
				}
				defer func() {
					for _, s := range subs {
						s.close()
					}
				}()
				var hdr rtp.Header
				var pkt forward.Packet
				sc := newScratch()
				pkts := make([][]byte, 256)
				for i := range pkts {
					pkts[i] = vp8Packet(uint16(i), uint32(i)*3000, uint16(i), i == 0)
				}
				tr.handlePacket(pkts[0], 0, &hdr, &pkt, sc, time.Now().UnixNano())
				b.ReportAllocs()
				cpu0 := processCPU()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := pkts[1+i%255]
					seq := uint16(i + 1)
					p[2], p[3] = byte(seq>>8), byte(seq)
					tr.handlePacket(p, 0, &hdr, &pkt, sc, time.Now().UnixNano())
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/forwarded")
				// CPU time, not wall time, is what a loaded machine
				// leaves comparable; it includes the subscribers'
				// receiving (the same work on both paths).
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*n), "cpu-ns/forwarded")
			})
		}
	}
}

// processCPU is the process's user and system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestDirectWritePathICERestart restarts ICE from the subscriber (what
// livekit-client does when its signal connection resumes): the client
// gathers on new sockets, so its address changes, while DTLS, and so the
// SRTP keys and each stream's rollover counter, stay. Packets forwarded
// after the restart must reach the client at its new address.
func TestDirectWritePathICERestart(t *testing.T) {
	l := newLoopSFU(t)
	defer l.close()
	tr := videoTrack(l)
	s := subscribe(t, l, tr, false, false)
	defer s.close()
	var hdr rtp.Header
	var pkt forward.Packet
	sc := newScratch()
	seq := uint16(0)
	send := func(n int) {
		for i := 0; i < n; i++ {
			tr.handlePacket(vp8Packet(seq, 3000*uint32(seq/4), seq/4, seq == 0), 0, &hdr, &pkt, sc, time.Now().UnixNano())
			seq++
		}
	}
	send(1)
	waitFor(t, "the keyframe", func() bool { return s.n.Load() == 1 })
	remoteAddr := func() string {
		pair, err := s.client.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			return ""
		}
		return net.JoinHostPort(pair.Local.Address, itoa(int(pair.Local.Port)))
	}
	for restart := 1; restart <= 3; restart++ {
		before := remoteAddr()
		offer, err := s.client.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
		if err != nil {
			t.Fatal(err)
		}
		gathered := webrtc.GatheringCompletePromise(s.client)
		if err := s.client.SetLocalDescription(offer); err != nil {
			t.Fatal(err)
		}
		<-gathered
		if err := s.sub.sub.SetRemoteDescription(*s.client.LocalDescription()); err != nil {
			t.Fatal(err)
		}
		answer, err := s.sub.sub.CreateAnswer(nil)
		if err != nil {
			t.Fatal(err)
		}
		gathered = webrtc.GatheringCompletePromise(s.sub.sub)
		if err := s.sub.sub.SetLocalDescription(answer); err != nil {
			t.Fatal(err)
		}
		<-gathered
		if err := s.client.SetRemoteDescription(*s.sub.sub.LocalDescription()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a new candidate pair", func() bool { a := remoteAddr(); return a != "" && a != before })
		// Forward until packets arrive again, as a call would.
		n0 := s.n.Load()
		deadline := time.Now().Add(5 * time.Second)
		for s.n.Load() < n0+10 {
			if time.Now().After(deadline) {
				p := s.sub.params.Direct.path.Load()
				t.Fatalf("restart %d: no packets after the restart (client at %s, direct path armed %v to %v)", restart, remoteAddr(), p != nil, p)
			}
			send(1)
			time.Sleep(5 * time.Millisecond)
		}
		if !s.sub.params.Direct.Armed() {
			t.Fatalf("restart %d: the direct path is not armed again", restart)
		}
	}
}
