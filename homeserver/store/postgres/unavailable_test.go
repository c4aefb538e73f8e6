package postgres

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

func isUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// testDB connects to the test database with one connection, or skips.
func testDB(t *testing.T, timeout time.Duration) *db {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(storetest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if storetest.MustReachPostgres() {
			t.Fatalf("PostgreSQL unreachable and CI=true: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	t.Cleanup(pool.Close)
	return &db{pool: pool, timeout: timeout}
}

// TestUnavailableErrors makes PostgreSQL fail for real in the ways that
// mean "out of service for now" and checks each is marked Unavailable
// (mxerr's 503), while a wrong statement, a duplicate key or the
// caller's own cancellation is not.
func TestUnavailableErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		pool, err := pgxpool.New(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		d := &db{pool: pool, timeout: 5 * time.Second}
		_, err = d.Exec(ctx, `SELECT 1`)
		if !isUnavailable(err) {
			t.Errorf("Exec: %v (%T) not unavailable", err, err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT 1`).Scan(&n); !isUnavailable(err) {
			t.Errorf("QueryRow.Scan: %v not unavailable", err)
		}
		if _, err := d.Query(ctx, `SELECT 1`); !isUnavailable(err) {
			t.Errorf("Query: %v not unavailable", err)
		}
		if err := d.Tx(ctx, func(sqlstore.Querier) error { return nil }); !isUnavailable(err) {
			t.Errorf("Tx: %v not unavailable", err)
		}
		if err := d.Ping(ctx); !isUnavailable(err) {
			t.Errorf("Ping: %v not unavailable", err)
		}
	})

	t.Run("query timeout", func(t *testing.T) {
		d := testDB(t, 300*time.Millisecond)
		start := time.Now()
		_, err := d.Exec(ctx, `SELECT pg_sleep(2)`)
		if !isUnavailable(err) {
			t.Errorf("Exec past the query timeout: %v not unavailable", err)
		}
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Errorf("the timeout took %v", el)
		}
		err = d.Tx(ctx, func(q sqlstore.Querier) error {
			_, err := q.Exec(ctx, `SELECT pg_sleep(2)`)
			return err
		})
		if !isUnavailable(err) {
			t.Errorf("Tx past the query timeout: %v not unavailable", err)
		}
		// Rows that stop coming part way: Rows.Err.
		rows, err := d.Query(ctx, `SELECT g, pg_sleep(CASE WHEN g = 3 THEN 2 ELSE 0 END) FROM generate_series(1, 5) g`)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if !isUnavailable(err) {
			t.Errorf("rows past the query timeout: %v not unavailable", err)
		}
	})

	t.Run("the caller's own deadline and cancellation", func(t *testing.T) {
		d := testDB(t, 5*time.Second)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := d.Exec(cctx, `SELECT pg_sleep(3)`)
		if err == nil || isUnavailable(err) {
			t.Errorf("caller's deadline: %v, want an error not marked unavailable", err)
		}
		cctx, cancel = context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		var n int
		err = d.QueryRow(cctx, `SELECT 1 FROM pg_sleep(3)`).Scan(&n)
		if err == nil || isUnavailable(err) {
			t.Errorf("caller cancelled: %v, want an error not marked unavailable", err)
		}
	})

	t.Run("connection terminated by the server", func(t *testing.T) {
		d := testDB(t, 5*time.Second)
		var pid int
		if err := d.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		other := testDB(t, 5*time.Second)
		if _, err := other.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		var n int
		err := d.QueryRow(ctx, `SELECT 1`).Scan(&n)
		if !isUnavailable(err) {
			t.Errorf("on a terminated connection: %v (%T) not unavailable", err, err)
		}
		t.Logf("terminated connection: %v", err)
	})

	t.Run("not unavailable", func(t *testing.T) {
		d := testDB(t, 5*time.Second)
		_, err := d.Exec(ctx, `SELECT * FROM no_such_table_here`)
		if err == nil || isUnavailable(err) {
			t.Errorf("missing table: %v", err)
		}
		err = d.Tx(ctx, func(q sqlstore.Querier) error {
			if _, err := q.Exec(ctx, `CREATE TEMP TABLE u (k INT PRIMARY KEY)`); err != nil {
				return err
			}
			_, err := q.Exec(ctx, `INSERT INTO u VALUES (1), (1)`)
			return err
		})
		if !d.IsUniqueViolation(err) || isUnavailable(err) {
			t.Errorf("duplicate key: %v", err)
		}
		var n int
		err = d.QueryRow(ctx, `SELECT 1 WHERE false`).Scan(&n)
		if !d.IsNoRows(err) || isUnavailable(err) {
			t.Errorf("no rows: %v", err)
		}
		// A statement's error read from Rows.Err after Close (which ends
		// the query bound).
		rows, err := d.Query(ctx, `SELECT 1 / (g - 3) FROM generate_series(1, 5) g`)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
			err = rows.Err()
		}
		if err == nil || isUnavailable(err) {
			t.Errorf("division by zero read after Close: %v", err)
		}
	})
}

// TestClassifySQLState covers the server's own answers that cannot be
// caused on a shared test server (a full disk, a shutdown).
func TestClassifySQLState(t *testing.T) {
	ctx := context.Background()
	for code, want := range map[string]bool{
		"08006": true,  // connection_failure
		"08001": true,  // sqlclient_unable_to_establish_sqlconnection
		"53100": true,  // disk_full
		"53200": true,  // out_of_memory
		"53300": true,  // too_many_connections
		"57P01": true,  // admin_shutdown
		"57P02": true,  // crash_shutdown
		"57P03": true,  // cannot_connect_now
		"57014": false, // query_canceled (the caller's)
		"23505": false, // unique_violation
		"42P01": false, // undefined_table
		"22021": false, // character_not_in_repertoire
	} {
		err := classify(&pgconn.PgError{Code: code, Message: "m"}, ctx, ctx)
		if got := isUnavailable(err); got != want {
			t.Errorf("SQLSTATE %s: unavailable %v, want %v", code, got, want)
		}
		if want && !strings.Contains(err.Error(), "storage unavailable") {
			t.Errorf("SQLSTATE %s: %v", code, err)
		}
		if want && !store.IsUnavailable(err) {
			t.Errorf("SQLSTATE %s: not a store.UnavailableError", code)
		}
	}
}
