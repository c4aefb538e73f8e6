package clientapi

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/store"
)

// countingFilters is a filter store that counts its reads.
type countingFilters struct {
	reads   int
	filters map[[2]string][]byte
}

func (c *countingFilters) Filter(_ context.Context, userID, id string) ([]byte, error) {
	c.reads++
	b, ok := c.filters[[2]string{userID, id}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

// TestFilterCacheReadsOnce: a stored filter is read and parsed once per
// user and ID, another user's filter of the same ID is their own, and an
// unknown ID or a bad inline filter is refused every time, never kept.
func TestFilterCacheReadsOnce(t *testing.T) {
	ctx := context.Background()
	st := &countingFilters{filters: map[[2]string][]byte{
		{"@a:hs", "0"}: []byte(`{"room":{"timeline":{"limit":1}}}`),
		{"@b:hs", "0"}: []byte(`{"room":{"timeline":{"limit":3}}}`),
	}}
	var c filterCache
	for range 3 {
		fa, err := c.syncFilter(ctx, st, "@a:hs", "0")
		if err != nil || *fa.Room.Timeline.Limit != 1 {
			t.Fatalf("a's filter: %+v, %v", fa.Room.Timeline, err)
		}
		fb, err := c.syncFilter(ctx, st, "@b:hs", "0")
		if err != nil || *fb.Room.Timeline.Limit != 3 {
			t.Fatalf("b's filter: %+v, %v", fb.Room.Timeline, err)
		}
		fi, err := c.syncFilter(ctx, st, "@a:hs", ` {"room":{"state":{"lazy_load_members":true}}}`)
		if err != nil || !fi.Room.State.LazyLoadMembers {
			t.Fatalf("inline filter: %+v, %v", fi.Room.State, err)
		}
		if _, err := c.syncFilter(ctx, st, "@a:hs", "7"); err == nil {
			t.Fatal("an unknown filter ID was accepted")
		}
		if _, err := c.syncFilter(ctx, st, "@a:hs", `{"room":`); err == nil {
			t.Fatal("a malformed inline filter was accepted")
		}
	}
	// a's and b's filters once each, the unknown ID every time.
	if st.reads != 2+3 {
		t.Fatalf("%d store reads, want 5", st.reads)
	}
}

// TestFilterCacheBytesBounded: distinct large inline filters (each its own
// key) never make the cache hold more than filterCacheBytes, and a filter
// too large to keep is still answered.
func TestFilterCacheBytesBounded(t *testing.T) {
	ctx := context.Background()
	var c filterCache
	pad := strings.Repeat(" ", filterCacheBytes/40) // each costs about 1/20 of the bound
	for i := range 24 {
		f, err := c.syncFilter(ctx, nil, "@a:hs", `{"room":{"timeline":{"limit":`+strconv.Itoa(i+1)+`}}}`+pad)
		if err != nil || *f.Room.Timeline.Limit != i+1 {
			t.Fatalf("filter %d: %+v, %v", i, f.Room.Timeline, err)
		}
		if c.bytes > filterCacheBytes {
			t.Fatalf("after %d large filters: %d bytes held, bound %d", i+1, c.bytes, filterCacheBytes)
		}
	}
	if len(c.m) == 0 || len(c.m) >= 20 {
		t.Fatalf("%d filters held", len(c.m))
	}
	huge := `{"room":{"timeline":{"limit":3}}}` + strings.Repeat(" ", filterCacheBytes/16)
	held := len(c.m)
	if f, err := c.syncFilter(ctx, nil, "@a:hs", huge); err != nil || *f.Room.Timeline.Limit != 3 {
		t.Fatalf("huge filter: %+v, %v", f.Room.Timeline, err)
	}
	if len(c.m) != held {
		t.Fatalf("a filter over filterCacheBytes/16 was kept: %d held, was %d", len(c.m), held)
	}
}

// TestSyncFilterCachedOverHTTP: /sync applies a stored filter and an
// inline one the same way on every request (served from the cache after
// the first), each user's stored filter IDs naming their own filters.
func TestSyncFilterCachedOverHTTP(t *testing.T) {
	ts := newTestServer(t)
	room := ts.createRoom(ts.alice, `{"preset":"public_chat"}`)
	ts.must(ts.v3(ts.bob, "POST", "/join/"+room, `{}`))
	for i, body := range []string{"one", "two", "three", "four"} {
		ts.send(ts.alice, room, "t"+string(rune('0'+i)), `{"msgtype":"m.text","body":"`+body+`"}`)
	}
	idA := ts.must(ts.v3(ts.alice, "POST", "/user/@alice:hs/filter", `{"room":{"timeline":{"limit":1}}}`)).str("filter_id")
	idB := ts.must(ts.v3(ts.bob, "POST", "/user/@bob:hs/filter", `{"room":{"timeline":{"limit":3}}}`)).str("filter_id")
	timeline := func(u user, filter string) int {
		a := ts.must(ts.v3(u, "GET", "/sync?timeout=0&filter="+url.QueryEscape(filter), ""))
		rooms, _ := a.body["rooms"].(map[string]any)
		join, _ := rooms["join"].(map[string]any)
		r, _ := join[room].(map[string]any)
		tl, _ := r["timeline"].(map[string]any)
		evs, _ := tl["events"].([]any)
		return len(evs)
	}
	for range 2 {
		if n := timeline(ts.alice, idA); n != 1 {
			t.Fatalf("alice's stored filter (limit 1): %d timeline events", n)
		}
		if n := timeline(ts.bob, idB); n != 3 {
			t.Fatalf("bob's stored filter (limit 3): %d timeline events", n)
		}
		if n := timeline(ts.bob, `{"room":{"timeline":{"limit":2}}}`); n != 2 {
			t.Fatalf("inline filter (limit 2): %d timeline events", n)
		}
		ts.check(t, ts.v3(ts.alice, "GET", "/sync?timeout=0&filter="+url.QueryEscape(`{"room":`), ""), expectation{400, "M_BAD_JSON", ""})
	}
	if idA == idB {
		// Filter IDs are per user: the same ID names each one's own.
		if n := timeline(ts.alice, idB); n != 1 {
			t.Fatalf("alice with the ID bob also has: %d events, want her own filter's 1", n)
		}
	}
}

// BenchmarkSyncFilter: a long-poll's filter parameter as every request
// used to parse it (and, for a stored filter, read it) against the cache.
func BenchmarkSyncFilter(b *testing.B) {
	ctx := context.Background()
	const lazy = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}`
	st := &countingFilters{filters: map[[2]string][]byte{{"@a:hs", "0"}: []byte(lazy)}}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := (&filterCache{}).syncFilter(ctx, st, "@a:hs", lazy); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var c filterCache
		for b.Loop() {
			if _, err := c.syncFilter(ctx, st, "@a:hs", lazy); err != nil {
				b.Fatal(err)
			}
		}
	})
}
