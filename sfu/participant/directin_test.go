package participant

import (
	"net"
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v2"

	"github.com/salonhq/salon/sfu/bwe"
)

// routed is a subscriber connection armed for RTCP from addr with keys,
// its real bandwidth estimator, and one bound VP8 down track (SSRC 5) that
// has forwarded five packets (recorded by w); client is the subscriber's
// side, sealing RTCP with the same keys.
type routed struct {
	r      *RTCPRouter
	out    *DirectOut
	d      *DownTrack
	w      *recordingWriter
	est    *bwe.Estimator
	client *srtp.Context
}

func newRouted(t testing.TB, keys *srtpKeys, addr *net.UDPAddr) *routed {
	t.Helper()
	out := &DirectOut{}
	est := bwe.New(bwe.Config{Initial: bweInitial, Min: bweMin, Max: bweMax})
	out.est.Store(est)
	sub := testParticipant("PA_sub")
	sub.params.Direct = out
	d, w := sentVideo(sub, 5)
	if err := out.setRemoteKeys(keys); err != nil {
		t.Fatal(err)
	}
	client, err := srtp.CreateContext(keys.key, keys.salt, keys.profile)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRTCPRouter()
	out.router = r
	r.set(out, addr)
	return &routed{r: r, out: out, d: d, w: w, est: est, client: client}
}

// sealRTCP is the subscriber's side: a compound packet encrypted with its
// SRTCP context.
func sealRTCP(t testing.TB, ctx *srtp.Context, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ctx.EncryptRTCP(nil, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestRTCPRouterTakesOnlyItsSubscribersRTCP: the router takes a
// subscriber's RTCP off the socket and answers it (a NACK from a
// compound packet with a receiver report, TWCC feedback to the
// estimator), and leaves everything else to pion: another key's packet,
// another address's, a compound led by a sender report, anything after
// disarming. A replay of a packet it took is dropped, not answered again
// nor handed on. Feedback about another stream of the connection is not
// this down track's.
func TestRTCPRouterTakesOnlyItsSubscribersRTCP(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAes128CmHmacSha1_80} {
		t.Run(profile.String(), func(t *testing.T) {
			addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
			x := newRouted(t, testKeys(t, profile), addr)
			r, d, w, client := x.r, x.d, x.w, x.client
			rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: d.ssrc, FractionLost: 0}}}

			nack := sealRTCP(t, client, rr, &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: d.ssrc, Nacks: []rtcp.NackPair{{PacketID: w.seqs[2]}}})
			if !r.Claim(nack, addr) {
				t.Fatal("the subscriber's NACK was not taken")
			}
			if len(w.seqs) != 6 || w.seqs[5] != w.seqs[2] {
				t.Fatalf("not retransmitted: %v", w.seqs)
			}
			if !r.Claim(nack, addr) || len(w.seqs) != 6 {
				t.Fatalf("a replayed NACK was handed on or answered again: %v", w.seqs)
			}

			other := sealRTCP(t, client, rr, &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: d.ssrc + 1, Nacks: []rtcp.NackPair{{PacketID: w.seqs[3]}}})
			if !r.Claim(other, addr) || len(w.seqs) != 6 {
				t.Fatalf("answered a NACK for another stream: %v", w.seqs)
			}

			rec := twcc.NewRecorder(1)
			for i := uint16(0); i < 3; i++ {
				x.est.Sent(i, 1200)
				rec.Record(d.ssrc, i, int64(i)*1000)
			}
			if !r.Claim(sealRTCP(t, client, rec.BuildFeedbackPacket()...), addr) {
				t.Fatal("TWCC feedback was not taken")
			}
			if n := x.est.GetStats()["reportedPackets"].(int64); n != 3 {
				t.Fatalf("TWCC feedback: the estimator counted %d packets reported, want 3", n)
			}

			stranger := newRouted(t, testKeys(t, profile), addr).client
			if r.Claim(sealRTCP(t, stranger, rr), addr) || r.Refused.Load() != 1 {
				t.Fatalf("took a packet another key sealed (refused %d)", r.Refused.Load())
			}
			elsewhere := &net.UDPAddr{IP: addr.IP, Port: addr.Port + 1}
			if r.Claim(sealRTCP(t, client, rr), elsewhere) {
				t.Fatal("took a packet from an address no connection is armed for")
			}
			sr := sealRTCP(t, client, &rtcp.SenderReport{SSRC: 1}, rr)
			if r.Claim(sr, addr) {
				t.Fatal("took a compound packet led by a sender report (pion's receiver reports read those)")
			}
			if r.Read.Load() != 4 {
				t.Fatalf("read %d, want 4", r.Read.Load())
			}

			x.out.disarm()
			if r.Len() != 0 || r.Claim(sealRTCP(t, client, rr), addr) {
				t.Fatal("still routed after disarming")
			}
		})
	}
}

