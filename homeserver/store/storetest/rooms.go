package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

func sk(s string) *string { return &s }

// persister stores batches into s, failing t on an error.
func persister(t *testing.T, s store.Store) func(b *store.EventBatch) {
	return func(b *store.EventBatch) {
		t.Helper()
		if _, err := s.PersistEvents(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

func ev(room, id, typ string, stateKey *string, sender string) store.EventRow {
	return store.EventRow{EventID: id, RoomID: room, Type: typ, StateKey: stateKey, Sender: sender,
		JSON: []byte(fmt.Sprintf(`{"event_id":%q,"type":%q}`, id, typ))}
}

func member(room, id, user, membership string) store.EventRow {
	e := ev(room, id, "m.room.member", sk(user), user)
	e.Membership = membership
	return e
}

func testRoomEvents(t *testing.T, s store.Store) {
	start := s.CurrentPos()
	b := &store.EventBatch{
		NewRoom: &store.Room{RoomID: "!r:test", Version: "10", Creator: "@a:test", CreatedTS: 1},
		Events: []store.EventRow{
			ev("!r:test", "$create", "m.room.create", sk(""), "@a:test"),
			member("!r:test", "$join-a", "@a:test", "join"),
			ev("!r:test", "$name1", "m.room.name", sk(""), "@a:test"),
		},
	}
	last, err := s.PersistEvents(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if last != start+3 || b.Events[0].Pos != start+1 || b.Events[2].Pos != last || s.CurrentPos() != last {
		t.Fatalf("positions: last %d, events %d..%d, current %d (start %d)", last, b.Events[0].Pos, b.Events[2].Pos, s.CurrentPos(), start)
	}
	msg := ev("!r:test", "$msg1", "m.room.message", nil, "@a:test")
	msg.SenderDevice, msg.TxnID = "DEV", "txn1"
	name2 := ev("!r:test", "$name2", "m.room.name", sk(""), "@a:test")
	react := ev("!r:test", "$react", "m.reaction", nil, "@a:test")
	react.RelType, react.RelatesTo = "m.annotation", "$msg1"
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{msg, name2, react, member("!r:test", "$join-b", "@b:test", "join")}}); err != nil {
		t.Fatal(err)
	}
	// Duplicate IDs are refused and change nothing.
	before := s.CurrentPos()
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{ev("!r:test", "$msg1", "m.room.message", nil, "@a:test")}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate event: %v", err)
	}
	if s.CurrentPos() != before {
		t.Fatal("failed write moved the stream head")
	}

	r, err := s.Room(ctx, "!r:test")
	if err != nil || r.Creator != "@a:test" || r.Version != "10" {
		t.Fatalf("room = %+v, %v", r, err)
	}
	state, err := s.CurrentState(ctx, "!r:test")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range state {
		ids[e.EventID] = true
	}
	if len(state) != 4 || !ids["$name2"] || ids["$name1"] || !ids["$join-b"] {
		t.Fatalf("current state = %v", ids)
	}
	// State as it was after the first name.
	old, err := s.StateAt(ctx, "!r:test", last)
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]bool{}
	for _, e := range old {
		ids[e.EventID] = true
	}
	if len(old) != 3 || !ids["$name1"] {
		t.Fatalf("state at %d = %v", last, ids)
	}
	asc, _ := s.RoomEvents(ctx, "!r:test", 0, 1<<62, 100, false)
	desc, _ := s.RoomEvents(ctx, "!r:test", 0, 1<<62, 2, true)
	if len(asc) != 7 || asc[0].EventID != "$create" || len(desc) != 2 || desc[0].EventID != "$join-b" {
		t.Fatalf("room events asc %d desc %v", len(asc), desc)
	}
	if e, err := s.LastEvent(ctx, "!r:test"); err != nil || e.EventID != "$join-b" {
		t.Fatalf("last event %v %v", e.EventID, err)
	}
	got, err := s.TxnEvent(ctx, "@a:test", "DEV", "!r:test", "txn1")
	if err != nil || got.EventID != "$msg1" {
		t.Fatalf("txn event = %v, %v", got.EventID, err)
	}
	if _, err := s.TxnEvent(ctx, "@a:test", "OTHER", "!r:test", "txn1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("txn of another device: %v", err)
	}
	if _, err := s.TxnEvent(ctx, "@a:test", "DEV", "!other:test", "txn1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("txn in another room: %v", err)
	}
	rel, err := s.Relations(ctx, "!r:test", "$msg1", "m.annotation", "", 0, 10)
	if err != nil || len(rel) != 1 || rel[0].EventID != "$react" {
		t.Fatalf("relations = %v %v", rel, err)
	}
	if rel, _ := s.Relations(ctx, "!r:test", "$msg1", "m.replace", "", 0, 10); len(rel) != 0 {
		t.Fatal("rel_type filter ignored")
	}

	// Redaction rewrites the stored JSON.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{
		Events:     []store.EventRow{ev("!r:test", "$redact", "m.room.redaction", nil, "@a:test")},
		Redactions: []store.Redaction{{EventID: "$msg1", RedactedJSON: []byte(`{"redacted":true}`), By: "$redact"}},
	}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Event(ctx, "$msg1")
	if err != nil || string(m.JSON) != `{"redacted":true}` || m.RedactedBy != "$redact" {
		t.Fatalf("redacted event = %+v %v", m, err)
	}
	if _, err := s.Event(ctx, "$nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}

	// Memberships.
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{member("!r:test", "$leave-b", "@b:test", "leave")}}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.UserMemberships(ctx, "@b:test")
	if err != nil || len(ms) != 1 || ms[0].Membership != "leave" || ms[0].EventID != "$leave-b" {
		t.Fatalf("memberships of b = %+v %v", ms, err)
	}
	hist, _ := s.StateHistory(ctx, "!r:test", "m.room.member", "@b:test")
	if len(hist) != 2 || hist[0].EventID != "$join-b" {
		t.Fatalf("member history = %v", hist)
	}
	if err := s.Forget(ctx, "!r:test", "@b:test"); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.RoomMemberships(ctx, "!r:test")
	for _, m := range ms {
		if m.UserID == "@b:test" && !m.Forgotten {
			t.Fatal("forget not kept")
		}
	}
	pos, err := s.RoomPositions(ctx)
	if err != nil || pos["!r:test"] != s.CurrentPos() {
		t.Fatalf("room positions = %v (current %d)", pos, s.CurrentPos())
	}
	testBumpPositions(t, s)

	// Directory.
	if err := s.SetPublished(ctx, "!r:test", true); err != nil {
		t.Fatal(err)
	}
	if pub, _ := s.PublishedRooms(ctx); len(pub) != 1 {
		t.Fatalf("published = %v", pub)
	}
	if err := s.SetPublished(ctx, "!nope:test", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("publish unknown room: %v", err)
	}
}

