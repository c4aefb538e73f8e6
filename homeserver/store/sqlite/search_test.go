package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestSearchBackfill: events stored before the search index existed are
// found once the migration that builds it has run.
func TestSearchBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() >= "0300" {
			continue
		}
		b, err := fs.ReadFile(migrations, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		old["m/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	d, err := openDB(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, d, old, "m"); err != nil {
		t.Fatal(err)
	}
	storetest.RunSearchBackfill(t, func(q string, args ...any) error {
		_, err := d.Exec(ctx, q, args...)
		return err
	}, func(t *testing.T) store.Store {
		d.Close()
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkSearch: full-text search over 100,000 messages in 100 rooms,
// for a user in 20 of them, capped as /search caps (5,000 matches).
func BenchmarkSearch(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rooms, vocab := storetest.SearchCorpus(b, s, 100, 1000)
	storetest.BenchSearch(b, s, rooms, vocab, 20, 5000)
}

// TestWithThreadsPlan: the query that finds which events of a /messages
// page root threads looks each one up by relates_to, never walking the
// room's thread replies.
func TestWithThreadsPlan(t *testing.T) {
	d, err := openDB(filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := sqlstore.Migrate(ctx, d, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Query(ctx, "EXPLAIN QUERY PLAN "+sqlstore.WithThreadsQuery, "!r:t", `["$e"]`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	found := false
	for _, p := range plan {
		if strings.Contains(p, "events") && !strings.Contains(p, "json_each") {
			if !strings.Contains(p, "events_rel") {
				t.Fatalf("events looked up without events_rel: %v", plan)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("plan: %v", plan)
	}
}
