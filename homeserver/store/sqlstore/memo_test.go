package sqlstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

func memoEvent(room string, pos int64) store.EventRow {
	return store.EventRow{Pos: pos, EventID: fmt.Sprintf("$%s-%d", room, pos), RoomID: room, Type: "m.room.message", JSON: []byte(`{}`)}
}

func positions(rows []store.EventRow) []int64 {
	out := make([]int64, len(rows))
	for i := range rows {
		out[i] = rows[i].Pos
	}
	return out
}

// The ring answers only ranges it knows completely: everything of its room
// after its floor, which is the position before its first event and moves
// up as old events leave.
func TestMemoRingCoverage(t *testing.T) {
	m := newMemo(100)
	// Positions 101..150 in room !a, every other one in !b.
	for p := int64(101); p <= 150; p++ {
		room := "!a"
		if p%2 == 0 {
			room = "!b"
		}
		m.persisted(&store.EventBatch{Events: []store.EventRow{memoEvent(room, p)}})
	}
	// !a has 25 events (101, 103, ..., 149): all kept, floor 100.
	tests := []struct {
		name          string
		room          string
		after, before int64
		limit         int
		desc          bool
		want          []int64
		ok            bool
	}{
		{"newest after since", "!a", 140, 151, 11, true, []int64{149, 147, 145, 143, 141}, true},
		{"ascending from since", "!a", 140, 151, 3, false, []int64{141, 143, 145}, true},
		{"bounded above", "!a", 140, 146, 10, true, []int64{145, 143, 141}, true},
		{"from the floor", "!a", 100, 106, 10, false, []int64{101, 103, 105}, true},
		{"before the floor, ascending", "!a", 50, 106, 10, false, nil, false},
		{"before the floor, too few", "!a", 0, 151, 30, true, nil, false},
		{"before the floor, enough", "!a", 0, 151, 2, true, []int64{149, 147}, true},
		{"nothing in range", "!a", 149, 151, 5, true, nil, true},
		{"unknown room", "!c", 0, 151, 5, true, nil, false},
		{"zero limit goes to SQL", "!a", 140, 151, 0, true, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := m.roomEvents(tc.room, tc.after, tc.before, tc.limit, tc.desc)
			if ok != tc.ok || !slices.Equal(positions(got), tc.want) {
				t.Fatalf("got %v %v, want %v %v", positions(got), ok, tc.want, tc.ok)
			}
		})
	}

	// 2×ringPerRoom more events in !a: the ring keeps between ringPerRoom
	// and a quarter more of the newest (the oldest leave together), and
	// the floor moves to the newest event dropped.
	last := int64(150 + 2*ringPerRoom)
	for p := int64(151); p <= last; p++ {
		m.persisted(&store.EventBatch{Events: []store.EventRow{memoEvent("!a", p)}})
	}
	r := m.rings["!a"]
	if len(r.evs) < ringPerRoom || len(r.evs) > ringPerRoom+ringPerRoom/4 || r.floor != r.evs[0].Pos-1 ||
		r.evs[len(r.evs)-1].Pos != last || m.nRing != len(m.ringOf) {
		t.Fatalf("ring of %d events, floor %d, first %d, %d indexed of %d", len(r.evs), r.floor, r.evs[0].Pos, len(m.ringOf), m.nRing)
	}
	if _, ok := m.roomEvents("!a", r.floor-1, last+1, 1000, false); ok {
		t.Fatal("answered from below the floor")
	}
	if got, ok := m.roomEvents("!a", r.floor, last+1, 1000, false); !ok || len(got) != len(r.evs) {
		t.Fatalf("from the floor: %d events, %v", len(got), ok)
	}
	dropped := fmt.Sprintf("$!a-%d", r.floor)
	if _, ok := m.event(dropped); ok {
		t.Fatal("dropped event still found by ID")
	}
	if e, ok := m.event(fmt.Sprintf("$!a-%d", last)); !ok || e.Pos != last {
		t.Fatalf("event by ID: %v %v", e, ok)
	}
	if e, ok := m.lastEvent("!a"); !ok || e.Pos != last {
		t.Fatalf("last event %v %v", e.Pos, ok)
	}
}

