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

// filterCacheSize bounds the parsed /sync filters kept; the cache is
// emptied when it fills (a long-polling client sends the same filter on
// every request, so it is back after one parse).
const filterCacheSize = 20_000

// filterCache keeps parsed /sync filters: every long-poll of a client
// carries the same filter (inline JSON or a stored filter's ID), and
// parsing it, with an SQL read for a stored one, was 5 % of the server's
// CPU when a message woke 2,000 long-polls (issue 24). A stored filter
// never changes (the API has no way to edit one), and an inline filter is
// its own key, so an entry never goes stale. A sync.Filter is never
// modified once parsed, so the copies handed out share its slices.
type filterCache struct {
	mu gosync.Mutex
	m  map[filterKey]sync.Filter
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
	c.mu.Lock()
	if c.m == nil || len(c.m) >= filterCacheSize {
		c.m = make(map[filterKey]sync.Filter)
	}
	c.m[key] = f
	c.mu.Unlock()
	return f, nil
}

// filterStore reads stored filters.
type filterStore interface {
	Filter(ctx context.Context, userID, filterID string) ([]byte, error)
}