func testAliases(t *testing.T, s store.Store) {
	if err := s.CreateAlias(ctx, "#a:test", "!r:test", "@u:test"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAlias(ctx, "#a:test", "!other:test", "@u:test"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate alias: %v", err)
	}
	if r, c, err := s.Alias(ctx, "#a:test"); err != nil || r != "!r:test" || c != "@u:test" {
		t.Fatalf("alias = %q %q %v", r, c, err)
	}
	_ = s.CreateAlias(ctx, "#b:test", "!r:test", "@u:test")
	if as, _ := s.RoomAliases(ctx, "!r:test"); len(as) != 2 {
		t.Fatalf("aliases = %v", as)
	}
	if err := s.DeleteAlias(ctx, "#a:test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Alias(ctx, "#a:test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted alias: %v", err)
	}
	if err := s.DeleteAlias(ctx, "#a:test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testUserData(t *testing.T, s store.Store) {
	p0 := s.CurrentPos()
	p1, err := s.PutAccountData(ctx, "@u:test", "", "m.direct", []byte(`{"@v:test":["!r:test"]}`))
	if err != nil || p1 != p0+1 {
		t.Fatalf("put account data: %d %v", p1, err)
	}
	p2, _ := s.PutAccountData(ctx, "@u:test", "!r:test", "m.tag", []byte(`{"tags":{}}`))
	p3, _ := s.PutAccountData(ctx, "@u:test", "", "m.direct", []byte(`{}`))
	if c, err := s.AccountData(ctx, "@u:test", "", "m.direct"); err != nil || string(c) != `{}` {
		t.Fatalf("account data = %s %v", c, err)
	}
	since, _ := s.AccountDataSince(ctx, "@u:test", p1, p3)
	if len(since) != 2 || since[0].Pos != p2 || since[1].Type != "m.direct" {
		t.Fatalf("since = %+v", since)
	}
	if _, err := s.AccountData(ctx, "@u:test", "", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing account data: %v", err)
	}

	rp, err := s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$1", TS: 5})
	if err != nil {
		t.Fatal(err)
	}
	rp2, _ := s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$2", TS: 6})
	rs, _ := s.ReceiptsSince(ctx, []string{"!r:test"}, rp-1, rp2)
	if len(rs) != 1 || rs[0].EventID != "$2" || rs[0].Pos != rp2 {
		t.Fatalf("receipts = %+v", rs)
	}
	if r, err := s.UserReceipt(ctx, "!r:test", "@u:test", "m.read"); err != nil || r.EventID != "$2" {
		t.Fatalf("user receipt = %+v %v", r, err)
	}

	// Threaded receipts: one per thread, apart from the unthreaded one.
	if trs, err := s.UserThreadReceipts(ctx, "!r:test", "@u:test", "m.read"); err != nil || len(trs) != 0 {
		t.Fatalf("thread receipts before any = %+v %v", trs, err)
	}
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$1", ThreadID: "main", TS: 7})
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$3", ThreadID: "$root", TS: 8})
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$4", ThreadID: "$root", TS: 9})
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read.private", EventID: "$5", ThreadID: "$root", TS: 9})
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@v:test", Type: "m.read", EventID: "$5", ThreadID: "$root", TS: 9})
	trs, err := s.UserThreadReceipts(ctx, "!r:test", "@u:test", "m.read")
	if err != nil || len(trs) != 2 {
		t.Fatalf("thread receipts = %+v %v", trs, err)
	}
	got := map[string]string{}
	for _, r := range trs {
		got[r.ThreadID] = r.EventID
	}
	if got["main"] != "$1" || got["$root"] != "$4" {
		t.Fatalf("thread receipts = %+v", trs)
	}
	if r, err := s.UserReceipt(ctx, "!r:test", "@u:test", "m.read"); err != nil || r.EventID != "$2" {
		t.Fatalf("unthreaded receipt after threaded ones = %+v %v", r, err)
	}
	// A later write is seen by the next read (the memo keeps it current).
	s.PutReceipt(ctx, store.Receipt{RoomID: "!r:test", UserID: "@u:test", Type: "m.read", EventID: "$6", ThreadID: "$other", TS: 10})
	if trs, _ := s.UserThreadReceipts(ctx, "!r:test", "@u:test", "m.read"); len(trs) != 3 {
		t.Fatalf("thread receipts after a third thread = %+v", trs)
	}

	id, err := s.PutFilter(ctx, "@u:test", []byte(`{"room":{}}`))
	if err != nil || id == "" {
		t.Fatal(err)
	}
	if f, err := s.Filter(ctx, "@u:test", id); err != nil || string(f) != `{"room":{}}` {
		t.Fatalf("filter = %s %v", f, err)
	}
	if _, err := s.Filter(ctx, "@other:test", id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's filter: %v", err)
	}
}

// testStreamOrder: concurrent writers to the stream get distinct positions
// and the head only shows committed writes.
func testStreamOrder(t *testing.T, s store.Store) {
	if _, err := s.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: "!o:test", Version: "10", Creator: "@a:test"}}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				_, _ = s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{ev("!o:test", fmt.Sprintf("$o%d", i), "m.room.message", nil, "@a:test")}})
			} else {
				_, _ = s.PutAccountData(ctx, "@a:test", "", fmt.Sprintf("t%d", i), []byte(`{}`))
			}
		}(i)
	}
	wg.Wait()
	evs, _ := s.RoomEvents(ctx, "!o:test", 0, 1<<62, 100, false)
	ad, _ := s.AccountDataSince(ctx, "@a:test", 0, s.CurrentPos())
	seen := map[int64]bool{}
	for _, e := range evs {
		seen[e.Pos] = true
	}
	for _, a := range ad {
		if seen[a.Pos] {
			t.Fatalf("position %d used twice", a.Pos)
		}
		seen[a.Pos] = true
	}
	if len(evs) != n/2 || len(seen) != n {
		t.Fatalf("%d events, %d positions", len(evs), len(seen))
	}
}