// A room whose ring was dropped (the global bound) starts a new one at its
// next event, with the floor just below it.
func TestMemoGlobalBound(t *testing.T) {
	m := newMemo(0)
	pos := int64(0)
	for i := range ringTotal/ringPerRoom + 50 {
		room := fmt.Sprintf("!r%d", i)
		for range ringPerRoom {
			pos++
			m.persisted(&store.EventBatch{Events: []store.EventRow{memoEvent(room, pos)}})
		}
	}
	if m.nRing > ringTotal || len(m.ringOf) != m.nRing {
		t.Fatalf("%d events in rings, %d indexed, bound %d", m.nRing, len(m.ringOf), ringTotal)
	}
	n := 0
	for _, r := range m.rings {
		n += len(r.evs)
	}
	if n != m.nRing {
		t.Fatalf("count %d, rings hold %d", m.nRing, n)
	}
	var gone string
	for i := 0; ; i++ {
		if _, ok := m.rings[fmt.Sprintf("!r%d", i)]; !ok {
			gone = fmt.Sprintf("!r%d", i)
			break
		}
	}
	pos++
	m.persisted(&store.EventBatch{Events: []store.EventRow{memoEvent(gone, pos)}})
	if _, ok := m.roomEvents(gone, 0, pos+1, 10, false); ok {
		t.Fatal("a restarted ring answered for the room's older events")
	}
	if got, ok := m.roomEvents(gone, pos-1, pos+1, 10, false); !ok || !slices.Equal(positions(got), []int64{pos}) {
		t.Fatalf("restarted ring: %v %v", positions(got), ok)
	}
}

func TestMemoRedaction(t *testing.T) {
	m := newMemo(0)
	m.persisted(&store.EventBatch{Events: []store.EventRow{memoEvent("!a", 1)}})
	k := histKey{"!a", "m.room.member", "@u:t"}
	_, _, gen := m.stateHistory(k)
	m.storeHistory(k, []store.EventRow{memoEvent("!a", 1)}, gen)
	m.persisted(&store.EventBatch{
		Events:     []store.EventRow{memoEvent("!a", 2)},
		Redactions: []store.Redaction{{EventID: "$!a-1", RedactedJSON: []byte(`{"redacted":true}`), By: "$!a-2"}},
	})
	e, ok := m.event("$!a-1")
	if !ok || string(e.JSON) != `{"redacted":true}` || e.RedactedBy != "$!a-2" {
		t.Fatalf("redacted event %s by %q", e.JSON, e.RedactedBy)
	}
	if _, ok, _ := m.stateHistory(k); ok {
		t.Fatal("state history kept across a redaction")
	}
}

// A StateHistory read from SQL before a state event committed must not be
// stored after it; one stored before it gets the event appended once.
func TestMemoHistoryReadThrough(t *testing.T) {
	m := newMemo(0)
	k := histKey{"!a", "m.room.member", "@u:t"}
	join := memoEvent("!a", 1)
	join.StateKey = &k.stateKey
	join.Type = k.typ
	leave := join
	leave.Pos, leave.EventID = 2, "$leave"

	_, ok, gen := m.stateHistory(k)
	if ok {
		t.Fatal("empty memo answered")
	}
	m.persisted(&store.EventBatch{Events: []store.EventRow{leave}})
	m.storeHistory(k, []store.EventRow{join}, gen) // read before the leave
	if _, ok, _ := m.stateHistory(k); ok {
		t.Fatal("stale history stored")
	}

	// Read after the leave committed but stored before the memo heard of
	// it: the writer must not append the leave twice.
	m2 := newMemo(0)
	_, _, gen = m2.stateHistory(k)
	m2.storeHistory(k, []store.EventRow{join, leave}, gen)
	m2.persisted(&store.EventBatch{Events: []store.EventRow{leave}})
	got, ok, _ := m2.stateHistory(k)
	if !ok || !slices.Equal(positions(got), []int64{1, 2}) {
		t.Fatalf("history %v %v", positions(got), ok)
	}
	// A later state event is appended; the answer given earlier is a copy.
	later := leave
	later.Pos, later.EventID = 3, "$rejoin"
	m2.persisted(&store.EventBatch{Events: []store.EventRow{later}})
	now, _, _ := m2.stateHistory(k)
	if !slices.Equal(positions(now), []int64{1, 2, 3}) || len(got) != 2 {
		t.Fatalf("history %v, earlier answer %v", positions(now), positions(got))
	}
}

