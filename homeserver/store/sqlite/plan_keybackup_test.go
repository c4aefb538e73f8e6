package sqlite

import (
	"testing"

	"github.com/salonhq/salon/homeserver/store/sqlstore"
)

// TestKeyBackupQueriesUseIndexes: reading and writing a few keys of a big
// backup never scans the whole key table.
func TestKeyBackupQueriesUseIndexes(t *testing.T) {
	d := planDB(t)
	for q, args := range sqlstore.KeyBackupHotQueries() {
		noFullScan(t, d, q, args)
	}
}
