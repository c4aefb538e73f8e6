// Package postgres is Salon's production backend: PostgreSQL through
// github.com/jackc/pgx/v5 (pgxpool).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/salonhq/salon/homeserver/store"
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

// bound gives ctx the query timeout unless it has a sooner deadline. The
// returned ctx is the one to check (timedOut) when the query fails.
func (d *db) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.timeout <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.timeout)
}

// classify marks the errors that say PostgreSQL is out of service for
// now, not that the statement was wrong: it cannot be reached or the
// connection broke (connect errors, refused, reset, EOF, network
// errors and timeouts), or the server says so itself — SQLSTATE class 08
// (connection exception), class 53 (insufficient resources, e.g. 53100
// disk full), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
// connect now. bounded is the context the query ran under and parent the
// caller's: a deadline that only the query timeout set (the database
// stopped answering) is marked too, while the caller's own cancellation
// or deadline is left alone. mxerr answers marked errors 503.
func classify(err error, parent, bounded context.Context) error {
	if err == nil {
		return nil
	}
	// DeadlineExceeded, not Canceled: reading Rows.Err after Close (which
	// ends the bound) must not make a statement's error look like one.
	if bounded != nil && bounded != parent && errors.Is(bounded.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		return store.Unavailable(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:2] == "53"),
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
			return store.Unavailable(err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's: it went away or its own deadline passed.
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return store.Unavailable(err)
	}
	return err
}

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier runs queries on the pool (bound set: each query bounded) or in
// a transaction (bound nil: the transaction is bounded as a whole, and
// Tx classifies what fn returns).
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
	bctx, cancel := q.ctx(ctx)
	defer cancel()
	tag, err := q.q.Exec(bctx, query, args...)
	return tag.RowsAffected(), classify(err, ctx, bctx)
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	bctx, cancel := q.ctx(ctx)
	rows, err := q.q.Query(bctx, query, args...)
	if err != nil {
		err = classify(err, ctx, bctx)
		cancel()
		return nil, err
	}
	return boundRows{rows, cancel, ctx, bctx}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	bctx, cancel := q.ctx(ctx)
	return boundRow{q.q.QueryRow(bctx, query, args...), cancel, ctx, bctx}
}

// boundRows and boundRow end their query's deadline when read, and
// classify the errors of reading.
type boundRows struct {
	pgx.Rows
	cancel          context.CancelFunc
	parent, bounded context.Context
}

func (r boundRows) Close() { r.Rows.Close(); r.cancel() }

func (r boundRows) Err() error { return classify(r.Rows.Err(), r.parent, r.bounded) }

func (r boundRows) Scan(dest ...any) error {
	return classify(r.Rows.Scan(dest...), r.parent, r.bounded)
}

type boundRow struct {
	row             pgx.Row
	cancel          context.CancelFunc
	parent, bounded context.Context
}

func (r boundRow) Scan(dest ...any) error {
	defer r.cancel()
	return classify(r.row.Scan(dest...), r.parent, r.bounded)
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
	bctx, cancel := d.bound(ctx)
	defer cancel()
	err := pgx.BeginFunc(bctx, d.pool, func(tx pgx.Tx) error { return fn(querier{q: tx}) })
	return classify(err, ctx, bctx)
}

func (d *db) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (d *db) IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func (d *db) Ping(ctx context.Context) error { return classify(d.pool.Ping(ctx), ctx, nil) }

func (d *db) Close() error { d.pool.Close(); return nil }

// Dialect tells the shared store to use PostgreSQL's full-text search.
func (d *db) Dialect() sqlstore.Dialect { return sqlstore.DialectPostgres }