func TestMemoReceiptsAndAccountData(t *testing.T) {
	m := newMemo(10)
	if !m.accountDataAfter("@u:t", 5) || !slices.Equal(m.receiptsAfter([]string{"!a"}, 5), []string{"!a"}) {
		t.Fatal("a token from before the store opened must go to SQL")
	}
	if m.accountDataAfter("@u:t", 10) || len(m.receiptsAfter([]string{"!a", "!b"}, 10)) != 0 {
		t.Fatal("nothing written since open, yet SQL asked")
	}
	m.accountData("@u:t", 11)
	m.receiptPut(store.Receipt{RoomID: "!b", UserID: "@u:t", Type: "m.read", EventID: "$e", Pos: 12})
	if !m.accountDataAfter("@u:t", 10) || m.accountDataAfter("@u:t", 11) || m.accountDataAfter("@v:t", 10) {
		t.Fatal("account data positions")
	}
	if got := m.receiptsAfter([]string{"!a", "!b"}, 11); !slices.Equal(got, []string{"!b"}) {
		t.Fatalf("rooms with receipts after 11: %v", got)
	}

	// UserReceipt: a not-found answer read before a receipt committed is
	// not stored; a stored one is replaced by the writer.
	k := receiptKey{"!a", "@u:t", "m.read"}
	_, _, gen := m.userReceipt(k)
	m.receiptPut(store.Receipt{RoomID: "!a", UserID: "@u:t", Type: "m.read", EventID: "$1", Pos: 13})
	m.storeReceipt(k, receiptEntry{}, gen)
	if _, ok, _ := m.userReceipt(k); ok {
		t.Fatal("stale not-found stored")
	}
	_, _, gen = m.userReceipt(k)
	m.storeReceipt(k, receiptEntry{store.Receipt{RoomID: "!a", UserID: "@u:t", Type: "m.read", EventID: "$1", Pos: 13}, true}, gen)
	m.receiptPut(store.Receipt{RoomID: "!a", UserID: "@u:t", Type: "m.read", EventID: "$2", Pos: 14})
	m.receiptPut(store.Receipt{RoomID: "!a", UserID: "@u:t", Type: "m.read", EventID: "$thread", ThreadID: "$root", Pos: 15})
	if e, ok, _ := m.userReceipt(k); !ok || !e.found || e.r.EventID != "$2" {
		t.Fatalf("receipt %+v %v", e, ok)
	}
}

func TestMemoProfile(t *testing.T) {
	m := newMemo(0)
	_, ok, gen := m.profile("@u:t")
	if ok {
		t.Fatal("empty memo answered")
	}
	m.profileChanged("@u:t") // a rename committed during the read
	m.storeProfile("@u:t", profileEntry{store.Profile{DisplayName: "old"}, true, time.Now()}, gen)
	if _, ok, _ := m.profile("@u:t"); ok {
		t.Fatal("stale profile stored")
	}
	_, _, gen = m.profile("@u:t")
	m.storeProfile("@u:t", profileEntry{store.Profile{DisplayName: "new"}, true, time.Now()}, gen)
	if e, ok, _ := m.profile("@u:t"); !ok || e.p.DisplayName != "new" {
		t.Fatalf("profile %+v %v", e, ok)
	}
	// Another process (salon user) may have changed it: read again after
	// profileTTL.
	_, _, gen = m.profile("@v:t")
	m.storeProfile("@v:t", profileEntry{store.Profile{DisplayName: "v"}, true, time.Now().Add(-profileTTL)}, gen)
	if _, ok, _ := m.profile("@v:t"); ok {
		t.Fatal("profile older than profileTTL answered")
	}
	m.profileChanged("@u:t")
	if _, ok, _ := m.profile("@u:t"); ok {
		t.Fatal("profile kept after a change")
	}
}

// A backfill batch forgets the state histories of its room (events of the
// join's state may have moved), not those of other rooms.
func TestMemoBackfillForgetsItsRoomsHistories(t *testing.T) {
	m := newMemo(0)
	a, b := histKey{"!a", "m.room.member", "@u:t"}, histKey{"!b", "m.room.member", "@u:t"}
	for _, k := range []histKey{a, b} {
		_, _, gen := m.stateHistory(k)
		m.storeHistory(k, []store.EventRow{memoEvent(k.room, 1)}, gen)
	}
	m.persisted(&store.EventBatch{Backfill: true, Events: []store.EventRow{memoEvent("!a", store.BackfillTop-1)}})
	if _, ok, _ := m.stateHistory(a); ok {
		t.Fatal("the backfilled room's history was kept")
	}
	if _, ok, _ := m.stateHistory(b); !ok {
		t.Fatal("another room's history was forgotten")
	}
}