func testDelayed(t *testing.T, s store.Store) {
	key := "_@a:test_DEV_m.call"
	d := store.DelayedEvent{DelayID: "d1", UserID: "@a:test", DeviceID: "DEV", RoomID: "!r:test", Type: "org.matrix.msc3401.call.member",
		StateKey: &key, Content: []byte(`{}`), DelayMS: 8000, RunningSince: 1000, FireTS: 9000}
	if err := s.AddDelayed(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDelayed(ctx, d); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate delay id: %v", err)
	}
	d2 := d
	d2.DelayID, d2.StateKey, d2.FireTS, d2.Type = "d2", nil, 5000, "m.room.message"
	_ = s.AddDelayed(ctx, d2)
	next, err := s.NextDelayed(ctx, 10)
	if err != nil || len(next) != 2 || next[0].DelayID != "d2" || next[1].StateKey == nil || *next[1].StateKey != key {
		t.Fatalf("next = %+v %v", next, err)
	}
	if err := s.RestartDelayed(ctx, "d2", 3000, 11000); err != nil {
		t.Fatal(err)
	}
	next, _ = s.NextDelayed(ctx, 1)
	if next[0].DelayID != "d1" {
		t.Fatalf("restart did not reorder: %+v", next)
	}
	if n, _ := s.CountUserDelayed(ctx, "@a:test"); n != 2 {
		t.Fatalf("count = %d", n)
	}
	if err := s.DeleteDelayed(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDelayed(ctx, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.RestartDelayed(ctx, "d1", 1, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("restart deleted: %v", err)
	}
	if got, err := s.DelayedEvent(ctx, "d2"); err != nil || got.FireTS != 11000 || got.RunningSince != 3000 {
		t.Fatalf("d2 = %+v %v", got, err)
	}

	// Finalising: out of the schedule once, kept with its outcome.
	f, err := s.FinaliseDelayed(ctx, "d2", store.DelayedOutcomeSend, store.DelayedReasonDelay, 12000)
	if err != nil || f.DelayID != "d2" || f.Type != "m.room.message" || string(f.Content) != `{}` {
		t.Fatalf("finalise d2 = %+v %v", f, err)
	}
	if _, err := s.FinaliseDelayed(ctx, "d2", store.DelayedOutcomeCancel, store.DelayedReasonAction, 12001); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second finalise: %v", err)
	}
	if _, err := s.DelayedEvent(ctx, "d2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finalised d2 still scheduled: %v", err)
	}
	if n, _ := s.CountUserDelayed(ctx, "@a:test"); n != 0 {
		t.Fatalf("scheduled count after finalising = %d", n)
	}
	if err := s.SetFinalisedResult(ctx, "d2", store.DelayedOutcomeError, "", []byte(`{"errcode":"M_FORBIDDEN"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := s.FinalisedDelayed(ctx, "d2")
	if err != nil || got.Outcome != store.DelayedOutcomeError || got.Reason != store.DelayedReasonDelay || got.FinalisedTS != 12000 ||
		string(got.Error) != `{"errcode":"M_FORBIDDEN"}` || got.RunningSince != 3000 || got.DelayMS != 8000 || got.StateKey != nil {
		t.Fatalf("finalised d2 = %+v %v", got, err)
	}
	if _, err := s.FinalisedDelayed(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown finalised: %v", err)
	}
	// A failed send the client asked for goes back in the schedule.
	if err := s.RescheduleDelayed(ctx, got.DelayedEvent); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinalisedDelayed(ctx, "d2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rescheduled d2 still finalised: %v", err)
	}
	if d, err := s.DelayedEvent(ctx, "d2"); err != nil || d.FireTS != 11000 {
		t.Fatalf("rescheduled d2 = %+v %v", d, err)
	}
	// Retention: finalised events older than 7 days go when another is finalised.
	old := d
	old.DelayID = "old"
	_ = s.AddDelayed(ctx, old)
	if _, err := s.FinaliseDelayed(ctx, "old", store.DelayedOutcomeCancel, store.DelayedReasonAction, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinaliseDelayed(ctx, "d2", store.DelayedOutcomeSend, store.DelayedReasonAction, 1000+store.FinalisedRetention+1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFinalisedResult(ctx, "d2", store.DelayedOutcomeSend, "$sent", nil); err != nil {
		t.Fatal(err)
	}
	list, err := s.UserFinalisedDelayed(ctx, "@a:test")
	if err != nil || len(list) != 1 || list[0].DelayID != "d2" || list[0].EventID != "$sent" || list[0].Error != nil {
		t.Fatalf("finalised list = %+v %v", list, err)
	}

	h := []byte("0123456789abcdef0123456789abcdef")
	if err := s.CreateOpenIDToken(ctx, h, "@a:test", 5000); err != nil {
		t.Fatal(err)
	}
	if u, err := s.OpenIDToken(ctx, h, 4000); err != nil || u != "@a:test" {
		t.Fatalf("openid = %q %v", u, err)
	}
	if _, err := s.OpenIDToken(ctx, h, 6000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired openid token: %v", err)
	}
}

// testBumpPositions: the newest message-like event per room; state,
// reactions and memberships do not count, rooms without one are absent.
func testBumpPositions(t *testing.T, s store.Store) {
	t.Helper()
	create := ev("!bump:test", "$bcreate", "m.room.create", sk(""), "@a:test")
	if _, err := s.PersistEvents(ctx, &store.EventBatch{
		NewRoom: &store.Room{RoomID: "!bump:test", Version: "10", Creator: "@a:test", CreatedTS: 1},
		Events:  []store.EventRow{create, member("!bump:test", "$bjoin", "@a:test", "join")},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BumpPositions(ctx, []string{"!bump:test"})
	if err != nil {
		t.Fatal(err)
	}
	cr, _ := s.Event(ctx, "$bcreate")
	if got["!bump:test"] != cr.Pos {
		t.Fatalf("bump after create = %v, want %d", got, cr.Pos)
	}
	msg := ev("!bump:test", "$bmsg", "m.room.message", nil, "@a:test")
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{
		msg,
		ev("!bump:test", "$btopic", "m.room.topic", sk(""), "@a:test"),
		ev("!bump:test", "$breact", "m.reaction", nil, "@a:test"),
	}}); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Event(ctx, "$bmsg")
	ids := []string{"!bump:test", "!r:test", "!none:test"}
	for i := 0; i < 600; i++ { // more than one query's worth of IDs
		ids = append(ids, fmt.Sprintf("!filler%d:test", i))
	}
	got, err = s.BumpPositions(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if got["!bump:test"] != m.Pos || s.CurrentPos() == m.Pos {
		t.Fatalf("bump = %v, want %d (head %d)", got, m.Pos, s.CurrentPos())
	}
	if _, ok := got["!none:test"]; ok {
		t.Fatalf("unknown room has a bump: %v", got)
	}
	if m1, _ := s.Event(ctx, "$msg1"); got["!r:test"] != m1.Pos {
		t.Fatalf("bump of !r:test = %d, want its message's %d", got["!r:test"], m1.Pos)
	}
}
