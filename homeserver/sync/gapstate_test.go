package sync

import (
	"fmt"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// TestGapStateSameAsStateAt: the state a limited incremental sync sends
// for its gap, now read from the gap's events when the gap is short, is
// what reading the room's state at the timeline's start gives (the state
// events after the token, the last of each piece of state): for gaps with
// no state, one change, a piece of state changed twice, members joining
// and leaving, and gaps longer than gapScan (which read the state), from
// the store's memory and, after a restart, from the database.
func TestGapStateSameAsStateAt(t *testing.T) {
	reopenable(t, func(t *testing.T, open func() store.Store) {
		st := open()
		h := newHarness(t, st)
		r := h.createRoom("!gap:test", alice)
		var marks []int64 // positions to cut gaps at
		mark := func(row store.EventRow) { marks = append(marks, row.Pos) }
		mark(h.join(r.id, bob))
		mark(h.msg(r.id, alice, "one"))
		mark(h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "A"}}))
		for i := range 5 {
			h.msg(r.id, bob, fmt.Sprint("m", i))
		}
		mark(h.join(r.id, "@carol:test"))
		mark(h.send(r.id, alice, ev{typ: "m.room.name", stateKey: sk(""), content: map[string]any{"name": "B"}}))
		mark(h.msg(r.id, alice, "two"))
		mark(h.member(r.id, "@carol:test", "@carol:test", leave))
		for i := range gapScan + 20 {
			row := h.msg(r.id, alice, fmt.Sprint("long ", i))
			if i%60 == 0 {
				mark(row)
			}
		}
		mark(h.send(r.id, alice, ev{typ: "m.room.topic", stateKey: sk(""), content: map[string]any{"topic": "T"}}))
		mark(h.join(r.id, "@dan:test"))
		mark(h.msg(r.id, bob, "last"))

		check := func(t *testing.T, h *harness) {
			for _, since := range marks {
				for _, start := range marks {
					s := &syncer{e: h.e}
					s.since.Pos = since
					got, err := s.gapState(h.ctx, r.id, start)
					if err != nil {
						t.Fatal(err)
					}
					all, err := h.st.StateAt(h.ctx, r.id, start)
					if err != nil {
						t.Fatal(err)
					}
					var want []string
					for _, row := range all {
						if row.Pos > since {
							want = append(want, row.EventID)
						}
					}
					var gotIDs []string
					for _, row := range got {
						gotIDs = append(gotIDs, row.EventID)
					}
					if !slices.Equal(gotIDs, want) {
						t.Errorf("gap (%d, %d]: state %v, want %v", since, start, gotIDs, want)
					}
				}
			}
		}
		check(t, h)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, newHarness(t, open()))
	})
}
