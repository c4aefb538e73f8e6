package userdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

type fakeStore struct {
	pos  int64
	data map[[3]string][]byte
	recs []store.Receipt
}

func (f *fakeStore) AccountData(_ context.Context, u, r, typ string) ([]byte, error) {
	b, ok := f.data[[3]string{u, r, typ}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

func (f *fakeStore) PutAccountData(_ context.Context, u, r, typ string, c []byte) (int64, error) {
	f.pos++
	f.data[[3]string{u, r, typ}] = c
	return f.pos, nil
}

func (f *fakeStore) PutReceipt(_ context.Context, r store.Receipt) (int64, error) {
	f.pos++
	f.recs = append(f.recs, r)
	return f.pos, nil
}

type notice struct {
	pos   int64
	room  string
	users []string
}

type fakeNotifier struct{ got []notice }

func (f *fakeNotifier) Notify(pos int64, room string, users []string) {
	f.got = append(f.got, notice{pos, room, users})
}

type fakeRooms struct{}

func (fakeRooms) RequireJoined(_ context.Context, _, user string) error {
	if user == "@out:t" {
		return mxerr.Forbid("not joined")
	}
	return nil
}
func (fakeRooms) Members(context.Context, string, string) ([]string, error) {
	return []string{"@a:t", "@b:t"}, nil
}
func (fakeRooms) Event(_ context.Context, _, _, id string) (store.EventRow, events.RoomVersion, error) {
	if id != "$seen" {
		return store.EventRow{}, "", mxerr.NotFoundf("no event")
	}
	return store.EventRow{}, "", nil
}

// TestWritesNotify: every write wakes the users it concerns at the
// position it was stored at; refused writes store nothing and wake no one.
func TestWritesNotify(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		write func(*Service) error
		code  mxerr.Code // "" for success
		room  string
		users []string
	}{
		{"account data", func(s *Service) error { return s.PutAccountData(ctx, "@a:t", "", "x.y", json.RawMessage(`{}`)) }, "", "", []string{"@a:t"}},
		{"room account data", func(s *Service) error { return s.PutAccountData(ctx, "@a:t", "!r:t", "x.y", json.RawMessage(`{}`)) }, "", "", []string{"@a:t"}},
		{"server-managed type", func(s *Service) error {
			return s.PutAccountData(ctx, "@a:t", "", "m.fully_read", json.RawMessage(`{}`))
		}, mxerr.BadJSON, "", nil},
		{"empty type", func(s *Service) error { return s.PutAccountData(ctx, "@a:t", "", "", json.RawMessage(`{}`)) }, mxerr.InvalidParam, "", nil},
		{"tag", func(s *Service) error { return s.PutTag(ctx, "@a:t", "!r:t", "u.x", json.RawMessage(`{"order":1}`)) }, "", "", []string{"@a:t"}},
		{"empty tag", func(s *Service) error { return s.PutTag(ctx, "@a:t", "!r:t", "", json.RawMessage(`{}`)) }, mxerr.InvalidParam, "", nil},
		{"tag deleted", func(s *Service) error { return s.DeleteTag(ctx, "@a:t", "!r:t", "u.x") }, "", "", []string{"@a:t"}},
		{"public receipt", func(s *Service) error { return s.Receipt(ctx, "@a:t", "!r:t", Read, "$seen", "") }, "", "!r:t", []string{"@a:t", "@b:t"}},
		{"private receipt", func(s *Service) error { return s.Receipt(ctx, "@a:t", "!r:t", ReadPrivate, "$seen", "main") }, "", "!r:t", []string{"@a:t"}},
		{"fully read", func(s *Service) error { return s.Receipt(ctx, "@a:t", "!r:t", FullyRead, "$seen", "") }, "", "", []string{"@a:t"}},
		{"unknown receipt type", func(s *Service) error { return s.Receipt(ctx, "@a:t", "!r:t", "m.bogus", "$seen", "") }, mxerr.InvalidParam, "", nil},
		{"receipt outside the room", func(s *Service) error { return s.Receipt(ctx, "@out:t", "!r:t", Read, "$seen", "") }, mxerr.Forbidden, "", nil},
		{"receipt of an unseen event", func(s *Service) error { return s.Receipt(ctx, "@a:t", "!r:t", Read, "$hidden", "") }, mxerr.NotFound, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{pos: 10, data: map[[3]string][]byte{}}
			n := &fakeNotifier{}
			s := New(Params{Store: st, Notifier: n, Rooms: fakeRooms{}, Now: func() time.Time { return time.UnixMilli(5) }})
			err := tc.write(s)
			if tc.code != "" {
				var me *mxerr.Error
				if !errors.As(err, &me) || me.Code != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				if len(n.got) != 0 || st.pos != 10 {
					t.Fatalf("a refused write stored (pos %d) or notified %v", st.pos, n.got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(n.got) != 1 || n.got[0].pos != st.pos || n.got[0].room != tc.room || !slices.Equal(n.got[0].users, tc.users) {
				t.Fatalf("notified %v, want one at %d room %q users %v", n.got, st.pos, tc.room, tc.users)
			}
		})
	}
}

// TestReadMarkers: each marker given is one write and one wake, in the
// order m.fully_read, m.read, m.read.private.
func TestReadMarkers(t *testing.T) {
	st := &fakeStore{data: map[[3]string][]byte{}}
	n := &fakeNotifier{}
	s := New(Params{Store: st, Notifier: n, Rooms: fakeRooms{}})
	if err := s.ReadMarkers(context.Background(), "@a:t", "!r:t", map[string]string{FullyRead: "$seen", ReadPrivate: "$seen"}); err != nil {
		t.Fatal(err)
	}
	if len(n.got) != 2 || n.got[0].room != "" || n.got[1].room != "!r:t" || len(st.recs) != 1 || st.recs[0].Type != ReadPrivate {
		t.Fatalf("notified %v, receipts %v", n.got, st.recs)
	}
}

// TestConcurrentTagsKeepEveryTag: tags are one account data object that
// each change reads and writes again; changes racing from several devices
// must not lose one another.
func TestConcurrentTagsKeepEveryTag(t *testing.T) {
	st := &lockedStore{fakeStore: fakeStore{data: map[[3]string][]byte{}}}
	s := New(Params{Store: st, Notifier: lockedNotifier{}, Rooms: fakeRooms{}})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.PutTag(ctx, "@a:t", "!r:t", fmt.Sprintf("u.%d", i), json.RawMessage(`{}`)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	tags, err := s.Tags(ctx, "@a:t", "!r:t")
	if err != nil || len(tags) != 40 {
		t.Fatalf("%d tags kept of 40 (%v)", len(tags), err)
	}
}

// lockedStore is fakeStore safe for concurrent use, yielding between a
// read and a write as a database would.
type lockedStore struct {
	mu sync.Mutex
	fakeStore
}

func (l *lockedStore) AccountData(ctx context.Context, u, r, typ string) ([]byte, error) {
	l.mu.Lock()
	b, err := l.fakeStore.AccountData(ctx, u, r, typ)
	l.mu.Unlock()
	runtime.Gosched()
	return b, err
}

func (l *lockedStore) PutAccountData(ctx context.Context, u, r, typ string, c []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fakeStore.PutAccountData(ctx, u, r, typ, c)
}

// lockedNotifier ignores the wakes (fakeNotifier is not safe for
// concurrent use).
type lockedNotifier struct{}

func (lockedNotifier) Notify(int64, string, []string) {}
