package turn

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/salonhq/salon/turn/internal/turnload"
)

// openSockets counts this process's open sockets.
func openSockets(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// 1,000 allocate/refresh/delete cycles over UDP and 200 over TCP, then a
// Close with allocations and connections still live, leave no goroutine
// and no socket behind.
func TestNoLeaksAfterCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1,200 TURN cycles")
	}
	// Warm the runtime's poller so its descriptor is not counted as ours.
	if c, err := net.ListenPacket("udp4", "127.0.0.1:0"); err == nil {
		c.Close()
	}
	defer goleak.VerifyNone(t)
	socketsBefore := openSockets(t)

	cfg := testConfig()
	cfg.MaxAllocationsPerUser = 3 // each cycle deletes before the next
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Params{Config: cfg, Logger: testLogger(), UDPConn: udp, TCPListener: tcp})
	if err != nil {
		t.Fatal(err)
	}
	serverUDP, serverTCP := udp.LocalAddr().String(), tcp.Addr().String()

	cycle := func(network, server string) {
		t.Helper()
		u, p, _ := s.Credentials("@cycler:test.example", time.Now())
		c, err := turnload.Dial(network, server, u, p)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Allocate(); err != nil {
			t.Fatalf("%s allocate: %v", network, err)
		}
		if err := c.Refresh(10 * time.Minute); err != nil {
			t.Fatalf("%s refresh: %v", network, err)
		}
		if err := c.Refresh(0); err != nil {
			t.Fatalf("%s delete: %v", network, err)
		}
	}
	for i := range 1000 {
		cycle("udp", serverUDP)
		if i%5 == 0 {
			cycle("tcp", serverTCP)
		}
	}
	waitFor(t, "all cycled allocations to go", func() bool { return s.AllocationCount() == 0 })

	// Leave some allocations live, over both transports, for Close.
	var live []*turnload.Client
	for i, network := range []string{"udp", "udp", "tcp", "tcp"} {
		server := serverUDP
		if network == "tcp" {
			server = serverTCP
		}
		u, p, _ := s.Credentials("@live"+string(rune('a'+i))+":test.example", time.Now())
		c, err := turnload.Dial(network, server, u, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		live = append(live, c)
	}
	if n := s.AllocationCount(); n != 4 {
		t.Fatalf("AllocationCount = %d, want 4", n)
	}

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := s.AllocationCount(); n != 0 {
		t.Errorf("after Close AllocationCount = %d", n)
	}
	for _, c := range live {
		c.Close()
	}
	if after := openSockets(t); after != socketsBefore {
		t.Errorf("open sockets: %d before, %d after", socketsBefore, after)
	}
}
