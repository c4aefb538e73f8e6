package postgres

import (
	"context"
	"io/fs"
	"path"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// MigrateBefore applies the migrations whose file names sort before
// first, as an older binary would have, and returns the pool.
func MigrateBefore(ctx context.Context, url, first string) (*pgxpool.Pool, error) {
	old := fstest.MapFS{}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if path.Base(f) < first {
			b, _ := fs.ReadFile(migrations, f)
			old["m/"+path.Base(f)] = &fstest.MapFile{Data: b}
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, &db{pool: pool}, old, "m"); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
