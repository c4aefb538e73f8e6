package delayed

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// recorder is a Sender that notes when each event was sent.
type recorder struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

func (r *recorder) Send(_ context.Context, _, _ string, e rooms.Event) (string, error) {
	r.mu.Lock()
	r.sent[string(e.Content)] = time.Now()
	r.mu.Unlock()
	return "$x", nil
}

func (r *recorder) Membership(context.Context, string, string) (string, error) { return "join", nil }

func (r *recorder) CheckEvent(context.Context, string, string, rooms.Event) error { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScheduler10k: with 10,000 delayed events pending, the
// scheduler's CPU while none is due, and how late each fires (none may fire
// early). One run schedules 10,000 events firing 15–17 s later; b.N is not
// used.
func BenchmarkScheduler10k(b *testing.B) {
	t := b
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{sent: map[string]time.Time{}}
	s := New(Params{Store: st, Rooms: rec, MaxDelay: time.Hour, PerUser: 100_000})
	const n = 10_000
	due := map[string]time.Time{}
	start := time.Now()
	for i := 0; i < n; i++ {
		delay := 15000 + int64(i%2000) // all fire 15–17 s after their scheduling, well after it ends
		key := fmt.Sprintf(`{"n":%d}`, i)
		// The scheduler counts from its clock in whole milliseconds at
		// the call: the earliest it may fire is this, truncated.
		due[key] = time.UnixMilli(time.Now().UnixMilli()).Add(time.Duration(delay) * time.Millisecond)
		if _, err := s.Schedule(ctx, Request{UserID: fmt.Sprintf("@u%d:t", i%500), RoomID: "!r:t", Type: "m.room.message",
			Content: []byte(key), DelayMS: delay}); err != nil {
			t.Fatal(err)
		}
	}
	scheduled := time.Since(start)
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	// Idle: nothing is due for a while.
	time.Sleep(500 * time.Millisecond)
	c0, w0 := cpuTime(), time.Now()
	time.Sleep(2 * time.Second)
	idle := float64(cpuTime()-c0) / float64(time.Since(w0))
	deadline := time.Now().Add(40 * time.Second)
	for {
		rec.mu.Lock()
		got := len(rec.sent)
		rec.mu.Unlock()
		if got == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	var late []time.Duration
	for k, at := range rec.sent {
		if at.Before(due[k]) {
			t.Fatalf("%s fired %s early", k, due[k].Sub(at))
		}
		late = append(late, at.Sub(due[k]))
	}
	if len(late) != n {
		t.Fatalf("%d of %d fired", len(late), n)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	p50, p99 := late[n/2], late[n*99/100]
	b.ReportMetric(float64(scheduled.Microseconds())/n, "µs/schedule")
	b.ReportMetric(idle*100, "%cpu-idle")
	b.ReportMetric(float64(p50.Microseconds())/1000, "ms-late-p50")
	b.ReportMetric(float64(p99.Microseconds())/1000, "ms-late-p99")
}
