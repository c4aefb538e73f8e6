package saml

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/salonhq/salon/homeserver/store/sqlite"
)

// The replay cache accepts an assertion ID once per provider, also after a
// restart (it is in the database).
func TestReplayCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := replayCache{used: st, scope: "saml:uni"}
	exp := time.Now().Add(5 * time.Minute)
	if err := c.Consume("id-1", exp); err != nil {
		t.Fatal(err)
	}
	if err := c.Consume("id-1", exp); !errors.Is(err, crewsaml.ErrAssertionReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if err := (replayCache{used: st, scope: "saml:other"}).Consume("id-1", exp); err != nil {
		t.Fatalf("another provider: %v", err)
	}
	st.Close()
	st, err = sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := (replayCache{used: st, scope: "saml:uni"}).Consume("id-1", exp); !errors.Is(err, crewsaml.ErrAssertionReplayed) {
		t.Fatalf("replay after restart: %v", err)
	}
}
