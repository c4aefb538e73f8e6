package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// failingState is a store whose CurrentState fails while failing is set:
// a database that went away while a room's state had to be reloaded.
type failingState struct {
	store.Store
	failing atomic.Bool
}

var errDatabaseGone = errors.New("database gone")

func (f *failingState) PersistEvents(ctx context.Context, b *store.EventBatch) (int64, error) {
	if f.failing.Load() {
		return 0, errDatabaseGone
	}
	return f.Store.PersistEvents(ctx, b)
}

func (f *failingState) CurrentState(ctx context.Context, roomID string) ([]store.EventRow, error) {
	if f.failing.Load() {
		return nil, errDatabaseGone
	}
	return f.Store.CurrentState(ctx, roomID)
}

// TestSendSurvivesFailedReload: a send into a room whose cached state was
// dropped (after a failed write) while the database fails gets the error,
// and the room works again once the database is back. Send used to unlock
// the room, reload, and lock the nil entry a failed reload returned; its
// deferred unlock then released a mutex nobody held, a fatal error that
// stopped the whole server.
func TestSendSurvivesFailedReload(t *testing.T) {
	ctx := context.Background()
	base := newTestService(t, nil)
	fs := &failingState{Store: base.p.Store}
	p := base.p
	p.Store = fs
	s := New(p)
	roomID, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"},
		func(context.Context, string) (string, string) { return "", "" })
	if err != nil {
		t.Fatal(err)
	}
	msg := func(body string) Event {
		c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
		return Event{Type: "m.room.message", Content: c}
	}
	drop := func() {
		s.mu.Lock()
		r := s.rooms[roomID]
		s.mu.Unlock()
		r.mu.Lock()
		r.state = nil
		r.mu.Unlock()
	}

	drop()
	fs.failing.Store(true)
	if _, err := s.Send(ctx, roomID, "@alice:hs", msg("during the outage")); !errors.Is(err, errDatabaseGone) {
		t.Fatalf("send while the reload fails: %v, want the database's error", err)
	}
	fs.failing.Store(false)

	// The room is neither left locked nor broken: concurrent sends go
	// through once the database answers.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Send(ctx, roomID, "@alice:hs", msg("after"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("send after the outage: %v", err)
		}
	}

	// Failed writes drop the state while other sends are between finding
	// the room and locking it: the window where the old code crashed.
	var flaps sync.WaitGroup
	stop := make(chan struct{})
	flaps.Add(1)
	go func() {
		defer flaps.Done()
		for {
			select {
			case <-stop:
				fs.failing.Store(false)
				return
			default:
				fs.failing.Store(!fs.failing.Load())
				runtime.Gosched()
			}
		}
	}()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				if _, err := s.Send(ctx, roomID, "@alice:hs", msg("flapping")); err != nil && !errors.Is(err, errDatabaseGone) {
					t.Errorf("send while the database flaps: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flaps.Wait()
	if _, err := s.Send(ctx, roomID, "@alice:hs", msg("settled")); err != nil {
		t.Fatalf("send after the database settled: %v", err)
	}

	// Readers of a dropped room reload it too.
	drop()
	members, err := s.Members(ctx, roomID, "join")
	if err != nil || len(members) != 1 || members[0] != "@alice:hs" {
		t.Fatalf("Members after reload = %v, %v", members, err)
	}
}

// TestReadersSurviveFailedWrites: the readers of a room's state (here the
// call permissions the SFU asks for, and the membership checks of kicks
// and invites) see whole state or the database's error while failed writes
// keep dropping the state, never the empty state of a dropped room, which
// would answer "not joined" to a joined user. They used to load the room,
// release it and lock it again, and a failed write in between left them
// reading nil state.
func TestReadersSurviveFailedWrites(t *testing.T) {
	ctx := context.Background()
	base := newTestService(t, nil)
	fs := &failingState{Store: base.p.Store}
	p := base.p
	p.Store = fs
	s := New(p)
	roomID, _, err := s.Create(ctx, "@alice:hs", CreateRequest{Preset: "public_chat"},
		func(context.Context, string) (string, string) { return "", "" })
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": "flapping"})

	// Failed sends drop the state; successful ones between them keep
	// the reads racing a drop.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fs.failing.Store(i%2 == 0)
			s.Send(ctx, roomID, "@alice:hs", Event{Type: "m.room.message", Content: msg}) //nolint:errcheck // failures are the point
		}
	}()
	var readers sync.WaitGroup
	for g := 0; g < 4; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; i < 300; i++ {
				perm, err := s.CallPermissions(ctx, "@alice:hs", roomID)
				if err == nil && !perm.Joined {
					t.Errorf("call permissions read a dropped room's state: alice not joined")
					return
				}
				if err != nil && !errors.Is(err, errDatabaseGone) {
					t.Errorf("call permissions: %v", err)
					return
				}
				if err := s.mayChangeOthers(ctx, roomID, "@alice:hs", "invite"); err != nil && !errors.Is(err, errDatabaseGone) {
					t.Errorf("invite check read a dropped room's state: %v", err)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	fs.failing.Store(false)
	if perm, err := s.CallPermissions(ctx, "@alice:hs", roomID); err != nil || !perm.Joined {
		t.Fatalf("call permissions after the database settled: %+v, %v", perm, err)
	}
}
