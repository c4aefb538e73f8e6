package keys

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
)

type recorder struct {
	mu    sync.Mutex
	woken map[string]int
	pos   []int64
}

func (r *recorder) Notify(pos int64, roomID string, users []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pos = append(r.pos, pos)
	for _, u := range users {
		r.woken[u]++
	}
}

func newService(t *testing.T, maxQueue int) (*Service, store.Store, *recorder) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec := &recorder{woken: map[string]int{}}
	return New(Params{Store: st, ServerName: "test", Notifier: rec, MaxQueue: maxQueue}), st, rec
}

func msg(user, dev string) map[string]map[string]json.RawMessage {
	return map[string]map[string]json.RawMessage{user: {dev: json.RawMessage(`{"a":1}`)}}
}

// TestQueueBound: a device's queue holds MaxQueue messages; a request
// naming a full device is M_LIMIT_EXCEEDED and queues nothing, one
// reaching it through "*" skips it; after the device syncs (acks) it
// takes messages again.
func TestQueueBound(t *testing.T) {
	ctx := context.Background()
	s, st, rec := newService(t, 2)
	for _, d := range []string{"FULL", "FREE"} {
		if err := st.UpsertDevice(ctx, store.Device{UserID: "@b:test", DeviceID: d, TokenHash: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, txn := range []string{"1", "2"} {
		if err := s.SendToDevice(ctx, "@a:test", "A", "m.x", txn, msg("@b:test", "FULL")); err != nil {
			t.Fatal(i, err)
		}
	}
	err := s.SendToDevice(ctx, "@a:test", "A", "m.x", "3", map[string]map[string]json.RawMessage{"@b:test": {"FULL": json.RawMessage(`{}`), "FREE": json.RawMessage(`{}`)}})
	var me *mxerr.Error
	if !errors.As(err, &me) || me.Code != mxerr.LimitExceeded {
		t.Fatalf("named full device: %v", err)
	}
	if q, _ := st.ToDevice(ctx, "@b:test", "FREE", 0, st.CurrentPos(), 10); len(q) != 0 {
		t.Fatalf("refused request queued for FREE: %v", q)
	}
	if err := s.SendToDevice(ctx, "@a:test", "A", "m.x", "4", msg("@b:test", "*")); err != nil {
		t.Fatal(err)
	}
	full, _ := st.ToDevice(ctx, "@b:test", "FULL", 0, st.CurrentPos(), 10)
	free, _ := st.ToDevice(ctx, "@b:test", "FREE", 0, st.CurrentPos(), 10)
	if len(full) != 2 || len(free) != 1 {
		t.Fatalf("after *: FULL %d FREE %d", len(full), len(free))
	}
	if _, err := st.AckToDevice(ctx, "@b:test", "FULL", full[1].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.SendToDevice(ctx, "@a:test", "A", "m.x", "5", msg("@b:test", "FULL")); err != nil {
		t.Fatalf("after the ack: %v", err)
	}
	if rec.woken["@b:test"] != 4 {
		t.Fatalf("bob woken %d times, want 4 (one per queued request)", rec.woken["@b:test"])
	}
}

// TestSendToDeviceReplayRace: the same transaction sent twice at once is
// queued once.
func TestSendToDeviceReplayRace(t *testing.T) {
	ctx := context.Background()
	s, st, _ := newService(t, 0)
	if err := st.UpsertDevice(ctx, store.Device{UserID: "@b:test", DeviceID: "B", TokenHash: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.SendToDevice(ctx, "@a:test", "A", "m.x", "same", msg("@b:test", "B"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !IsReplay(err) {
			t.Fatal(err)
		}
	}
	if q, _ := st.ToDevice(ctx, "@b:test", "B", 0, st.CurrentPos(), 100); len(q) != 1 {
		t.Fatalf("queued %d times", len(q))
	}
}
