package clientapi

import (
	"context"
	"errors"
	"strings"
	gosync "sync"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/internal/mxerr"
)

// filterCacheSize and filterCacheBytes bound the parsed /sync filters
// kept; the cache is emptied when either fills (a long-polling client
// sends the same filter on every request, so it is back after one parse).
// The byte bound is what bounds memory: an inline filter is its own key,
// and a request line may be up to a megabyte, so 20,000 distinct inline
// filters alone could hold gigabytes.
const (
	filterCacheSize  = 20_000
	filterCacheBytes = 32 << 20
)

// filterCache keeps parsed /sync filters: every long-poll of a client
// carries the same filter (inline JSON or a stored filter's ID), and
// parsing it, with an SQL read for a stored one, was 5 % of the server's
// CPU when a message woke 2,000 long-polls (issue 24). A stored filter
// never changes (the API has no way to edit one), and an inline filter is
// its own key, so an entry never goes stale. A sync.Filter is never
// modified once parsed, so the copies handed out share its slices.
type filterCache struct {
	mu    gosync.Mutex
	m     map[filterKey]sync.Filter
	bytes int // the keys' and filters' JSON held, an estimate of the memory
}

// filterKey is an inline filter's JSON (user empty) or a user's stored
// filter ID.
type filterKey struct{ user, filter string }

// syncFilter returns the filter a /sync request's filter parameter names:
// inline JSON when it starts with '{', otherwise the ID of one of the
// user's stored filters.
func (c *filterCache) syncFilter(ctx context.Context, st filterStore, userID, param string) (sync.Filter, error) {
	inline := strings.HasPrefix(strings.TrimSpace(param), "{")
	key := filterKey{filter: param}
	if !inline {
		key.user = userID
	}
	c.mu.Lock()
	f, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	raw, parse := []byte(param), sync.ParseFilter
	if !inline {
		stored, err := st.Filter(ctx, userID, param)
		if errors.Is(err, store.ErrNotFound) {
			return sync.Filter{}, mxerr.NotFoundf("Unknown filter")
		}
		if err != nil {
			return sync.Filter{}, err
		}
		// Checked when it was stored, by the rules of that time.
		raw, parse = stored, sync.ParseStoredFilter
	}
	f, err := parse(raw)
	if err != nil {
		return sync.Filter{}, err // not kept: a bad filter is answered anew
	}
	cost := len(key.user) + len(key.filter) + len(raw)
	if cost > filterCacheBytes/16 {
		return f, nil // too large to keep: it would empty the cache
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= filterCacheSize || c.bytes+cost > filterCacheBytes {
		c.m, c.bytes = make(map[filterKey]sync.Filter), 0
	}
	if _, ok := c.m[key]; !ok {
		c.bytes += cost
	}
	c.m[key] = f
	c.mu.Unlock()
	return f, nil
}

// filterStore reads stored filters.
type filterStore interface {
	Filter(ctx context.Context, userID, filterID string) ([]byte, error)
}
