package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// countingStore counts the token look-ups auth makes.
type countingStore struct {
	store.Store
	one, many, queries atomic.Int64
}

func (c *countingStore) DeviceByToken(ctx context.Context, h []byte) (store.Device, error) {
	c.one.Add(1)
	return c.Store.DeviceByToken(ctx, h)
}

func (c *countingStore) DevicesByTokens(ctx context.Context, hs [][]byte) ([]store.Device, error) {
	c.many.Add(1)
	c.queries.Add(int64(len(hs)+199) / 200) // one SQL query per IN list of 200
	return c.Store.DevicesByTokens(ctx, hs)
}

// openStore opens a new SQLite store, closed when the test ends.
func openStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func newCacheTest(t *testing.T) (*Service, *countingStore, *time.Time, []redact.Secret) {
	t.Helper()
	ctx := context.Background()
	cs := &countingStore{Store: openStore(t)}
	now := new(time.Time)
	*now = time.Unix(2_000_000_000, 0)
	s := New(Params{Store: cs, ServerName: "t", Now: func() time.Time { return *now }})
	var toks []redact.Secret
	for _, dev := range []string{"A", "B", "C"} {
		sess, err := s.NewSession(ctx, "@u:t", dev, "", "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, sess.AccessToken)
	}
	return s, cs, now, toks
}

func isUnknownToken(err error) bool {
	var me *mxerr.Error
	return errors.As(err, &me) && me.Code == mxerr.UnknownToken
}

// TestTokenRecheckBatched: cached tokens in use are confirmed together in
// one query instead of one query each when their answers age, a token
// revoked behind this process's back (the CLI) stops working at the next
// batched re-check, and no answer older than cacheTTL is ever used.
func TestTokenRecheckBatched(t *testing.T) {
	ctx := context.Background()
	s, cs, now, toks := newCacheTest(t)
	auth := func(tok redact.Secret) error {
		_, err := s.Authenticate(ctx, tok, "10.0.0.1")
		return err
	}
	for _, tok := range toks {
		if err := auth(tok); err != nil {
			t.Fatal(err)
		}
	}
	if cs.one.Load() != 3 || cs.many.Load() != 0 {
		t.Fatalf("first uses: %d single and %d batched look-ups, want 3 and 0", cs.one.Load(), cs.many.Load())
	}
	// Past recheckAge: the first request re-checks all three in one query.
	*now = now.Add(6 * time.Second)
	for range 3 {
		for _, tok := range toks {
			if err := auth(tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cs.one.Load() != 3 || cs.many.Load() != 1 {
		t.Fatalf("after 6 s: %d single and %d batched look-ups, want 3 and 1", cs.one.Load(), cs.many.Load())
	}
	// Another process logs device B out.
	if _, err := s.p.Store.DeleteDevices(ctx, "@u:t", []string{"B"}, ""); err != nil {
		t.Fatal(err)
	}
	// 12 s after the first check, 6 s after the batch: the answers are
	// fresh from the batch, and the next batch (due) drops B.
	*now = now.Add(6 * time.Second)
	if err := auth(toks[0]); err != nil {
		t.Fatal(err)
	}
	if cs.many.Load() != 2 {
		t.Fatalf("%d batched look-ups, want 2", cs.many.Load())
	}
	if err := auth(toks[1]); !isUnknownToken(err) {
		t.Fatalf("token revoked by another process: %v", err)
	}
	if err := auth(toks[2]); err != nil {
		t.Fatal(err)
	}
	if cs.one.Load() != 4 {
		t.Fatalf("%d single look-ups, want 4 (the revoked token's)", cs.one.Load())
	}
	// Revoked while nothing is used: after cacheTTL the answer is not
	// used, batch or no batch.
	if _, err := s.p.Store.DeleteDevices(ctx, "@u:t", []string{"C"}, ""); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(cacheTTL)
	s.mu.Lock()
	s.nextRecheck = now.Add(time.Hour) // as if a batch had just run
	s.mu.Unlock()
	if err := auth(toks[2]); !isUnknownToken(err) {
		t.Fatalf("revoked token after cacheTTL: %v", err)
	}
	// A logout here takes effect at once.
	dev, err := s.Authenticate(ctx, toks[0], "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevices(ctx, dev.UserID, []string{dev.DeviceID}, ""); err != nil {
		t.Fatal(err)
	}
	if err := auth(toks[0]); !isUnknownToken(err) {
		t.Fatalf("token logged out here: %v", err)
	}
}

// TestTokenLastSeen: a cached token still records its device's last use
// every lastSeenEvery, and a new address at once unless the last record
// is younger than cacheTTL.
func TestTokenLastSeen(t *testing.T) {
	ctx := context.Background()
	s, _, now, toks := newCacheTest(t)
	seen := func() store.Device {
		t.Helper()
		d, err := s.p.Store.Device(ctx, "@u:t", "A")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	start := now.UnixMilli()
	if _, err := s.Authenticate(ctx, toks[0], "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(20 * time.Second)
	if _, err := s.Authenticate(ctx, toks[0], "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if d := seen(); d.LastSeenIP != "10.0.0.2" || d.LastSeenTS != now.UnixMilli() {
		t.Fatalf("after a new address: %s at %d, want 10.0.0.2 at %d", d.LastSeenIP, d.LastSeenTS-start, now.UnixMilli()-start)
	}
	*now = now.Add(time.Second)
	if _, err := s.Authenticate(ctx, toks[0], "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if d := seen(); d.LastSeenIP != "10.0.0.2" {
		t.Fatalf("address flip within cacheTTL recorded: %s", d.LastSeenIP)
	}
	for range 40 {
		*now = now.Add(4 * time.Second)
		if _, err := s.Authenticate(ctx, toks[0], "10.0.0.2"); err != nil {
			t.Fatal(err)
		}
	}
	if d := seen(); now.UnixMilli()-d.LastSeenTS > lastSeenEvery.Milliseconds() {
		t.Fatalf("last seen %d ms ago after 160 s of use", now.UnixMilli()-d.LastSeenTS)
	}
}

// TestTokenCacheConcurrent: many requests authenticating at once while
// batches run and devices log out (go test -race).
func TestTokenCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var mu sync.Mutex
	now := time.Unix(2_000_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(Params{Store: st, ServerName: "t", Now: clock})
	var toks []redact.Secret
	for i := range 8 {
		sess, err := s.NewSession(ctx, "@u:t", string(rune('A'+i)), "", "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, sess.AccessToken)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if w == 0 && i%20 == 0 {
					mu.Lock()
					now = now.Add(3 * time.Second)
					mu.Unlock()
				}
				_, err := s.Authenticate(ctx, toks[w], "10.0.0.1")
				if w == 7 && i == 100 {
					_ = s.DeleteDevices(ctx, "@u:t", []string{"H"}, "")
				}
				if err != nil && !(w == 7 && i > 100 && isUnknownToken(err)) {
					t.Error(err)
					return
				}
				if w == 7 && i > 100 && err == nil {
					t.Error("logged-out token accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAuthenticateLongPolls: 2,000 devices' tokens used in turn, the
// clock advancing 1 ms a request (each token every 2 s, as long-polls in a
// busy room use them); queries/op counts the store's token look-ups.
func BenchmarkAuthenticateLongPolls(b *testing.B) {
	ctx := context.Background()
	cs := &countingStore{Store: openStore(b)}
	now := time.Unix(2_000_000_000, 0)
	s := New(Params{Store: cs, ServerName: "t", Now: func() time.Time { return now }})
	toks := make([]redact.Secret, 2000)
	for i := range toks {
		sess, err := s.NewSession(ctx, "@u:t", "D"+strconv.Itoa(i), "", "10.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = sess.AccessToken
	}
	for _, tok := range toks { // every answer cached once
		if _, err := s.Authenticate(ctx, tok, "10.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
	cs.one.Store(0)
	cs.queries.Store(0)
	i := 0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		if _, err := s.Authenticate(ctx, toks[i%len(toks)], "10.0.0.1"); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// A single look-up is two queries (the device, the access token's expiry).
	b.ReportMetric(float64(2*cs.one.Load()+cs.queries.Load())/float64(i), "queries/op")
}
