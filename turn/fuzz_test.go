package turn

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun"
)

// FuzzAuthenticatedRequest sends the relay, over its real UDP socket, any
// STUN request from a client holding valid credentials (re-signed after
// fuzzing, so it gets past the integrity check into the screening of
// peers and holders), then a Binding request: the relay answers that
// one, so no request stopped or crashed it.
func FuzzAuthenticatedRequest(f *testing.F) {
	ts := startServer(f, testConfig("127.0.0.1/32"), nil)
	user, pass := ts.creds("@a:x|D")
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	server, err := net.ResolveUDPAddr("udp4", ts.udpAddr)
	if err != nil {
		f.Fatal(err)
	}
	peer := &stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	private := &stun.XORMappedAddress{IP: net.IPv4(10, 0, 0, 1), Port: 9}
	for _, setters := range [][]stun.Setter{
		{stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), xorPeer{peer}},
		{stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), xorPeer{private}, xorPeer{peer}},
		{stun.NewType(stun.MethodChannelBind, stun.ClassRequest), xorPeer{peer}, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0, 0, 0}}},
		{stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}},
		{stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}},
	} {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Raw, true)
	}
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, false)
	buf := make([]byte, 1500)
	f.Fuzz(func(t *testing.T, pkt []byte, sign bool) {
		if sign {
			m := &stun.Message{Raw: append([]byte(nil), pkt...)}
			if m.Decode() == nil {
				// Drop what authentication adds, then sign as the holder.
				keep := m.Attributes[:0]
				for _, a := range m.Attributes {
					switch a.Type {
					case stun.AttrUsername, stun.AttrRealm, stun.AttrNonce, stun.AttrMessageIntegrity, stun.AttrFingerprint:
					default:
						keep = append(keep, a)
					}
				}
				m.Attributes = keep
				m.WriteAttributes()
				if stun.NewUsername(user).AddTo(m) == nil && stun.NewRealm(testRealm).AddTo(m) == nil &&
					stun.NewNonce("n").AddTo(m) == nil && stun.NewLongTermIntegrity(user, testRealm, pass).AddTo(m) == nil {
					pkt = m.Raw
				}
			}
		}
		if _, err := c.WriteTo(pkt, server); err != nil {
			return // larger than a datagram
		}
		probe := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		if _, err := c.WriteTo(probe.Raw, server); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, _, err := c.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("no answer to a Binding request after the fuzzed one")
			}
			if err != nil {
				t.Fatal(err)
			}
			r := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if r.Decode() == nil && r.TransactionID == probe.TransactionID {
				return
			}
		}
	})
}

// xorPeer adds an XOR-PEER-ADDRESS.
type xorPeer struct{ a *stun.XORMappedAddress }

func (p xorPeer) AddTo(m *stun.Message) error { return p.a.AddToAs(m, stun.AttrXORPeerAddress) }

// FuzzParseChannelData: the fast path's ChannelData parser never reads
// past the datagram and accepts only what RFC 8656 §12.4 allows.
func FuzzParseChannelData(f *testing.F) {
	f.Add([]byte{0x40, 0x00, 0x00, 0x02, 'h', 'i'})
	f.Add([]byte{0x7f, 0xff, 0x00, 0x01, 'x', 0, 0, 0})
	f.Add([]byte{0x40, 0x00, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		num, data, ok := parseChannelData(b)
		if !ok {
			return
		}
		if num < 0x4000 || num > 0x7fff {
			t.Fatalf("channel %#x accepted", num)
		}
		if len(data) != int(b[2])<<8|int(b[3]) || len(data)+channelHeader > len(b) {
			t.Fatalf("%d bytes of data from a %d-byte datagram declaring %d", len(data), len(b), int(b[2])<<8|int(b[3]))
		}
	})
}
