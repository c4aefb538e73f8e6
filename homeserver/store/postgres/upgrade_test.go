package postgres_test

import (
	"context"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestUpgradeIndexesMediaRefs: events stored before migration 0101 have
// their media references indexed by it.
func TestUpgradeIndexesMediaRefs(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	pool, err := postgres.MigrateBefore(ctx, url, "0101")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	storetest.MediaRefsBackfill(t, func(q string, args ...any) error { _, err := pool.Exec(ctx, q, args...); return err },
		func() store.Store {
			s, err := postgres.Open(ctx, url)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
}
