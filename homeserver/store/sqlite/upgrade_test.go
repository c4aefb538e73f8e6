package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestUpgradeInPlace: a database made by an older schema (only the first
// migration) is upgraded at start and keeps its data.
func TestUpgradeInPlace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	first, err := fs.ReadFile(migrations, "migrations/0001_accounts.sql")
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{"m/0001_accounts.sql": {Data: first}}
	d, err := openDB(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, d, old, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `INSERT INTO accounts (localpart, user_id, created_ts) VALUES ('old', '@old:t', 1)`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer s.Close()
	if _, err := s.Account(ctx, "old"); err != nil {
		t.Fatalf("old data lost: %v", err)
	}
	if _, err := s.PersistEvents(ctx, &store.EventBatch{NewRoom: &store.Room{RoomID: "!r:t", Version: "10", Creator: "@old:t"}}); err != nil {
		t.Fatalf("new tables missing: %v", err)
	}
}

// TestRefuseNewerSchema: a database written by a newer binary is refused.
func TestRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	d, _ := openDB(path, Options{})
	if _, err := d.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ts) VALUES (99999, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := Open(ctx, path, Options{}); err == nil {
		t.Fatal("opened a database from a newer binary")
	}
}

// TestUpgradeIndexesMediaRefs: events stored before migration 0101 have
// their media references indexed by it.
func TestUpgradeIndexesMediaRefs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := fstest.MapFS{}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) >= "0101" {
			continue
		}
		b, _ := fs.ReadFile(migrations, f)
		old["m/"+filepath.Base(f)] = &fstest.MapFile{Data: b}
	}
	d, err := openDB(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, d, old, "m"); err != nil {
		t.Fatal(err)
	}
	storetest.MediaRefsBackfill(t, func(q string, args ...any) error { _, err := d.Exec(ctx, q, args...); return err },
		func() store.Store {
			d.Close()
			s, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
}
