package turn

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v2"

	"github.com/salonhq/salon/turn/internal/turnload"
)

// A pion/turn client allocates, reaches an allow-listed loopback echo peer
// through the relay and hears it back, over UDP and over TCP.
func TestRelayRoundTrip(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, testConfig("127.0.0.0/8"), nil)
			peer := echoPeer(t)
			user, pass := ts.creds("@alice:test.example")
			var c *pionturn.Client
			if network == "udp" {
				c = ts.pionClientUDP(t, user, pass)
			} else {
				c = ts.pionClientTCP(t, user, pass)
			}
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			if got := relay.LocalAddr().(*net.UDPAddr).IP.String(); got != "127.0.0.1" {
				t.Errorf("relayed address %s, want the relay_ip 127.0.0.1", got)
			}

			// The first packets go as Send indications, later ones as
			// ChannelData once pion's client has bound a channel.
			buf := make([]byte, 1500)
			for i := range 20 {
				msg := []byte(fmt.Sprintf("ping %d over %s", i, network))
				if _, err := relay.WriteTo(msg, peer); err != nil {
					t.Fatalf("WriteTo: %v", err)
				}
				relay.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := relay.ReadFrom(buf)
				if err != nil {
					t.Fatalf("ReadFrom after %d: %v", i, err)
				}
				if !bytes.Equal(buf[:n], msg) || from.String() != peer.String() {
					t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, msg, peer)
				}
				time.Sleep(5 * time.Millisecond)
			}

			if got := ts.metric(t, "salon_turn_allocations", "transport", network); got != 1 {
				t.Errorf("allocations{%s} = %v, want 1", network, got)
			}
			if got := ts.metric(t, "salon_turn_allocations_created_total", "transport", network); got != 1 {
				t.Errorf("allocations_created_total{%s} = %v, want 1", network, got)
			}
			if got := ts.metric(t, "salon_turn_permissions_granted_total"); got < 1 {
				t.Errorf("permissions_granted_total = %v", got)
			}
			for _, dir := range []string{"client_to_peer", "peer_to_client"} {
				if got := ts.metric(t, "salon_turn_relayed_packets_total", "direction", dir); got != 20 {
					t.Errorf("relayed_packets_total{%s} = %v, want 20", dir, got)
				}
				if got := ts.metric(t, "salon_turn_relayed_bytes_total", "direction", dir); got < float64(20*len("ping 0 over udp")) {
					t.Errorf("relayed_bytes_total{%s} = %v", dir, got)
				}
			}
			if network == "tcp" {
				if got := ts.metric(t, "salon_turn_connections", "transport", "tcp"); got != 1 {
					t.Errorf("connections{tcp} = %v, want 1", got)
				}
			}

			relay.Close() // Refresh with lifetime 0
			waitFor(t, "the allocation to go", func() bool { return ts.AllocationCount() == 0 })
			// Traffic of closed allocations stays counted.
			if got := ts.metric(t, "salon_turn_relayed_packets_total", "direction", "client_to_peer"); got != 20 {
				t.Errorf("after close relayed_packets_total = %v, want 20", got)
			}
		})
	}
}

// Closing a TCP connection ends its allocations at once (pion/turn v2
// alone would keep them until their lifetime ran out).
func TestTCPCloseEndsAllocations(t *testing.T) {
	ts := startServer(t, testConfig(), nil)
	c := ts.rawClient(t, "tcp", "@alice:test.example")
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if ts.AllocationCount() != 1 {
		t.Fatalf("AllocationCount = %d", ts.AllocationCount())
	}
	c.Close()
	waitFor(t, "the allocation to end with its connection", func() bool { return ts.AllocationCount() == 0 })
	waitFor(t, "the connection to be forgotten", func() bool {
		return ts.metric(t, "salon_turn_connections", "transport", "tcp") == 0
	})
}

