package turn

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/salonhq/salon/turn/internal/turnload"
)

// BenchmarkRelay bounces 1,200-byte packets through the relay on loopback
// (client → relay → echo peer → relay → client) with 1, 10 and 100
// allocations. One op is one round trip, two relayed packets. The load
// generator shares the process and the cores; scripts/bench-turn.sh runs
// the server in its own process and compares it with coturn.
func BenchmarkRelay(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("allocations=%d", n), func(b *testing.B) {
			cfg := testConfig("127.0.0.0/8")
			cfg.MaxAllocationsPerUser = -1
			ts := startServer(b, cfg, nil)
			b.ResetTimer()
			res, err := turnload.Run(context.Background(), turnload.Load{
				Server:        ts.udpAddr,
				Credentials:   func(int) (string, string) { return ts.creds("@bench:test.example") },
				Allocations:   n,
				PacketSize:    1200,
				Window:        8,
				Warmup:        100 * time.Millisecond,
				Duration:      time.Minute,
				MaxRoundTrips: uint64(b.N),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(res.PPS(), "pkt/s")
			b.ReportMetric(res.Mbps(), "Mbit/s")
			b.ReportMetric(float64(turnload.Percentile(res.Setup, 50).Microseconds()), "setup-p50-µs")
		})
	}
}

// BenchmarkAllocate measures allocation setup: Allocate with its 401
// challenge round trip, then delete.
func BenchmarkAllocate(b *testing.B) {
	cfg := testConfig()
	cfg.MaxAllocationsPerUser = -1
	ts := startServer(b, cfg, nil)
	user, pass := ts.creds("@bench:test.example")
	for b.Loop() {
		c, err := turnload.Dial("udp", ts.udpAddr, user, pass)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Allocate(); err != nil {
			b.Fatal(err)
		}
		if err := c.Refresh(0); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
