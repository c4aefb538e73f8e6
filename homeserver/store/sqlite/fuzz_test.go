package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
)

// FuzzSearchQuery: whatever a user types as a search term reaches SQLite's
// full-text index as words only (rooms.SearchTerms), and even raw terms
// with FTS5 syntax in them (quotes, *, NEAR, column filters, parentheses)
// are quoted by the store: the query runs, it is never an SQL or FTS error.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{"bonjour", `"`, `a" OR "b`, "NEAR(a b)", "body:x", "{body}: x", "(", "*", "-a", "a AND", "é́", "日本語", `\`, "''"} {
		f.Add(s, true)
	}
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(f.TempDir(), "s.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	f.Fuzz(func(t *testing.T, text string, raw bool) {
		terms := rooms.SearchTerms(text)
		for _, w := range terms {
			if strings.ContainsAny(w, `"*():{}'\ `) {
				t.Fatalf("term %q from %q", w, text)
			}
		}
		if raw {
			terms = append(terms, text)
		}
		if len(terms) == 0 {
			return
		}
		if _, err := st.SearchEvents(ctx, store.SearchQuery{RoomIDs: []string{"!a:x"}, Terms: terms, Limit: 10}); err != nil {
			t.Fatalf("terms %q: %v", terms, err)
		}
	})
}
