package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// TestKeyBackupQueriesUseIndexes: reading and writing a few keys of a big
// backup never scans the whole key table.
func TestKeyBackupQueriesUseIndexes(t *testing.T) {
	d, err := openDB(filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := sqlstore.Migrate(ctx, d, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	for q, args := range sqlstore.KeyBackupHotQueries() {
		rows, err := d.Query(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN ") && !strings.Contains(p, "USING") {
				t.Errorf("full scan %q in plan of\n%s\n%v", p, q, plan)
			}
		}
	}
}
