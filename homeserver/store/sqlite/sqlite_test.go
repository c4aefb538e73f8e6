package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "salon.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "salon.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, store.Account{Localpart: "a", UserID: "@a:t", CreatedTS: 1}, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Opening again runs the migrations again: they must be skipped.
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Account(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestReopenSameAnswers(t *testing.T) {
	storetest.RunReopen(t, reopener)
}

func TestReopenKeys(t *testing.T) {
	storetest.RunReopenKeys(t, reopener)
}

func reopener(t *testing.T) (store.Store, func(*testing.T, store.Store) store.Store) {
	path := filepath.Join(t.TempDir(), "salon.db")
	open := func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(t), func(t *testing.T, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return open(t)
	}
}

// TestFilesOwnerOnly: a new database and its -wal and -shm files are 0600;
// an existing database left readable by others (created by an older Salon)
// is made private when it is opened.
func TestFilesOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "salon.db")
	ctx := context.Background()
	check := func() {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s is %#o, want 0600", filepath.Base(p), perm)
			}
		}
	}
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, store.Account{Localpart: "a", UserID: "@a:t", CreatedTS: 1}, ""); err != nil {
		t.Fatal(err)
	}
	check()
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Account(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check()
}
