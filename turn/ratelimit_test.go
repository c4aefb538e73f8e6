package turn

import (
	"sync"
	"testing"
	"time"
)

func TestRateLimiterBurstThenRate(t *testing.T) {
	l := newRateLimiter(12_000) // ten 1,200-byte packets a second
	now := int64(time.Hour)
	passed := 0
	for range 100 {
		if l.allow(now, 1200) {
			passed++
		}
	}
	if passed != 10 {
		t.Fatalf("burst passed %d packets, want 10 (one second's worth)", passed)
	}
	// 100 ms later one more packet's worth of credit has come back.
	now += int64(100 * time.Millisecond)
	if !l.allow(now, 1200) {
		t.Fatal("no credit after 100 ms")
	}
	if l.allow(now, 1200) {
		t.Fatal("credit beyond the rate")
	}
	// After a long idle spell the bucket is full again, not fuller.
	now += int64(time.Hour)
	passed = 0
	for range 100 {
		if l.allow(now, 1200) {
			passed++
		}
	}
	if passed != 10 {
		t.Fatalf("after idle passed %d, want 10", passed)
	}
}

func TestRateLimiterNilMeansNoCap(t *testing.T) {
	if newRateLimiter(0) != nil || newRateLimiter(-1) != nil {
		t.Fatal("a non-positive rate must mean no limiter")
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	l := newRateLimiter(1_200_000)
	now := int64(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 1000 {
				if l.allow(now, 1200) {
					n++
				}
			}
			mu.Lock()
			passed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if passed != 1000 {
		t.Fatalf("passed %d packets concurrently, want exactly 1000", passed)
	}
}

func BenchmarkRateLimiter(b *testing.B) {
	l := newRateLimiter(1 << 40)
	for b.Loop() {
		l.allow(monotonicNow(), 1200)
	}
}
