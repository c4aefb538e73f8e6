package turn

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salonhq/salon/turn/credential"
	"github.com/salonhq/salon/turn/internal/turnload"
)

const (
	testRealm  = "test.example"
	testSecret = "0123456789abcdef-test-secret"
)

func testLogger() *slog.Logger {
	if os.Getenv("TURN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig relays on loopback; allow lists peers (none by default).
func testConfig(allow ...string) Config {
	c := Defaults()
	c.Realm = testRealm
	c.SharedSecret = testSecret
	c.RelayIP = "127.0.0.1"
	c.RelayBind = "127.0.0.1"
	c.RelayPortMin = 42000
	c.RelayPortMax = 58999
	c.AllowPeers = allow
	c.AllocationBytesPerSecond = -1
	return c
}

type testServer struct {
	*Server
	reg     *prometheus.Registry
	udpAddr string
	tcpAddr string
	tlsAddr string
}

// startServer runs a server on loopback sockets of its own. tlsListener
// is optional.
func startServer(t testing.TB, cfg Config, tlsListener net.Listener) *testServer {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(Params{Config: cfg, Logger: testLogger(), Registerer: reg,
		UDPConn: udp, TCPListener: tcp, TLSListener: tlsListener})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := &testServer{Server: s, reg: reg, udpAddr: udp.LocalAddr().String(), tcpAddr: tcp.Addr().String()}
	if tlsListener != nil {
		ts.tlsAddr = tlsListener.Addr().String()
	}
	return ts
}

func (ts *testServer) creds(user string) (string, string) {
	u, p, _ := ts.Credentials(user, time.Now())
	return u, p
}

// metric reads one sample of a metric family by its labels.
func (ts *testServer) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func (ts *testServer) refusals(t testing.TB, reason string) float64 {
	return ts.metric(t, "salon_turn_refusals_total", "reason", reason)
}

// rawClient dials the server with the minimal client.
func (ts *testServer) rawClient(t testing.TB, network, user string) *turnload.Client {
	t.Helper()
	addr := ts.udpAddr
	if network == "tcp" {
		addr = ts.tcpAddr
	}
	u, p := ts.creds(user)
	c, err := turnload.Dial(network, addr, u, p)
	if err != nil {
		t.Fatal(err)
	}
	c.RTO = 100 * time.Millisecond
	t.Cleanup(func() { c.Close() })
	return c
}

// boundClient allocates for user over UDP with the minimal client and
// binds channel ch to peer.
func (ts *testServer) boundClient(t testing.TB, user string, ch uint16, peer *net.UDPAddr) *turnload.Client {
	t.Helper()
	c := ts.rawClient(t, "udp", user)
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ChannelBind(ch, peer); err != nil {
		t.Fatal(err)
	}
	return c
}

// sinkPeer is a loopback peer that only receives; the test reads it.
func sinkPeer(t testing.TB) *net.UDPConn {
	t.Helper()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	return sink
}

// pionClient is pion/turn's own client over "udp", "tcp" or "tls"
// (conn given).
func pionClient(t testing.TB, conn net.PacketConn, server, username, password string) *pionturn.Client {
	t.Helper()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: server,
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          testRealm,
		RTO:            100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func (ts *testServer) pionClientUDP(t testing.TB, username, password string) *pionturn.Client {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return pionClient(t, conn, ts.udpAddr, username, password)
}

func (ts *testServer) pionClientTCP(t testing.TB, username, password string) *pionturn.Client {
	conn, err := net.Dial("tcp4", ts.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return pionClient(t, pionturn.NewSTUNConn(conn), ts.tcpAddr, username, password)
}

// echoPeer answers every datagram to its sender, on 127.0.0.1.
func echoPeer(t testing.TB) *net.UDPAddr {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().(*net.UDPAddr)
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isTurnError(err error) bool {
	var er *turnload.ErrorResponse
	return errors.As(err, &er) || errors.Is(err, turnload.ErrTimeout)
}

func expiredCreds(user string) (string, string) {
	return credential.Generate([]byte(testSecret), user, time.Hour, time.Now().Add(-2*time.Hour))
}
