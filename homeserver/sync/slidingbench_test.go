package sync

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// BenchmarkSlidingFirstResponse: a user in 2,000 rooms opens a sliding
// sync connection with a 20-room list (Element X's first request: one
// timeline event, name/avatar/encryption/create state, lazy members).
// "warm" is a new connection on a running server; "cold" also empties the
// engine's caches (memberships, bump positions, parsed events, room
// metadata), as for the first request after a restart.
func BenchmarkSlidingFirstResponse(b *testing.B) {
	benchBackends(b, func(b *testing.B, open func(testing.TB) store.Store) {
		const n = 2000
		h := newHarness(b, open(b))
		for i := range n {
			id := fmt.Sprintf("!r%04d:test", i)
			h.createRoom(id, alice)
			h.join(id, bob)
			h.send(id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": id}})
			for j := range 3 {
				h.msg(id, []string{alice, bob}[j%2], fmt.Sprintf("message %d", j))
			}
		}
		req, err := ParseSlidingRequest([]byte(`{"lists":{"all":{"ranges":[[0,19]],"timeline_limit":1,
			"required_state":[["m.room.name",""],["m.room.avatar",""],["m.room.encryption",""],["m.room.create",""],["m.room.member","$LAZY"]]}}}`))
		if err != nil {
			b.Fatal(err)
		}
		req.UserID, req.DeviceID = bob, "D"
		for _, bc := range []struct {
			name string
			cold bool
		}{{"warm", false}, {"cold", true}} {
			b.Run(bc.name, func(b *testing.B) {
				for b.Loop() {
					if bc.cold {
						h.e.cache = eventCache{size: eventCacheSize}
						h.e.bc.m = nil
						h.e.metas.Clear()
						h.e.kicked.m = nil
						h.e.mc.mu.Lock()
						h.e.mc.users, h.e.mc.rows = nil, 0
						h.e.mc.mu.Unlock()
					}
					resp, err := h.e.SlidingSync(h.ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					if len(resp.Rooms) != 20 || resp.Lists["all"].Count != n {
						b.Fatalf("%d rooms, count %d", len(resp.Rooms), resp.Lists["all"].Count)
					}
				}
			})
		}
	})
}

// BenchmarkSlidingConnMemory: the heap one open connection holds, for a
// user in 2,000 rooms whose list window covers 20 rooms ("window20") or
// every room ("all", where Element X's list grows to): reported as
// B/conn, measured over 100 (10) connections of different devices.
func BenchmarkSlidingConnMemory(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		const n = 2000
		h := newHarness(b, openSQLite(b))
		for i := range n {
			id := fmt.Sprintf("!r%04d:test", i)
			h.createRoom(id, alice)
			h.join(id, bob)
			h.msg(id, alice, "hello")
		}
		for _, bc := range []struct {
			name  string
			to    int
			conns int
		}{{"window20", 19, 100}, {"all", n - 1, 10}} {
			b.Run(bc.name, func(b *testing.B) {
				req, err := ParseSlidingRequest([]byte(fmt.Sprintf(`{"lists":{"all":{"ranges":[[0,%d]],"timeline_limit":1,
					"required_state":[["m.room.name",""],["m.room.member","$LAZY"]]}}}`, bc.to)))
				if err != nil {
					b.Fatal(err)
				}
				req.UserID = bob
				conns := bc.conns
				for b.Loop() {
					// Fill the engine's shared caches first: they are not
					// the connections'.
					warm := req
					warm.DeviceID = "warm"
					if _, err := h.e.SlidingSync(h.ctx, warm); err != nil {
						b.Fatal(err)
					}
					h.e.sliding = newSlidingConns()
					before := heapInUse()
					for i := range conns {
						r := req
						r.DeviceID = fmt.Sprint("D", i)
						if _, err := h.e.SlidingSync(h.ctx, r); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(heapInUse()-before)/float64(conns), "B/conn")
				}
			})
		}
	})
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
