package postgres

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// MigrateBefore applies the migrations numbered below first to the
// database at url and returns an Exec on it (for upgrade tests).
func MigrateBefore(t *testing.T, url, first string) func(q string, args ...any) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	old := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() >= first {
			continue
		}
		b, err := fs.ReadFile(migrations, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		old["m/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	d := &db{pool: pool}
	if err := sqlstore.Migrate(ctx, d, old, "m"); err != nil {
		t.Fatal(err)
	}
	return func(q string, args ...any) error {
		_, err := d.Exec(ctx, q, args...)
		return err
	}
}
