// Package ratelimit keeps token buckets per key (an IP address, a user ID)
// and forgets keys that have been idle long enough to be full again.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Rule is a token bucket: Burst requests at once, refilled at PerSecond.
// A zero PerSecond disables the rule.
type Rule struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// Limiter applies one Rule to many keys.
type Limiter struct {
	rule Rule
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter for rule. now is the clock (time.Now when nil).
func New(rule Rule, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rule: rule, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token for key. When none is left it returns false and how
// long until one will be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.rule.PerSecond <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.rule.Burst), last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rule)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / l.rule.PerSecond * float64(time.Second)))
	return false, wait
}

// Reset forgets key (after a successful login, say).
func (l *Limiter) Reset(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.buckets, key)
	l.mu.Unlock()
}

func (b *bucket) refill(now time.Time, r Rule) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(r.Burst), b.tokens+el*r.PerSecond)
		b.last = now
	}
}

// maybeSweep drops full buckets once a minute so the map does not grow with
// every address ever seen.
func (l *Limiter) maybeSweep(now time.Time) {
	if now.Sub(l.sweep) < time.Minute {
		return
	}
	l.sweep = now
	for k, b := range l.buckets {
		b.refill(now, l.rule)
		if b.tokens >= float64(l.rule.Burst) {
			delete(l.buckets, k)
		}
	}
}
