// Package postgres is Salon's production backend: PostgreSQL through
// github.com/jackc/pgx/v5 (pgxpool).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to the database at url (a postgres:// URL; extra query
// parameters such as search_path become session settings) and migrates it.
func Open(ctx context.Context, url string) (*sqlstore.Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	// salon_query_timeout is Salon's, not a session setting: it bounds
	// each query or transaction that has no sooner deadline, so a database
	// that stops answering (a partition without a reset) fails requests
	// instead of holding them forever (docs/FAULTS.md).
	timeout := DefaultQueryTimeout
	if v, ok := cfg.ConnConfig.RuntimeParams["salon_query_timeout"]; ok {
		delete(cfg.ConnConfig.RuntimeParams, "salon_query_timeout")
		if timeout, err = time.ParseDuration(v); err != nil || timeout < 0 {
			return nil, fmt.Errorf("postgres url: salon_query_timeout %q is not a duration", v)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Migrations may take long on a large database: they run unbounded.
	d := &db{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := sqlstore.Migrate(ctx, d, migrations, "migrations"); err != nil {
		pool.Close()
		return nil, err
	}
	d.timeout = timeout
	s, err := sqlstore.Open(ctx, d)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// DefaultQueryTimeout bounds a query or transaction without a sooner
// deadline of its own.
const DefaultQueryTimeout = 30 * time.Second

type db struct {
	pool    *pgxpool.Pool
	timeout time.Duration // 0: unbounded
}

// bound gives ctx the query timeout unless it has a sooner deadline.
func (d *db) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.timeout <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.timeout)
}

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier runs queries on the pool (bound set: each query bounded) or in
// a transaction (bound nil: the transaction is bounded as a whole).
type querier struct {
	q     pgxQuerier
	bound func(context.Context) (context.Context, context.CancelFunc)
}

func (q querier) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if q.bound == nil {
		return ctx, func() {}
	}
	return q.bound(ctx)
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	ctx, cancel := q.ctx(ctx)
	defer cancel()
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	ctx, cancel := q.ctx(ctx)
	rows, err := q.q.Query(ctx, query, args...)
	if err != nil {
		cancel()
		return nil, err
	}
	return boundRows{rows, cancel}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	ctx, cancel := q.ctx(ctx)
	return boundRow{q.q.QueryRow(ctx, query, args...), cancel}
}

// boundRows and boundRow end their query's deadline when read.
type boundRows struct {
	pgx.Rows
	cancel context.CancelFunc
}

func (r boundRows) Close() { r.Rows.Close(); r.cancel() }

type boundRow struct {
	row    pgx.Row
	cancel context.CancelFunc
}

func (r boundRow) Scan(dest ...any) error {
	defer r.cancel()
	return r.row.Scan(dest...)
}

func (d *db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return querier{d.pool, d.bound}.Exec(ctx, query, args...)
}

func (d *db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return querier{d.pool, d.bound}.Query(ctx, query, args...)
}

func (d *db) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return querier{d.pool, d.bound}.QueryRow(ctx, query, args...)
}

func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(querier{q: tx}) })
}

func (d *db) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (d *db) IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func (d *db) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *db) Close() error { d.pool.Close(); return nil }

// Dialect tells the shared store to use PostgreSQL's full-text search.
func (d *db) Dialect() sqlstore.Dialect { return sqlstore.DialectPostgres }
