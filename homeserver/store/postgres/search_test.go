package postgres_test

import (
	"context"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestSearchBackfill: events stored before the search index existed are
// found once the migration that builds it has run.
func TestSearchBackfill(t *testing.T) {
	url := pgtest.URL(t)
	exec := postgres.MigrateBefore(t, url, "0300")
	storetest.RunSearchBackfill(t, exec, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
