package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// TestHotQueriesUseIndexes: no query on the send or sync path scans a
// whole table. (TxnEvent once did, on every send: a partial index that the
// query's WHERE did not imply.)
func TestHotQueriesUseIndexes(t *testing.T) {
	d := planDB(t)
	for q, args := range sqlstore.HotQueries() {
		plan := noFullScan(t, d, q, args)
		// Sliding sync's bump positions read the partial index of
		// message-like events, not every event of the rooms.
		if strings.Contains(q, "MAX(stream_pos) FROM events WHERE room_id IN") && !strings.Contains(strings.Join(plan, " "), "events_bump") {
			t.Errorf("bump positions do not use events_bump: %v", plan)
		}
	}
}

// planDB is a migrated, empty database for query-plan tests.
func planDB(t *testing.T) *db {
	t.Helper()
	d, err := openDB(filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := sqlstore.Migrate(context.Background(), d, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	return d
}

// noFullScan reports every step of q's plan that scans a whole table
// (a SCAN without an index) and returns the plan's steps.
func noFullScan(t *testing.T, d *db, q string, args []any) []string {
	t.Helper()
	rows, err := d.Query(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, p := range plan {
		if strings.HasPrefix(p, "SCAN ") && !strings.Contains(p, "USING") {
			t.Errorf("full scan %q in plan of\n%s\n%v", p, q, plan)
		}
	}
	return plan
}