func TestRefusals(t *testing.T) {
	t.Run("peer 127.0.0.1 without allow-list", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		user, pass := ts.creds("@alice:test.example")
		c := ts.pionClientUDP(t, user, pass)
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
		if err == nil {
			t.Fatal("CreatePermission to 127.0.0.1 succeeded")
		}
		if got := ts.refusals(t, "peer_loopback"); got != 1 {
			t.Errorf("refusals{peer_loopback} = %v, want 1", got)
		}
	})
	t.Run("peer 10.0.0.1 without allow-list", func(t *testing.T) {
		// Only the permission request goes to the server; nothing is sent
		// towards 10.0.0.1.
		ts := startServer(t, testConfig("127.0.0.0/8"), nil)
		user, pass := ts.creds("@alice:test.example")
		c := ts.pionClientUDP(t, user, pass)
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}); err == nil {
			t.Fatal("CreatePermission to 10.0.0.1 succeeded")
		}
		if got := ts.refusals(t, "peer_private"); got != 1 {
			t.Errorf("refusals{peer_private} = %v, want 1", got)
		}
	})
	t.Run("channel bind to a refused peer", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		c := ts.rawClient(t, "udp", "@alice:test.example")
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		if err := c.ChannelBind(0x4000, &net.UDPAddr{IP: net.IPv4(169, 254, 169, 254), Port: 80}); !isTurnError(err) {
			t.Fatalf("ChannelBind to the metadata address: %v", err)
		}
		if got := ts.refusals(t, "peer_metadata"); got != 1 {
			t.Errorf("refusals{peer_metadata} = %v, want 1", got)
		}
	})
	t.Run("expired credentials", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		user, pass := expiredCreds("@alice:test.example")
		c := ts.pionClientUDP(t, user, pass)
		if _, err := c.Allocate(); err == nil {
			t.Fatal("Allocate with expired credentials succeeded")
		}
		if got := ts.refusals(t, "auth_expired"); got < 1 {
			t.Errorf("refusals{auth_expired} = %v", got)
		}
		if ts.AllocationCount() != 0 {
			t.Error("an allocation exists")
		}
	})
	t.Run("forged password", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		user, _ := ts.creds("@alice:test.example")
		c := ts.pionClientUDP(t, user, "Zm9yZ2VkIHBhc3N3b3JkIQ==")
		if _, err := c.Allocate(); err == nil {
			t.Fatal("Allocate with a forged password succeeded")
		}
		if ts.AllocationCount() != 0 {
			t.Error("an allocation exists")
		}
	})
	t.Run("forged username", func(t *testing.T) {
		// Alice's password with a username naming someone else.
		ts := startServer(t, testConfig(), nil)
		user, pass := ts.creds("@alice:test.example")
		forged := user[:len(user)-len("@alice:test.example")] + "@mallory:test.example"
		c := ts.pionClientUDP(t, forged, pass)
		if _, err := c.Allocate(); err == nil {
			t.Fatal("Allocate with a forged username succeeded")
		}
	})
	t.Run("bare timestamp username", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		user, pass, err := pionturn.GenerateLongTermCredentials(testSecret, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c := ts.pionClientUDP(t, user, pass)
		if _, err := c.Allocate(); err == nil {
			t.Fatal("Allocate with pion's bare-timestamp form succeeded")
		}
		if got := ts.refusals(t, "auth_malformed"); got < 1 {
			t.Errorf("refusals{auth_malformed} = %v", got)
		}
	})
	t.Run("user over the allocation limit", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxAllocationsPerUser = 2
		ts := startServer(t, cfg, nil)
		var alice []*turnload.Client
		for i := range 2 {
			c := ts.rawClient(t, "udp", "@alice:test.example")
			if _, err := c.Allocate(); err != nil {
				t.Fatalf("allocation %d: %v", i, err)
			}
			alice = append(alice, c)
		}
		third := ts.rawClient(t, "tcp", "@alice:test.example")
		if _, err := third.Allocate(); !isTurnError(err) {
			t.Fatalf("third allocation over TCP: %v, want a TURN error", err)
		}
		if got := ts.refusals(t, "user_quota"); got != 1 {
			t.Errorf("refusals{user_quota} = %v, want 1", got)
		}
		// Another user is not affected.
		bob := ts.rawClient(t, "udp", "@bob:test.example")
		if _, err := bob.Allocate(); err != nil {
			t.Fatalf("bob: %v", err)
		}
		// Once Alice deletes one, she may allocate again.
		if err := alice[0].Refresh(0); err != nil {
			t.Fatal(err)
		}
		again := ts.rawClient(t, "udp", "@alice:test.example")
		if _, err := again.Allocate(); err != nil {
			t.Fatalf("after a delete: %v", err)
		}
	})
	t.Run("another user's credentials on an allocation", func(t *testing.T) {
		ts := startServer(t, testConfig(), nil)
		c := ts.rawClient(t, "udp", "@alice:test.example")
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		c.SetCredentials(ts.creds("@bob:test.example"))
		if err := c.Refresh(10 * time.Minute); !isTurnError(err) {
			t.Fatalf("Refresh with Bob's credentials: %v", err)
		}
		if got := ts.refusals(t, "auth_user_mismatch"); got != 1 {
			t.Errorf("refusals{auth_user_mismatch} = %v", got)
		}
		c.SetCredentials(ts.creds("@alice:test.example"))
		if err := c.Refresh(10 * time.Minute); err != nil {
			t.Fatalf("Refresh with a fresh credential of Alice's: %v", err)
		}
	})
}

