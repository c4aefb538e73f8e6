package rooms

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkBigRoomJoin: joining a room that already has 5,000 members
// (issue 24: the last join of 5,000 under 50 ms), in process on SQLite:
// the rooms service's share of a join (authorisation, commit, the room's
// derived values), without HTTP or /sync. It also reports the Go heap
// the room's members cost (live heap after a GC, over the members).
//
//	go test -run '^$' -bench BigRoomJoin -benchtime 20x ./homeserver/rooms/
func BenchmarkBigRoomJoin(b *testing.B) {
	ctx := context.Background()
	s := newTestService(b, nil)
	noProfile := func(context.Context, string) (string, string) { return "", "" }
	room, _, err := s.Create(ctx, "@owner:hs", CreateRequest{Preset: "public_chat"}, noProfile)
	if err != nil {
		b.Fatal(err)
	}
	const members = 5000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var last time.Duration
	for i := 1; i < members; i++ {
		t0 := time.Now()
		if _, err := s.Join(ctx, room, fmt.Sprintf("@m%d:hs", i), "", noProfile); err != nil {
			b.Fatal(err)
		}
		last = time.Since(t0)
	}
	// A message, as the members' unread counts would ask for the
	// derived values.
	if _, err := s.Send(ctx, room, "@m1:hs", msgEvent("hello")); err != nil {
		b.Fatal(err)
	}
	if _, err := s.MemberCount(ctx, room); err != nil {
		b.Fatal(err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Join(ctx, room, fmt.Sprintf("@extra%d:hs", i), "", noProfile); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/members, "heapB/member")
	b.ReportMetric(float64(last.Microseconds()), "µs/5000th-join")
}