// TestRTCPRouterMovesWithTheCandidatePair: arming again for a new address
// routes the new one and forgets the old; a second connection armed for
// the same address takes it over without the first one's removal
// undoing that.
func TestRTCPRouterMovesWithTheCandidatePair(t *testing.T) {
	keys := testKeys(t, srtp.ProtectionProfileAeadAes128Gcm)
	a := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	b := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
	x := newRouted(t, keys, a)
	r, out := x.r, x.out
	r.set(out, b)
	r.mu.RLock()
	moved := r.by[addrKey(b)] == out && r.by[addrKey(a)] == nil
	r.mu.RUnlock()
	if !moved || r.Len() != 1 {
		t.Fatal("the route did not follow the new address")
	}
	second := &DirectOut{}
	r.set(second, b)
	r.remove(out)
	r.mu.RLock()
	kept := r.by[addrKey(b)] == second
	r.mu.RUnlock()
	if !kept {
		t.Fatal("removing the first connection removed the second's route")
	}
}

// An IPv4 address seen as IPv4-in-IPv6 (a dual-stack socket) is the same
// route.
func TestRTCPRouterMappedAddress(t *testing.T) {
	keys := testKeys(t, srtp.ProtectionProfileAeadAes128Gcm)
	v4 := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5000}
	x := newRouted(t, keys, v4)
	mapped := &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5000}
	if !x.r.Claim(sealRTCP(t, x.client, &rtcp.ReceiverReport{SSRC: 1}), mapped) {
		t.Fatal("an IPv4-mapped source address was not routed")
	}
}

// BenchmarkRTCPRouterClaim is the per-packet cost of a subscriber's
// receiver report and NACK on the direct read path.
func BenchmarkRTCPRouterClaim(b *testing.B) {
	keys := testKeys(b, srtp.ProtectionProfileAeadAes128Gcm)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	x := newRouted(b, keys, addr)
	r := x.r
	pkts := make([][]byte, b.N)
	for i := range pkts {
		pkts[i] = sealRTCP(b, x.client, &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: x.d.ssrc}}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !r.Claim(pkts[i], addr) {
			b.Fatal("not taken")
		}
	}
}

// FuzzRTCPRouterClaim: whatever arrives at the socket from an armed
// subscriber's address, the router neither panics nor takes what its key
// did not seal.
func FuzzRTCPRouterClaim(f *testing.F) {
	keys := &srtpKeys{profile: srtp.ProtectionProfileAeadAes128Gcm, key: make([]byte, 16), salt: make([]byte, 12)}
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	client, _ := srtp.CreateContext(keys.key, keys.salt, keys.profile)
	f.Add(sealRTCP(f, client, &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 5}}}))
	f.Add(sealRTCP(f, client, &rtcp.TransportLayerNack{MediaSSRC: 5, Nacks: []rtcp.NackPair{{PacketID: 1, LostPackets: 0xffff}}}))
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		x := newRouted(t, keys, addr)
		orig := append([]byte(nil), b...)
		took := x.r.Claim(b, addr)
		if string(b) != string(orig) {
			t.Fatal("the claim changed the datagram")
		}
		// What it takes, the subscriber's key sealed: a fresh context
		// with that key opens it.
		open, err := srtp.CreateContext(keys.key, keys.salt, keys.profile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open.DecryptRTCP(nil, orig, nil); took && err != nil {
			t.Fatalf("took a datagram its key did not seal: %v", err)
		}
	})
}