func TestLifetimeCap(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAllocationLifetime = 300 * time.Millisecond
	ts := startServer(t, cfg, nil)
	c := ts.rawClient(t, "udp", "@alice:test.example")
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lifetime cap", func() bool { return ts.AllocationCount() == 0 })
	if got := ts.refusals(t, "lifetime_cap"); got != 1 {
		t.Errorf("refusals{lifetime_cap} = %v, want 1", got)
	}
	c.RTO = 20 * time.Millisecond
	if err := c.Refresh(10 * time.Minute); err == nil {
		t.Error("Refresh after the cap succeeded")
	}
}

func TestBandwidthCaps(t *testing.T) {
	tests := []struct {
		name      string
		perAlloc  int64
		total     int64
		wantLabel string
	}{
		{"per allocation", 12_000, -1, "allocation"},
		{"total", -1, 12_000, "total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("127.0.0.0/8")
			cfg.AllocationBytesPerSecond = tt.perAlloc
			cfg.TotalBytesPerSecond = tt.total
			ts := startServer(t, cfg, nil)
			sink := sinkPeer(t)
			c := ts.boundClient(t, "@alice:test.example", 0x4000, sink.LocalAddr().(*net.UDPAddr))
			payload := make([]byte, 1200)
			for range 50 {
				if err := c.SendChannelData(0x4000, payload); err != nil {
					t.Fatal(err)
				}
			}
			// 12,000 bytes/s with a one-second bucket lets ten
			// 1,200-byte packets through at once (one more may refill
			// while sending).
			got := 0
			buf := make([]byte, 2048)
			for {
				sink.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if _, _, err := sink.ReadFrom(buf); err != nil {
					break
				}
				got++
			}
			if got < 10 || got > 11 {
				t.Errorf("sink got %d packets, want 10 (11 at most)", got)
			}
			dropped := ts.metric(t, "salon_turn_dropped_packets_total", "direction", "client_to_peer", "cap", tt.wantLabel)
			if int(dropped)+got != 50 {
				t.Errorf("dropped{%s} = %v with %d delivered, want 50 together", tt.wantLabel, dropped, got)
			}
		})
	}
}

func TestURIsAndCredentials(t *testing.T) {
	ts := startServer(t, testConfig(), nil)
	udpPort := ts.udpAddr[len("127.0.0.1:"):]
	tcpPort := ts.tcpAddr[len("127.0.0.1:"):]
	got := ts.URIs("turn.example.org")
	want := []string{
		"turn:turn.example.org:" + udpPort + "?transport=udp",
		"turn:turn.example.org:" + tcpPort + "?transport=tcp",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("URIs = %v, want %v", got, want)
	}
	if got := ts.URIs("2001:db8::1")[0]; got != "turn:[2001:db8::1]:"+udpPort+"?transport=udp" {
		t.Errorf("IPv6 URI = %s", got)
	}

	now := time.Unix(1700000000, 0)
	user, pass, ttl := ts.Credentials("@alice:test.example", now)
	if ttl != time.Hour || user != "1700003600:@alice:test.example" || pass == "" {
		t.Errorf("Credentials = %q, %q, %v", user, pass, ttl)
	}
}

// An allocation over a TLS listener, with URIs advertising turns:.
func TestTLS(t *testing.T) {
	cfg := testConfig("127.0.0.0/8")
	cfg.TLSCert, cfg.TLSKey = writeTestCert(t)
	cfg.TLSPublicPort = 443
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, tl)
	if uris := ts.URIs("turn.example.org"); uris[len(uris)-1] != "turns:turn.example.org:443?transport=tcp" {
		t.Errorf("URIs = %v", uris)
	}
	conn := dialTLS(t, ts.tlsAddr)
	user, pass := ts.creds("@alice:test.example")
	c := pionClient(t, pionturn.NewSTUNConn(conn), ts.tlsAddr, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	defer relay.Close()
	peer := echoPeer(t)
	if _, err := relay.WriteTo([]byte("hello over tls"), peer); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	relay.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello over tls" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if got := ts.metric(t, "salon_turn_allocations", "transport", "tls"); got != 1 {
		t.Errorf("allocations{tls} = %v", got)
	}

	// A client that does not speak TLS is dropped and counted.
	raw, err := net.Dial("tcp4", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte("this is not a TLS client hello, not at all....."))
	raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	raw.Read(buf)
	raw.Close()
	waitFor(t, "the TLS refusal", func() bool { return ts.refusals(t, "tls_handshake") == 1 })
}
