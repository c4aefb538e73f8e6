package pushrules

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

type twoMembers struct{}

func (twoMembers) MemberCount(context.Context, string) (int, error) { return 2, nil }
func (twoMembers) PowerLevels(context.Context, string) (func(string) int64, func(string) int64, error) {
	return nil, nil, nil
}

func row(room, id, typ, sender string, stateKey *string, membership string) store.EventRow {
	b, _ := json.Marshal(map[string]any{"event_id": id, "room_id": room, "type": typ, "sender": sender,
		"content": map[string]any{"msgtype": "m.text", "body": id, "membership": membership}, "origin_server_ts": 1})
	return store.EventRow{EventID: id, RoomID: room, Type: typ, Sender: sender, StateKey: stateKey, Membership: membership, JSON: b}
}

// TestNotificationsPageThroughBusyRoom: a room whose newest few hundred
// events notify nobody does not hide its own older notification: the
// first page stops where the busy room's scan stopped and says where to
// go on, and a later page finds it.
func TestNotificationsPageThroughBusyRoom(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	me := "@me:test"
	persist := func(rows ...store.EventRow) {
		t.Helper()
		b := &store.EventBatch{Events: rows}
		if _, err := st.PersistEvents(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"!busy:test", "!quiet:test"} {
		if _, err := st.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: r, Version: "10", Creator: me}}); err != nil {
			t.Fatal(err)
		}
		persist(row(r, "$join"+r, "m.room.member", me, &me, "join"))
	}
	persist(row("!busy:test", "$early", "m.room.message", "@you:test", nil, ""))
	persist(row("!quiet:test", "$old", "m.room.message", "@you:test", nil, ""))
	var chatter []store.EventRow
	for i := 0; i < notificationScan+100; i++ {
		chatter = append(chatter, row("!busy:test", fmt.Sprintf("$c%d", i), "org.example.chatter", "@you:test", nil, ""))
	}
	persist(chatter...)
	persist(row("!busy:test", "$new", "m.room.message", "@you:test", nil, ""))
	persist(row("!busy:test", "$mine", "m.room.message", me, nil, ""))

	s := New(st, twoMembers{})
	var got []string
	var before int64
	for pages := 0; pages < 5; pages++ {
		ns, next, err := s.Notifications(ctx, me, before, 10, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			got = append(got, n.Row.EventID)
		}
		if next == 0 {
			break
		}
		if before != 0 && next >= before {
			t.Fatalf("no progress: %d after %d", next, before)
		}
		before = next
	}
	if fmt.Sprint(got) != "[$new $old $early]" {
		t.Fatalf("notifications = %v", got)
	}
}
