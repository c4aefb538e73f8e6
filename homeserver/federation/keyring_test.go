package federation

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

type countingStore struct {
	store.Store
	reads atomic.Int32
}

func (c *countingStore) RemoteServerKeys(ctx context.Context, server string) ([]store.ServerKey, error) {
	c.reads.Add(1)
	return c.Store.RemoteServerKeys(ctx, server)
}

// TestKeyringReadsStoreOncePerServer: a server's stored keys are read
// once; later lookups, a key the store lacks included, are answered from
// memory.
func TestKeyringReadsStoreOncePerServer(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: openStore(t)}
	now := time.Now()
	pub := newKey(t).Public()
	if err := st.PutRemoteServerKeys(ctx, []store.ServerKey{{ServerName: "r.example", KeyID: "ed25519:a",
		Public: pub, ValidUntilTS: now.Add(time.Hour).UnixMilli(), FetchedTS: now.UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
	k := &Keyring{self: "me.example", store: st, now: time.Now, log: slog.New(slog.DiscardHandler),
		// r.example cannot be fetched from: no network here.
		misses: map[string]time.Time{"r.example": now.Add(time.Hour)}}
	for i := 0; i < 3; i++ {
		got, err := k.VerifyKey(ctx, "r.example", "ed25519:a", now.UnixMilli())
		if err != nil || string(got) != string(pub) {
			t.Fatalf("lookup %d: %x %v", i, got, err)
		}
		if _, err := k.VerifyKey(ctx, "r.example", "ed25519:other", now.UnixMilli()); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("store read %d times, want 1", n)
	}
}
