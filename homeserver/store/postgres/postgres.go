// Package postgres is Salon's production backend: PostgreSQL through
// github.com/jackc/pgx/v5 (pgxpool).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d := &db{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := sqlstore.Migrate(ctx, d, migrations, "migrations"); err != nil {
		pool.Close()
		return nil, err
	}
	s, err := sqlstore.Open(ctx, d)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

type db struct{ pool *pgxpool.Pool }

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type querier struct{ q pgxQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.q.QueryRow(ctx, query, args...)
}

func (d *db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return querier{d.pool}.Exec(ctx, query, args...)
}

func (d *db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return querier{d.pool}.Query(ctx, query, args...)
}

func (d *db) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return querier{d.pool}.QueryRow(ctx, query, args...)
}

func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(querier{tx}) })
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
