package turn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun"

	"github.com/salonhq/salon/turn/credential"
	"github.com/salonhq/salon/turn/internal/turnload"
)

// TestRefusedPeersGet403: a CreatePermission for a refused peer is
// answered 403 (Forbidden) with an ERROR-CODE, as pion/turn's own client
// reads it over UDP; so is a ChannelBind. Refused: the local-use NAT64
// prefix, Teredo, the ranges refused before, and the relay's own listen
// addresses — even though loopback is allow-listed here. Another
// allocation's relayed address stays a valid peer (client → TURN → TURN →
// client).
func TestRefusedPeersGet403(t *testing.T) {
	ts := startServer(t, testConfig("127.0.0.0/8"), nil)
	// Another client's allocation: its relayed address is one of the
	// relay's own.
	other := ts.rawClient(t, "udp", "@bob:test.example")
	otherRelay, err := other.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	udpListen := net.UDPAddrFromAddrPort(mustAddrPort(t, ts.udpAddr))
	tcpListen := net.UDPAddrFromAddrPort(mustAddrPort(t, ts.tcpAddr))

	user, pass := ts.creds("@alice:test.example")
	c := ts.pionClientUDP(t, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	tests := []struct {
		name   string
		peer   *net.UDPAddr
		reason string
	}{
		{"local-use NAT64", &net.UDPAddr{IP: net.ParseIP("64:ff9b:1::a00:1"), Port: 3478}, "peer_nat64_local"},
		{"Teredo", &net.UDPAddr{IP: net.ParseIP("2001:0:4136:e378:8000:63bf:3fff:fdd2"), Port: 3478}, "peer_teredo"},
		{"private", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}, "peer_private"},
		{"cloud metadata", &net.UDPAddr{IP: net.IPv4(169, 254, 169, 254), Port: 80}, "peer_metadata"},
		{"the UDP listener", udpListen, "peer_self"},
		{"the TCP listener", tcpListen, "peer_self"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.refusals(t, tt.reason)
			err := c.CreatePermission(tt.peer)
			if err == nil || !strings.Contains(err.Error(), "error 403: Forbidden") {
				t.Fatalf("CreatePermission to %v: %v, want error 403: Forbidden", tt.peer, err)
			}
			if got := ts.refusals(t, tt.reason); got != before+1 {
				t.Errorf("refusals{%s} = %v, want %v", tt.reason, got, before+1)
			}
		})
	}

	// A ChannelBind to a refused peer: 403 too (pion alone answers 401).
	raw := ts.rawClient(t, "udp", "@carol:test.example")
	if _, err := raw.Allocate(); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []*net.UDPAddr{{IP: net.ParseIP("2001:0:4136:e378:8000:63bf:3fff:fdd2"), Port: 1}, udpListen} {
		var er *turnload.ErrorResponse
		if err := raw.ChannelBind(0x4001, peer); !errors.As(err, &er) || er.Code != stun.CodeForbidden {
			t.Errorf("ChannelBind to %v: %v, want 403", peer, err)
		}
	}
	// A refused peer among allowed ones: nothing is installed, the
	// allowed peer gets no permission either.
	echo := echoPeer(t)
	if err := c.CreatePermission(echo, tcpListen); err == nil || !strings.Contains(err.Error(), "error 403") {
		t.Fatalf("CreatePermission for an allowed and a refused peer: %v, want 403", err)
	}
	// An allowed peer, and another allocation, still work.
	if err := c.CreatePermission(echo); err != nil {
		t.Fatalf("CreatePermission to the allow-listed echo peer: %v", err)
	}
	if err := c.CreatePermission(otherRelay); err != nil {
		t.Fatalf("CreatePermission to another allocation's relayed address: %v", err)
	}
}

// TestOwnAddressesDropped: a permission is for an IP, any port; a client
// that holds one for the relay's IP (allow-listed here, the public relay
// IP in production) still cannot send to the relay's listeners: the
// packets are dropped and counted. Another allocation is reached.
func TestOwnAddressesDropped(t *testing.T) {
	ts := startServer(t, testConfig("127.0.0.0/8"), nil)
	echo := echoPeer(t)
	a := ts.rawClient(t, "udp", "@alice:test.example")
	b := ts.rawClient(t, "udp", "@bob:test.example")
	if _, err := a.Allocate(); err != nil {
		t.Fatal(err)
	}
	bRelay, err := b.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	// Both hold permissions for 127.0.0.1 through the echo peer, and B
	// listens on a channel for it.
	if err := a.CreatePermission(echo); err != nil {
		t.Fatal(err)
	}
	if err := b.ChannelBind(0x4000, echo); err != nil {
		t.Fatal(err)
	}
	before := ts.refusals(t, "peer_self")
	for _, listener := range []string{ts.udpAddr, ts.tcpAddr} {
		for range 5 {
			if err := a.SendIndication(net.UDPAddrFromAddrPort(mustAddrPort(t, listener)), []byte("loop")); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "the packets to be refused", func() bool { return ts.refusals(t, "peer_self") >= before+10 })
	if got := ts.metric(t, "salon_turn_relayed_packets_total", "direction", "client_to_peer"); got != 0 {
		t.Fatalf("%v packets relayed to the relay's own listeners", got)
	}
	// Another allocation is reached.
	if err := a.SendIndication(bRelay, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the packet relayed to the other allocation", func() bool {
		return ts.metric(t, "salon_turn_relayed_packets_total", "direction", "client_to_peer") >= 1
	})
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// holders is a Holders whose answers the test sets.
type holders struct {
	mu   sync.Mutex
	dead map[string]bool // "user" or "user/device"
	fail bool
}

func (h *holders) Live(_ context.Context, user, device string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		return false, errors.New("database down")
	}
	return !h.dead[user] && !h.dead[credential.Principal(user, device)], nil
}

