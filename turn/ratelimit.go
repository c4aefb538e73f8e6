package turn

import (
	"sync/atomic"
	"time"
)

// rateLimiter is a byte-rate cap in the GCRA form of a token bucket: one
// atomic word (the theoretical arrival time), no lock, no allocation, safe
// for concurrent use. The bucket holds one second of traffic.
type rateLimiter struct {
	tat         atomic.Int64 // ns on clock's scale
	nsPerKiB    int64        // time one KiB "costs" at the rate, ×1024 for precision
	burst       int64        // ns of credit: one second
	bytesPerSec int64
}

// newRateLimiter returns nil (no cap) for a rate ≤ 0.
func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return &rateLimiter{
		nsPerKiB:    int64(time.Second) * 1024 / bytesPerSec,
		burst:       int64(time.Second),
		bytesPerSec: bytesPerSec,
	}
}

// allow reports whether n bytes may pass at now (ns, monotonic) and, if so,
// takes them from the bucket.
func (l *rateLimiter) allow(now int64, n int) bool {
	cost := int64(n) * l.nsPerKiB / 1024
	for {
		old := l.tat.Load()
		tat := max(old, now)
		next := tat + cost
		if next-now > l.burst {
			return false
		}
		if l.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}

// clockBase anchors monotonic time for the limiters.
var clockBase = time.Now()

// monotonicNow is nanoseconds on the monotonic clock since clockBase.
func monotonicNow() int64 { return int64(time.Since(clockBase)) }
