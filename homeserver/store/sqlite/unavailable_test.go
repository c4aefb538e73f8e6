package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// TestUnavailableErrors makes SQLite fail for real in the ways that mean
// "out of service for now" and checks each is marked Unavailable (mxerr's
// 503), while a wrong statement or a duplicate key is not.
func TestUnavailableErrors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "salon.db")
	d, err := openDB(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `INSERT INTO t (k, v) VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}

	t.Run("not unavailable", func(t *testing.T) {
		_, err := d.Exec(ctx, `INSERT INTO t (k, v) VALUES (1, 'again')`)
		if err == nil || store.IsUnavailable(err) || !d.IsUniqueViolation(err) {
			t.Errorf("duplicate key: %v (unavailable %v)", err, store.IsUnavailable(err))
		}
		_, err = d.Exec(ctx, `INSERT INTO nowhere VALUES (1)`)
		if err == nil || store.IsUnavailable(err) {
			t.Errorf("missing table: %v", err)
		}
		var v string
		err = d.QueryRow(ctx, `SELECT v FROM t WHERE k = 99`).Scan(&v)
		if !d.IsNoRows(err) || store.IsUnavailable(err) {
			t.Errorf("no rows: %v", err)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		rd := &db{writer: ro, reader: ro}
		_, err = rd.Exec(ctx, `INSERT INTO t (k, v) VALUES (2, 'two')`)
		wantUnavailable(t, "Exec", err, "readonly")
		err = rd.Tx(ctx, func(q sqlstore.Querier) error {
			var k int64
			return q.QueryRow(ctx, `INSERT INTO t (k, v) VALUES (3, 'three') RETURNING k`).Scan(&k)
		})
		wantUnavailable(t, "Tx with QueryRow.Scan", err, "readonly")
		// Reads go on.
		var v string
		if err := rd.QueryRow(ctx, `SELECT v FROM t WHERE k = 1`).Scan(&v); err != nil || v != "one" {
			t.Errorf("read on a read-only database: %q %v", v, err)
		}
	})

	t.Run("cannot open", func(t *testing.T) {
		gone, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "no", "such.db")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer gone.Close()
		gd := &db{writer: gone, reader: gone}
		wantUnavailable(t, "Ping", gd.Ping(ctx), "unable to open")
		_, err = gd.Query(ctx, `SELECT 1`)
		wantUnavailable(t, "Query", err, "unable to open")
	})

	t.Run("busy past the timeout", func(t *testing.T) {
		other, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		conn, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, `ROLLBACK`) //nolint:errcheck
		// The writer is one connection: the pragma stays with it.
		if _, err := d.writer.ExecContext(ctx, `PRAGMA busy_timeout = 50`); err != nil {
			t.Fatal(err)
		}
		defer d.writer.ExecContext(ctx, `PRAGMA busy_timeout = 10000`) //nolint:errcheck
		start := time.Now()
		_, err = d.Exec(ctx, `INSERT INTO t (k, v) VALUES (4, 'four')`)
		wantUnavailable(t, "Exec while locked", err, "locked")
		if time.Since(start) < 40*time.Millisecond {
			t.Errorf("busy answered after %v, before its timeout", time.Since(start))
		}
		err = d.Tx(ctx, func(q sqlstore.Querier) error { return nil })
		wantUnavailable(t, "Tx while locked", err, "locked")
	})

	t.Run("full", func(t *testing.T) {
		var pages int64
		if err := d.writer.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if _, err := d.writer.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("x", 64<<10)
		err := d.Tx(ctx, func(q sqlstore.Querier) error {
			for i := 10; i < 100; i++ {
				if _, err := q.Exec(ctx, `INSERT INTO t (k, v) VALUES ($1, $2)`, i, big); err != nil {
					return err
				}
			}
			return nil
		})
		wantUnavailable(t, "Exec on a full database", err, "full")
	})
}

func wantUnavailable(t *testing.T, what string, err error, text string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	var u interface{ Unavailable() bool }
	if !errors.As(err, &u) || !u.Unavailable() {
		t.Errorf("%s: %v (%T) not marked unavailable", what, err, err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("%s: %v, want an error about %q", what, err, text)
	}
}
