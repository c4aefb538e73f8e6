package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// countingDB counts the statements run outside write transactions.
type countingDB struct {
	*db
	reads atomic.Int64
}

func (c *countingDB) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	c.reads.Add(1)
	return c.db.Query(ctx, q, args...)
}

func (c *countingDB) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	c.reads.Add(1)
	return c.db.QueryRow(ctx, q, args...)
}

// TestWakeUpReadsNoSQL: after a message commits, the reads a woken /sync
// of one of the room's members makes (found by profiling a messaging
// load: the membership check, account data and receipts since the token,
// the timeline, and the unread count's receipts, join position, events and
// display name) are answered from the store's memo, without a statement.
func TestWakeUpReadsNoSQL(t *testing.T) {
	d, err := openDB(filepath.Join(t.TempDir(), "memo.db"), Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sqlstore.Migrate(ctx, d, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	c := &countingDB{db: d}
	s, err := sqlstore.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const room, alice, bob = "!r:t", "@alice:t", "@bob:t"
	for _, u := range []string{alice, bob} {
		if err := s.CreateAccount(ctx, store.Account{Localpart: u[1:4], UserID: u, CreatedTS: 1}, u); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id, typ, key, membership string) store.EventRow {
		return store.EventRow{EventID: id, RoomID: room, Type: typ, StateKey: &key, Sender: alice, JSON: []byte(`{}`), Membership: membership}
	}
	if _, err := s.PersistEvents(ctx, &store.EventBatch{
		NewRoom: &store.Room{RoomID: room, Version: "10", Creator: alice},
		Events: []store.EventRow{
			state("$create", "m.room.create", "", ""),
			state("$alice", "m.room.member", alice, "join"),
			state("$bob", "m.room.member", bob, "join"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	wakeUp := func(since int64) {
		t.Helper()
		head := s.CurrentPos()
		steps := []struct {
			name string
			err  error
		}{}
		add := func(name string, err error) {
			steps = append(steps, struct {
				name string
				err  error
			}{name, err})
		}
		_, err := s.StateHistory(ctx, room, "m.room.member", bob)
		add("membership", err)
		_, err = s.AccountDataSince(ctx, bob, since, head)
		add("account data", err)
		_, err = s.ReceiptsSince(ctx, []string{room}, since, head)
		add("receipts", err)
		evs, err := s.RoomEvents(ctx, room, since, head+1, 11, true)
		add("timeline", err)
		if len(evs) == 0 {
			t.Fatalf("no events after %d", since)
		}
		for _, typ := range []string{"m.read", "m.read.private"} {
			if _, err := s.UserReceipt(ctx, room, bob, typ); err != store.ErrNotFound {
				add("receipt "+typ, err)
			}
			_, err = s.UserThreadReceipts(ctx, room, bob, typ)
			add("thread receipts "+typ, err)
		}
		_, err = s.RoomEvents(ctx, room, since, head+1, 1000, false)
		add("count scan", err)
		_, err = s.Profile(ctx, bob)
		add("profile", err)
		for _, st := range steps {
			if st.err != nil {
				t.Fatalf("%s: %v", st.name, st.err)
			}
		}
	}
	// The first sync after the start reads what it has not seen.
	since := s.CurrentPos()
	if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{{EventID: "$m0", RoomID: room, Type: "m.room.message", Sender: alice, JSON: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	first := c.reads.Load()
	wakeUp(since)
	if c.reads.Load() == first {
		t.Fatal("the first wake-up ran no statement: is the counter wired?")
	}
	for i := 1; i <= 50; i++ {
		if i == 25 {
			// A threaded receipt (before the token: its own sync reads it)
			// keeps the memo's answer current.
			if _, err := s.PutReceipt(ctx, store.Receipt{RoomID: room, UserID: bob, Type: "m.read", EventID: "$m3", ThreadID: "main", TS: 1}); err != nil {
				t.Fatal(err)
			}
		}
		since = s.CurrentPos()
		if _, err := s.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{{EventID: fmt.Sprintf("$m%d", i), RoomID: room, Type: "m.room.message", Sender: alice, JSON: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		before := c.reads.Load()
		wakeUp(since)
		if n := c.reads.Load() - before; n != 0 {
			t.Fatalf("message %d: the woken sync's reads ran %d statements", i, n)
		}
	}
}
