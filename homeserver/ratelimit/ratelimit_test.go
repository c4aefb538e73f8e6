package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Rule{PerSecond: 2, Burst: 3}, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("ip"); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, wait := l.Allow("ip")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("keys share a bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("ip"); !ok {
		t.Fatal("not refilled")
	}
	l.Reset("ip")
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("ip"); !ok {
			t.Fatal("reset did not refill")
		}
	}
	now = now.Add(2 * time.Minute)
	l.Allow("x")
	if len(l.buckets) != 1 {
		t.Fatalf("idle buckets not swept: %d", len(l.buckets))
	}
}

func TestDisabled(t *testing.T) {
	var l *Limiter
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("nil limiter refuses")
	}
	if ok, _ := New(Rule{}, nil).Allow("a"); !ok {
		t.Fatal("zero rule refuses")
	}
}
