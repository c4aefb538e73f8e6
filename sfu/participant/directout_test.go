package participant

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
)

// captureSocket records what is written to it; after failAfter writes
// (when set) it reports a closed socket.
type captureSocket struct {
	mu        sync.Mutex
	pkts      [][]byte
	failAfter int
}

func (c *captureSocket) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAfter > 0 && len(c.pkts) >= c.failAfter {
		return 0, net.ErrClosed
	}
	c.pkts = append(c.pkts, append([]byte(nil), b...))
	return len(b), nil
}

func (c *captureSocket) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

// noAllocSocket drops what it is given without allocating.
type noAllocSocket struct{ n int }

func (s *noAllocSocket) WriteTo(b []byte, _ net.Addr) (int, error) { s.n++; return len(b), nil }
func (s *noAllocSocket) LocalAddr() net.Addr                       { return &net.UDPAddr{} }

func testKeys(t testing.TB, profile srtp.ProtectionProfile) *srtpKeys {
	kl, _ := profile.KeyLen()
	sl, _ := profile.SaltLen()
	k := &srtpKeys{profile: profile, key: make([]byte, kl), salt: make([]byte, sl)}
	_, _ = rand.Read(k.key)
	_, _ = rand.Read(k.salt)
	return k
}

// failWriter is pion's path in these tests: reaching it is a failure.
type failWriter struct{ t testing.TB }

func (w failWriter) Write(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
	w.t.Error("armed stream wrote through pion's path")
	return 0, nil
}

func TestDirectStreamOutputDecryptsWithThePeersContext(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAes128CmHmacSha1_80} {
		t.Run(profile.String(), func(t *testing.T) {
			keys := testKeys(t, profile)
			sock := &captureSocket{}
			out := &DirectOut{}
			w := out.BindLocalStream(nil, interceptor.RTPWriterFunc(failWriter{t}.Write))
			out.arm(keys, sock, &net.UDPAddr{})
			var sent []rtp.Packet
			for i := 0; i < 5; i++ {
				p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65533 + uint16(i), Timestamp: 90000 * uint32(i), SSRC: 77, Marker: i%2 == 0}, Payload: bytes.Repeat([]byte{byte(i)}, 100+i)}
				if err := p.Header.SetExtension(3, []byte{0, byte(i)}); err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(&p.Header, p.Payload, nil); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, p)
			}
			peer, err := srtp.CreateContext(keys.key, keys.salt, profile)
			if err != nil {
				t.Fatal(err)
			}
			if len(sock.pkts) != len(sent) {
				t.Fatalf("%d datagrams, want %d", len(sock.pkts), len(sent))
			}
			for i, c := range sock.pkts {
				var h rtp.Header
				plain, err := peer.DecryptRTP(nil, c, &h)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				var got rtp.Packet
				if err := got.Unmarshal(plain); err != nil {
					t.Fatal(err)
				}
				want := sent[i]
				if got.SequenceNumber != want.SequenceNumber || got.Timestamp != want.Timestamp || got.SSRC != want.SSRC ||
					got.Marker != want.Marker || got.PayloadType != want.PayloadType || !bytes.Equal(got.Payload, want.Payload) ||
					!bytes.Equal(got.GetExtension(3), want.GetExtension(3)) {
					t.Fatalf("packet %d: got %+v, want %+v", i, got.Header, want.Header)
				}
			}
		})
	}
}

func TestDirectStreamUnarmedUsesPionsPath(t *testing.T) {
	out := &DirectOut{}
	var through int
	w := out.BindLocalStream(nil, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
		through++
		return 0, nil
	}))
	h := rtp.Header{Version: 2, SSRC: 1}
	_, _ = w.Write(&h, []byte{1}, nil)
	out.arm(testKeys(t, srtp.ProtectionProfileAeadAes128Gcm), &noAllocSocket{}, &net.UDPAddr{})
	_, _ = w.Write(&h, []byte{1}, nil)
	out.disarm()
	_, _ = w.Write(&h, []byte{1}, nil)
	if through != 2 {
		t.Fatalf("%d writes through pion's path, want 2 (before arming and after disarming)", through)
	}
}

func TestDirectStreamClosedSocket(t *testing.T) {
	out := &DirectOut{}
	sock := &captureSocket{failAfter: 2}
	w := out.BindLocalStream(nil, interceptor.RTPWriterFunc(failWriter{t}.Write))
	out.arm(testKeys(t, srtp.ProtectionProfileAeadAes128Gcm), sock, &net.UDPAddr{})
	var errs []error
	for i := 0; i < 4; i++ {
		h := rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(i)}
		_, err := w.Write(&h, make([]byte, 50), nil)
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], net.ErrClosed) || !errors.Is(errs[3], net.ErrClosed) {
		t.Fatalf("errors %v", errs)
	}
}

// armedStream is an armed AES-GCM stream writing to a socket that drops
// its packets, with a video-sized packet to write through it.
func armedStream(tb testing.TB) (interceptor.RTPWriter, *rtp.Header, []byte) {
	out := &DirectOut{}
	w := out.BindLocalStream(nil, interceptor.RTPWriterFunc(failWriter{tb}.Write))
	out.arm(testKeys(tb, srtp.ProtectionProfileAeadAes128Gcm), &noAllocSocket{}, &net.UDPAddr{})
	h := &rtp.Header{Version: 2, PayloadType: 96, SSRC: 5, Extensions: make([]rtp.Extension, 0, 4)}
	_ = h.SetExtension(3, []byte{0, 1})
	return w, h, make([]byte, 1100)
}

func TestDirectStreamAllocatesNothing(t *testing.T) {
	w, h, payload := armedStream(t)
	_, _ = w.Write(h, payload, nil) // creates the context
	allocs := testing.AllocsPerRun(1000, func() {
		h.SequenceNumber++
		h.Timestamp += 3000
		if _, err := w.Write(h, payload, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
}

func BenchmarkDirectStream(b *testing.B) {
	w, h, payload := armedStream(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.SequenceNumber++
		if _, err := w.Write(h, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRolloverCounter(t *testing.T) {
	var r rocTracker
	steps := []struct {
		seq uint16
		roc uint32
	}{
		{65530, 0}, {65535, 0}, {2, 1}, {65534, 0}, // a NACK answer from before the wrap
		{3, 1}, {1, 1}, {30000, 1}, {60000, 1}, {10, 2}, {64000, 1},
	}
	for i, s := range steps {
		if got := r.next(s.seq); got != s.roc {
			t.Fatalf("step %d: seq %d got roc %d, want %d", i, s.seq, got, s.roc)
		}
	}
}
