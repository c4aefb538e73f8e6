package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
)

// Statements records the statements run under a context given to
// CountStatements: how many a request costs the database, which is what
// matters when the database is across a connection pool (issue 24).
type Statements struct {
	mu    sync.Mutex
	texts []string
}

type statementsKey struct{}

// CountStatements returns ctx whose store statements (reads, writes and
// those inside transactions) are recorded in st.
func CountStatements(ctx context.Context, st *Statements) context.Context {
	return context.WithValue(ctx, statementsKey{}, st)
}

// Count is the number of statements recorded.
func (st *Statements) Count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.texts)
}

// Texts are the statements recorded, in order.
func (st *Statements) Texts() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.texts...)
}

// Reset forgets the statements recorded.
func (st *Statements) Reset() {
	st.mu.Lock()
	st.texts = nil
	st.mu.Unlock()
}

// countingDB is the DB the store uses: it counts every statement (for
// Store.StatementCount) and records it in the context's Statements.
type countingDB struct {
	DB
	n *atomic.Int64
}

func count(ctx context.Context, n *atomic.Int64, q string) {
	n.Add(1)
	if st, _ := ctx.Value(statementsKey{}).(*Statements); st != nil {
		st.mu.Lock()
		st.texts = append(st.texts, q)
		st.mu.Unlock()
	}
}

// The reads outside a transaction count as those in one do.
func (c countingDB) querier() countingQuerier { return countingQuerier{c.DB, c.n} }

func (c countingDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return c.querier().Exec(ctx, q, args...)
}

func (c countingDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	return c.querier().Query(ctx, q, args...)
}

func (c countingDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return c.querier().QueryRow(ctx, q, args...)
}

func (c countingDB) Tx(ctx context.Context, fn func(Querier) error) error {
	return c.DB.Tx(ctx, func(q Querier) error { return fn(countingQuerier{q, c.n}) })
}

type countingQuerier struct {
	Querier
	n *atomic.Int64
}

func (c countingQuerier) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	count(ctx, c.n, q)
	return c.Querier.Exec(ctx, q, args...)
}

func (c countingQuerier) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	count(ctx, c.n, q)
	return c.Querier.Query(ctx, q, args...)
}

func (c countingQuerier) QueryRow(ctx context.Context, q string, args ...any) Row {
	count(ctx, c.n, q)
	return c.Querier.QueryRow(ctx, q, args...)
}

// StatementCount is the number of statements the store has run since it
// opened (the salon_store_statements_total metric).
func (s *Store) StatementCount() int64 { return s.stmts.Load() }
