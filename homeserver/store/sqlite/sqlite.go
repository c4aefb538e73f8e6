// Package sqlite is Salon's embedded default backend: SQLite through
// modernc.org/sqlite (pure Go, no cgo) in WAL mode, with every write
// transaction going through one connection and reads on a pool beside it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the database.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "full" (default: an
	// acknowledged write survives a power cut) or "normal" (survives a crash
	// of the process, not of the machine).
	Synchronous string
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.Store, error) {
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db, migrations, "migrations"); err != nil {
		db.Close()
		return nil, err
	}
	s, err := sqlstore.Open(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

type db struct {
	writer *sql.DB // one connection: SQLite has one writer, so we queue here, not on SQLITE_BUSY
	reader *sql.DB
	// rewritten caches $N → ?N translations of query texts.
	rewritten sync.Map
	// Prepared statements of the reader pool by query text: compiling the
	// SQL was a fifth of the CPU of a messaging load (modernc's parser
	// runs for every query otherwise). database/sql prepares each
	// statement once per connection that runs it. Writes are not prepared
	// this way: preparing on the writer pool would wait for its one
	// connection, which the transaction holds.
	stmts stmtCache
}

// stmtCache holds prepared statements, at most maxStmts of them: the
// queries are fixed texts, so the bound is only a guard.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

const maxStmts = 200

// get returns the prepared statement of query (already translated), or
// nil when it cannot be prepared or the cache is full: the caller then
// runs the text.
func (c *stmtCache) get(ctx context.Context, pool *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	// Prepared without the lock: preparing waits for a connection, which
	// a caller holding one may be about to ask the cache for.
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.stmts[query]; ok {
		_ = st.Close()
		return old
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	c.stmts = nil
	return errors.Join(errs...)
}

func openDB(path string, opts Options) (*db, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("sqlite synchronous must be full or normal, not %q", opts.Synchronous)
	}
	// mmap_size: pages are read through a shared mapping instead of a
	// pread per page, which matters because every write in WAL mode makes
	// the other connections drop their page caches.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(ON)&_pragma=synchronous(" + sync + ")&_pragma=mmap_size(268435456)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(ON)")
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &db{writer: w, reader: r}, nil
}

// ownerOnly creates the database file readable by its owner only (0600)
// before SQLite opens it, and takes group and other permissions off an
// existing one and its journal files. SQLite would create it 0644, and
// gives the -wal and -shm files it creates the database file's mode.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&0o700); err != nil {
				return fmt.Errorf("make %s private: %w", p, err)
			}
		}
	}
	return nil
}

// q translates $N placeholders to SQLite's ?N.
func (d *db) q(query string) string {
	if v, ok := d.rewritten.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(query))
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '$' && i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
			c = '?'
		}
		b.WriteByte(c)
	}
	s := b.String()
	d.rewritten.Store(query, s)
	return s
}

// querier runs statements on the reader pool (tx nil) or in a write
// transaction, prepared when it can.
type querier struct {
	d  *db
	tx *sql.Tx
}

// stmt returns the prepared form of a read outside a transaction, or nil.
// A multi-statement text is never prepared: only its first statement
// would run.
func (q querier) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.tx != nil || strings.Contains(query, ";") {
		return nil
	}
	return q.d.stmts.get(ctx, q.d.reader, query)
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if q.tx != nil {
		res, err = q.tx.ExecContext(ctx, q.d.q(query), args...)
	} else {
		res, err = q.d.writer.ExecContext(ctx, q.d.q(query), args...)
	}
	if err != nil {
		return 0, classify(err)
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	query = q.d.q(query)
	var rows *sql.Rows
	var err error
	if st := q.stmt(ctx, query); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else if q.tx != nil {
		rows, err = q.tx.QueryContext(ctx, query, args...)
	} else {
		rows, err = q.d.reader.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, classify(err)
	}
	return sqlRows{rows}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	query = q.d.q(query)
	if st := q.stmt(ctx, query); st != nil {
		return sqlRow{st.QueryRowContext(ctx, args...)}
	}
	if q.tx != nil {
		return sqlRow{q.tx.QueryRowContext(ctx, query, args...)}
	}
	return sqlRow{q.d.reader.QueryRowContext(ctx, query, args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close()                 { _ = r.Rows.Close() }
func (r sqlRows) Err() error             { return classify(r.Rows.Err()) }
func (r sqlRows) Scan(dest ...any) error { return classify(r.Rows.Scan(dest...)) }

type sqlRow struct{ *sql.Row }

func (r sqlRow) Scan(dest ...any) error { return classify(r.Row.Scan(dest...)) }

// classify marks the errors that say the database is out of service for
// now, not that the statement was wrong: the disk is full
// (SQLITE_FULL), failing or refusing writes (SQLITE_IOERR and its
// extended codes, e.g. IOERR_WRITE on a read-only or immutable file),
// read-only (SQLITE_READONLY*), the file cannot be opened
// (SQLITE_CANTOPEN), or another process held the lock past busy_timeout
// (SQLITE_BUSY). mxerr answers those 503 with Retry-After. A file
// system's own refusal (ENOSPC, EROFS, EPERM, EIO) is marked too.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
			return store.Unavailable(err)
		}
		return err
	}
	return store.FileUnavailable(err)
}

// Exec outside a transaction runs on the writer.
func (d *db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return querier{d: d}.Exec(ctx, query, args...)
}

func (d *db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return querier{d: d}.Query(ctx, query, args...)
}

func (d *db) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return querier{d: d}.QueryRow(ctx, query, args...)
}

func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(querier{d: d, tx: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return classify(tx.Commit())
}

func (d *db) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func (d *db) IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func (d *db) Ping(ctx context.Context) error { return classify(d.reader.PingContext(ctx)) }

func (d *db) Close() error {
	return errors.Join(d.stmts.close(), d.reader.Close(), d.writer.Close())
}
