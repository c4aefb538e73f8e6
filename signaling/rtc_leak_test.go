package signaling_test

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
)

// TestNoLeaksAfterJoinPublishLeaveCycles: a participant joins (through
// /rtc and /rtc/v1 in turn), publishes, is received by a listener and
// leaves, over and over (50 cycles; set
// SALON_SFU_CYCLES=500 for the full run). Goroutines, file descriptors and
// heap return to baseline, and nothing is left running after Close.
func TestNoLeaksAfterJoinPublishLeaveCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cycles := 50
	if v, err := strconv.Atoi(os.Getenv("SALON_SFU_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	s := startServerNoCleanup(t, sfu.Config{})
	defer s.close()
	// The listener keeps no message history, so the heap figure is the
	// server's (and the clients' live state), not a growing log.
	listener, err := lktest.Connect(ctxT(t, 10*time.Second), s.base, token(t, "call", "listener"), lktest.Options{AutoSubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()

	cycle := func(i int) {
		ctx := ctxT(t, 20*time.Second)
		// Every other cycle joins through /rtc/v1 (one peer connection).
		c, err := lktest.Connect(ctx, s.base, token(t, "call", "p"+strconv.Itoa(i)), lktest.Options{AutoSubscribe: true, SinglePeerConnection: i%2 == 1})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		src, err := c.PublishAudio(ctx, "mic", nil)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := listener.WaitPackets(ctx, "audio", src.Info.Sid, 2); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		src.Stop()
		c.Leave()
		deadline := time.Now().Add(5 * time.Second)
		for s.sfu.Stats().Participants != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: participants = %d", i, s.sfu.Stats().Participants)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Warm up (pools, first-use allocations), then take the baseline.
	for i := 0; i < 3; i++ {
		cycle(i)
	}
	g0, fd0, heap0 := usage()
	start := time.Now()
	for i := 3; i < cycles+3; i++ {
		cycle(i)
	}
	elapsed := time.Since(start)
	var g1, fd1 int
	var heap1 uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		g1, fd1, heap1 = usage()
		if (g1 <= g0+5 && fd1 <= fd0+2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d cycles in %s (%s each): goroutines %d → %d, fds %d → %d, heap %.1f → %.1f MiB",
		cycles, elapsed.Round(time.Millisecond), (elapsed / time.Duration(cycles)).Round(time.Millisecond),
		g0, g1, fd0, fd1, float64(heap0)/(1<<20), float64(heap1)/(1<<20))
	if g1 > g0+5 {
		t.Errorf("goroutines %d → %d", g0, g1)
	}
	if fd1 > fd0+2 {
		t.Errorf("file descriptors %d → %d", fd0, fd1)
	}
	if heap1 > heap0+8<<20 {
		t.Errorf("heap %d → %d", heap0, heap1)
	}
}

func usage() (goroutines, fds int, heap uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	entries, _ := os.ReadDir("/proc/self/fd")
	return runtime.NumGoroutine(), len(entries), m.HeapAlloc
}