func (h *holders) kill(who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead[who] = true
}

// TestRevokedCredentials: with Holders, a credential whose device logged
// out, or whose account was deactivated, is refused at Allocate (401) and
// an allocation made before cannot be refreshed; other devices of the user
// go on, and a homeserver that cannot answer refuses.
func TestRevokedCredentials(t *testing.T) {
	h := &holders{dead: map[string]bool{}}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Params{Config: testConfig(), Logger: testLogger(), UDPConn: udp, Holders: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := &testServer{Server: s, udpAddr: udp.LocalAddr().String()}
	dial := func(principal string) *turnload.Client {
		u, p, _ := s.Credentials(principal, time.Now())
		c, err := turnload.Dial("udp", ts.udpAddr, u, p)
		if err != nil {
			t.Fatal(err)
		}
		c.RTO = 100 * time.Millisecond
		t.Cleanup(func() { c.Close() })
		return c
	}
	unauthorized := func(err error) bool {
		var er *turnload.ErrorResponse
		return errors.As(err, &er) && er.Code == stun.CodeUnauthorized
	}

	phone := dial(credential.Principal("@alice:test.example", "PHONE"))
	laptop := dial(credential.Principal("@alice:test.example", "LAPTOP"))
	if _, err := phone.Allocate(); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Allocate(); err != nil {
		t.Fatal(err)
	}
	// The phone logs out.
	h.kill("@alice:test.example/PHONE")
	if err := phone.Refresh(10 * time.Minute); !unauthorized(err) {
		t.Fatalf("Refresh after logout: %v, want 401", err)
	}
	if _, err := dial(credential.Principal("@alice:test.example", "PHONE")).Allocate(); !unauthorized(err) {
		t.Fatalf("Allocate after logout: %v, want 401", err)
	}
	if err := laptop.Refresh(10 * time.Minute); err != nil {
		t.Fatalf("another device's Refresh: %v", err)
	}
	// The account is deactivated: every credential of it, with or
	// without a device.
	h.kill("@alice:test.example")
	if err := laptop.Refresh(10 * time.Minute); !unauthorized(err) {
		t.Fatalf("Refresh after deactivation: %v, want 401", err)
	}
	if _, err := dial("@alice:test.example").Allocate(); !unauthorized(err) {
		t.Fatalf("Allocate after deactivation: %v, want 401", err)
	}
	if n := s.counters.refusals[refusalRevoked].Load(); n != 4 {
		t.Errorf("refusals{revoked} = %d, want 4", n)
	}
	// A logged-out device may still delete its allocation.
	if err := phone.Refresh(0); err != nil {
		t.Fatalf("deleting the allocation after logout: %v", err)
	}
	waitFor(t, "the phone's allocation to go", func() bool { return s.AllocationCount() == 1 })
	// Principals that name no Matrix user (SFU identities) are not asked
	// about; a failing homeserver refuses Matrix users.
	h.mu.Lock()
	h.fail = true
	h.mu.Unlock()
	if _, err := dial("J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU").Allocate(); err != nil {
		t.Fatalf("SFU identity: %v", err)
	}
	if _, err := dial(credential.Principal("@bob:test.example", "D")).Allocate(); !unauthorized(err) {
		t.Fatalf("Allocate while the homeserver fails: %v, want 401", err)
	}
}

// BenchmarkOwnPeer is the check every relayed client packet now passes
// (relayConn.WriteTo): a peer on another port of the relay's IP.
func BenchmarkOwnPeer(b *testing.B) {
	ts := startServer(b, testConfig(), nil)
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7882}
	for b.Loop() {
		if ts.ownPeer(peer) {
			b.Fatal("the SFU's port is not the relay's")
		}
	}
}

// BenchmarkScreenChannelData is what guardConn adds to each ChannelData
// packet a client sends before pion sees it.
func BenchmarkScreenChannelData(b *testing.B) {
	ts := startServer(b, testConfig(), nil)
	ss := ts.newSession(transportUDP)
	pkt := make([]byte, 1204)
	pkt[0], pkt[1], pkt[2], pkt[3] = 0x40, 0x00, 0x04, 0xb0
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	for b.Loop() {
		if ss.screen(pkt, from, nil) {
			b.Fatal("ChannelData screened")
		}
	}
}
