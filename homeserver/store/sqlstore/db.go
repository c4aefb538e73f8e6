// Package sqlstore implements store.Store once, in SQL that both backends
// accept, over the small DB interface each backend provides. Backends own
// their connections, dialect quirks and migrations; the queries live here so
// that SQLite and PostgreSQL cannot drift apart.
package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Row is one result row.
type Row interface{ Scan(dest ...any) error }

// Rows is a result set; Close must be called.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements. Placeholders are written $1, $2, ...; backends
// translate them if their driver wants another form.
type Querier interface {
	Exec(ctx context.Context, q string, args ...any) (int64, error)
	Query(ctx context.Context, q string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) Row
}

// DB is what a backend gives the shared store.
type DB interface {
	// Querier reads outside a transaction. On SQLite reads may run
	// concurrently with the writer (WAL).
	Querier
	// Tx runs fn in a write transaction and commits it when fn returns nil.
	// On SQLite every write transaction goes through a single connection.
	Tx(ctx context.Context, fn func(Querier) error) error
	// IsUniqueViolation reports whether err is a unique-constraint failure.
	IsUniqueViolation(err error) bool
	// IsNoRows reports whether err says a QueryRow found nothing.
	IsNoRows(err error) bool
	Ping(ctx context.Context) error
	Close() error
}

// Migrate applies the migrations in dir of fsys (files named
// NNNN_description.sql) that the database has not seen, in order, each in
// its own transaction, recording them in schema_migrations. A database made
// by an older binary is upgraded in place; one made by a newer binary
// (a version this binary does not know) is refused.
func Migrate(ctx context.Context, db DB, fsys fs.FS, dir string) error {
	if err := db.Tx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_ts BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	type mig struct {
		version int64
		name    string
	}
	var migs []mig
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("migration %q: name must start with a number and _", e.Name())
		}
		migs = append(migs, mig{v, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })

	applied := map[int64]bool{}
	var newest int64
	rows, err := db.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
		newest = max(newest, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(migs) > 0 && newest > migs[len(migs)-1].version {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): refusing to start", newest, migs[len(migs)-1].version)
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, m.name))
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(q Querier) error {
			if _, err := q.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// Store is the shared implementation of store.Store.
type Store struct {
	db DB

	// posMu makes stream writes one writer: positions are handed out and
	// committed in order.
	posMu sync.Mutex
	pos   atomic.Int64
	// keysPos is the newest device-list change position.
	keysPos atomic.Int64
	// queued holds the devices that may have to-device messages queued,
	// so that the syncs of the others (nearly all) skip the queue reads.
	queued queuedDevices
	// memo answers the reads that follow every write from memory.
	memo *memo
	// keyCounts remembers the key counts every /sync of a device reports.
	keyCounts keyCounts
	// dialect picks the full-text search SQL.
	dialect Dialect
	// stmts counts the statements run (countingDB).
	stmts atomic.Int64
}

// Open returns a Store over db. The caller has run Migrate.
func Open(ctx context.Context, db DB) (*Store, error) {
	s := &Store{dialect: dialectOf(db)}
	s.db = countingDB{db, &s.stmts}
	if err := s.loadPos(ctx); err != nil {
		return nil, err
	}
	if err := s.loadKeysPos(ctx); err != nil {
		return nil, err
	}
	if err := s.loadQueued(ctx); err != nil {
		return nil, err
	}
	s.memo = newMemo(s.pos.Load())
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// notFound maps a backend's no-rows error to store.ErrNotFound.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case s.db.IsNoRows(err):
		return errNotFound
	case s.db.IsUniqueViolation(err):
		return errExists
	}
	return err
}
