package pushrules

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// BenchmarkCountsAfterMessage: the unread count a woken /sync computes
// after each new message, for a user with an unthreaded receipt and
// threaded ones (main and two threads), on SQLite.
func BenchmarkCountsAfterMessage(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "c.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	me, other, room := "@me:test", "@other:test", "!r:test"
	persist := func(rows ...store.EventRow) {
		if _, err := st.PersistEvents(ctx, &store.EventBatch{Events: rows}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: room, Version: "10", Creator: me}}); err != nil {
		b.Fatal(err)
	}
	persist(row(room, "$join", "m.room.member", me, &me, "join"))
	for i := range 20 {
		persist(row(room, fmt.Sprintf("$old%d", i), "m.room.message", other, nil, ""))
	}
	for _, r := range []store.Receipt{
		{RoomID: room, UserID: me, Type: "m.read", EventID: "$old5", TS: 1},
		{RoomID: room, UserID: me, Type: "m.read", EventID: "$old8", ThreadID: "main", TS: 1},
		{RoomID: room, UserID: me, Type: "m.read", EventID: "$old9", ThreadID: "$old1", TS: 1},
		{RoomID: room, UserID: me, Type: "m.read", EventID: "$old10", ThreadID: "$old2", TS: 1},
	} {
		if _, err := st.PutReceipt(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	s := New(st, twoMembers{})
	if _, _, err := s.Counts(ctx, me, room, 0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		persist(row(room, fmt.Sprintf("$new%d", i), "m.room.message", other, nil, ""))
		b.StartTimer()
		if _, _, err := s.Counts(ctx, me, room, 0); err != nil {
			b.Fatal(err)
		}
	}
}
