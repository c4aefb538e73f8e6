package participant

import (
	"net"
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v2"
)

// feedbackRecorder is an estimator that records the TWCC feedback it is
// given.
type feedbackRecorder struct {
	mu  sync.Mutex
	fbs []*rtcp.TransportLayerCC
}

func (f *feedbackRecorder) GetTargetBitrate() int { return bweInitial }
func (f *feedbackRecorder) Congested() bool       { return false }
func (f *feedbackRecorder) WriteRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pkts {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			f.fbs = append(f.fbs, fb)
		}
	}
	return nil
}

func (f *feedbackRecorder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fbs)
}

// routedDownTrack is a subscriber connection armed for RTCP from addr with
// keys, and one bound VP8 down track (SSRC 5) that has forwarded five
// packets.
func routedDownTrack(t testing.TB, keys *srtpKeys, addr *net.UDPAddr) (*RTCPRouter, *DirectOut, *DownTrack, *recordingWriter, *feedbackRecorder) {
	t.Helper()
	out := &DirectOut{}
	fb := &feedbackRecorder{}
	out.estimator = func() Estimator { return fb }
	sub := testParticipant("PA_sub")
	sub.params.Direct = out
	d, w := sentVideo(sub, 5)
	if err := out.setRemoteKeys(keys); err != nil {
		t.Fatal(err)
	}
	r := NewRTCPRouter()
	out.router = r
	r.set(out, addr)
	return r, out, d, w, fb
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
			keys := testKeys(t, profile)
			addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
			r, out, d, w, fb := routedDownTrack(t, keys, addr)
			client, err := srtp.CreateContext(keys.key, keys.salt, profile)
			if err != nil {
				t.Fatal(err)
			}
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
				rec.Record(d.ssrc, i, int64(i)*1000)
			}
			if !r.Claim(sealRTCP(t, client, rec.BuildFeedbackPacket()...), addr) || fb.count() != 1 {
				t.Fatalf("TWCC feedback: estimator saw %d", fb.count())
			}

			stranger, err := srtp.CreateContext(testKeys(t, profile).key, testKeys(t, profile).salt, profile)
			if err != nil {
				t.Fatal(err)
			}
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

			out.disarm()
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
	r, out, _, _, _ := routedDownTrack(t, keys, a)
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
	r, _, _, _, _ := routedDownTrack(t, keys, v4)
	client, _ := srtp.CreateContext(keys.key, keys.salt, keys.profile)
	mapped := &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5000}
	if !r.Claim(sealRTCP(t, client, &rtcp.ReceiverReport{SSRC: 1}), mapped) {
		t.Fatal("an IPv4-mapped source address was not routed")
	}
}

// BenchmarkRTCPRouterClaim is the per-packet cost of a subscriber's
// receiver report and NACK on the direct read path.
func BenchmarkRTCPRouterClaim(b *testing.B) {
	keys := testKeys(b, srtp.ProtectionProfileAeadAes128Gcm)
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	r, _, d, _, _ := routedDownTrack(b, keys, addr)
	client, _ := srtp.CreateContext(keys.key, keys.salt, keys.profile)
	pkts := make([][]byte, b.N)
	for i := range pkts {
		pkts[i] = sealRTCP(b, client, &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: d.ssrc}}})
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
		r, _, _, _, _ := routedDownTrack(t, keys, addr)
		orig := append([]byte(nil), b...)
		took := r.Claim(b, addr)
		if string(b) != string(orig) {
			t.Fatal("the claim changed the datagram")
		}
		if took && r.Read.Load() != 1 {
			t.Fatal("took a datagram it did not read")
		}
	})
}
