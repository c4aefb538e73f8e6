package pushrules

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// profileCounter counts the profile reads of a store.
type profileCounter struct {
	store.Store
	reads atomic.Int64
}

func (p *profileCounter) Profile(ctx context.Context, userID string) (store.Profile, error) {
	p.reads.Add(1)
	return p.Store.Profile(ctx, userID)
}

// TestCountsUseTheRoomDisplayName: the unread counts match
// contains_display_name against the user's member event in the room
// (followed as it changes) and never read the profile, which the store
// could only keep for a few seconds (issue 24: a profile query per woken
// /sync on PostgreSQL).
func TestCountsUseTheRoomDisplayName(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), sqlite.Options{Synchronous: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) store.Store { return pgtest.Open(t) },
	} {
		t.Run(name, func(t *testing.T) {
			raw := open(t)
			defer raw.Close()
			st := &profileCounter{Store: raw}
			const room, me, you = "!r:test", "@me:test", "@you:test"
			if err := st.CreateAccount(ctx, store.Account{Localpart: "me", UserID: me, CreatedTS: 1}, "x"); err != nil {
				t.Fatal(err)
			}
			if err := st.SetDisplayName(ctx, me, "Profil"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: room, Version: "10", Creator: me}}); err != nil {
				t.Fatal(err)
			}
			n := 0
			persist := func(typ string, sender string, stateKey *string, content map[string]any) {
				t.Helper()
				n++
				id := "$e" + string(rune('a'+n))
				b, _ := json.Marshal(map[string]any{"event_id": id, "room_id": room, "type": typ, "sender": sender, "content": content, "origin_server_ts": 1})
				r := store.EventRow{EventID: id, RoomID: room, Type: typ, Sender: sender, StateKey: stateKey, JSON: b}
				if m, ok := content["membership"].(string); ok {
					r.Membership = m
				}
				if _, err := st.PersistEvents(ctx, &store.EventBatch{Events: []store.EventRow{r}}); err != nil {
					t.Fatal(err)
				}
			}
			key := me
			persist("m.room.member", me, &key, map[string]any{"membership": "join", "displayname": "Moi"})
			s := New(st, twoMembers{})
			want := func(highlights int) {
				t.Helper()
				main, _, err := s.ThreadedCounts(ctx, me, room)
				if err != nil {
					t.Fatal(err)
				}
				if main.Highlights != highlights {
					t.Fatalf("highlights = %d, want %d", main.Highlights, highlights)
				}
			}
			say := func(body string) {
				persist("m.room.message", you, nil, map[string]any{"msgtype": "m.text", "body": body})
			}
			say("Moi ?")
			want(1)
			say("Profil ?")
			want(1)
			persist("m.room.member", me, &key, map[string]any{"membership": "join", "displayname": "Toi"})
			// Without a receipt the count starts at the user's newest
			// join, which the change of name is.
			say("Toi !")
			want(1)
			say("Moi ?")
			want(1)
			if r := st.reads.Load(); r != 0 {
				t.Fatalf("the counts read the profile %d times", r)
			}
		})
	}
}
