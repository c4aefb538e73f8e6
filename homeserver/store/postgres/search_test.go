package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestSearchBackfill: events stored before the search index existed are
// found once the migration that builds it has run.
func TestSearchBackfill(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	pool, err := postgres.MigrateBefore(ctx, url, "0300")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec := func(q string, args ...any) error {
		_, err := pool.Exec(ctx, q, args...)
		return err
	}
	storetest.RunSearchBackfill(t, exec, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkSearch: full-text search over 100,000 messages in 100 rooms,
// for a user in 20 of them, capped as /search caps (5,000 matches).
// The tables are analysed after the load, as autovacuum would soon do.
func BenchmarkSearch(b *testing.B) {
	url := pgtest.URL(b)
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rooms, vocab := storetest.SearchCorpus(b, s, 100, 1000)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	conn.Close(context.Background())
	storetest.BenchSearch(b, s, rooms, vocab, 20, 5000)
}
