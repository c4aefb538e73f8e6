package sync

import (
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// benchRooms makes a user joined to n rooms of 4 members, each with a name
// and 20 messages, and returns the harness and an initial sync's token.
func benchRooms(b *testing.B, open func(testing.TB) store.Store, n int) (*harness, string) {
	h := newHarness(b, open(b))
	for i := range n {
		id := fmt.Sprintf("!r%03d:test", i)
		h.createRoom(id, alice)
		for _, u := range []string{bob, carol, dave} {
			h.join(id, u)
		}
		h.send(id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": id}})
		for j := range 20 {
			h.msg(id, []string{alice, bob, carol}[j%3], fmt.Sprintf("message %d", j))
		}
	}
	resp, err := h.e.Sync(h.ctx, Request{UserID: bob})
	if err != nil {
		b.Fatal(err)
	}
	if len(resp.Rooms.Join) != n {
		b.Fatalf("%d rooms", len(resp.Rooms.Join))
	}
	return h, resp.NextBatch
}

func benchBackends(b *testing.B, fn func(b *testing.B, open func(testing.TB) store.Store)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, openSQLite) })
	b.Run("postgres", func(b *testing.B) { fn(b, openPostgres) })
}

// BenchmarkIncrementalSync: one user in 200 rooms, one new message since
// the token.
func BenchmarkIncrementalSync(b *testing.B) {
	benchBackends(b, func(b *testing.B, open func(testing.TB) store.Store) {
		h, since := benchRooms(b, open, 200)
		h.msg("!r100:test", alice, "the new one")
		b.ResetTimer()
		for b.Loop() {
			resp, err := h.e.Sync(h.ctx, Request{UserID: bob, DeviceID: "D", Since: since})
			if err != nil {
				b.Fatal(err)
			}
			if len(resp.Rooms.Join) != 1 {
				b.Fatalf("%d rooms", len(resp.Rooms.Join))
			}
		}
	})
}

// BenchmarkInitialSync: one user in 200 rooms, no token. "cold" empties the
// parsed-event cache before each sync, as for the first client after a
// restart.
func BenchmarkInitialSync(b *testing.B) {
	benchBackends(b, func(b *testing.B, open func(testing.TB) store.Store) {
		h, _ := benchRooms(b, open, 200)
		var f Filter
		f.Room.State.LazyLoadMembers = true
		for _, bc := range []struct {
			name string
			cold bool
			f    Filter
		}{{"warm", false, Filter{}}, {"cold", true, Filter{}}, {"warm-lazy", false, f}} {
			b.Run(bc.name, func(b *testing.B) {
				for b.Loop() {
					if bc.cold {
						h.e.cache = eventCache{size: eventCacheSize}
					}
					resp, err := h.e.Sync(h.ctx, Request{UserID: bob, DeviceID: "D", Filter: bc.f})
					if err != nil {
						b.Fatal(err)
					}
					if len(resp.Rooms.Join) != 200 {
						b.Fatalf("%d rooms", len(resp.Rooms.Join))
					}
				}
			})
		}
	})
}
