// Package pgtest gives tests a fresh PostgreSQL schema of their own. It reads
// SALON_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test); when
// the database cannot be reached the test is skipped with the reason, except
// under CI=true, where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/salonhq/salon/homeserver/store/postgres"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// URL creates a fresh schema, drops it when t ends, and returns a database
// URL whose connections use it.
func URL(t testing.TB) string {
	t.Helper()
	base := storetest.PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if storetest.MustReachPostgres() {
			t.Fatalf("PostgreSQL at %s is unreachable and CI=true: %v", base, err)
		}
		t.Skipf("skipping PostgreSQL tests: %s unreachable (%v); set SALON_TEST_POSTGRES", base, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "salon_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated store in a fresh schema.
func Open(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
