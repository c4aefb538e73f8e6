package rooms

import (
	"context"
	"errors"
	"sync"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/stateres"
	"github.com/salonhq/salon/homeserver/store"
)

// The state after each timeline event comes from the store's snapshots
// (store.EventState): exact across the branches of a room shared with
// other servers, where the timeline's order is not the DAG's. Snapshots
// never change once written, so the materialised ones are cached.

// snapshotCacheTuples bounds the tuples the cache holds, in all.
const snapshotCacheTuples = 200_000

type snapshotCache struct {
	mu     sync.Mutex
	sets   map[int64]stateres.StateSet
	order  []int64 // oldest first
	tuples int
}

func (c *snapshotCache) get(id int64) (stateres.StateSet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, ok := c.sets[id]
	return set, ok
}

func (c *snapshotCache) put(id int64, set stateres.StateSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[int64]stateres.StateSet{}
	}
	if _, ok := c.sets[id]; ok || len(set) > snapshotCacheTuples {
		return
	}
	for c.tuples+len(set) > snapshotCacheTuples && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.tuples -= len(c.sets[old])
		delete(c.sets, old)
	}
	c.sets[id] = set
	c.order = append(c.order, id)
	c.tuples += len(set)
}

// snapshot returns a stored state by its ID. The set is shared: callers
// must not change it.
func (s *Service) snapshot(ctx context.Context, id int64) (stateres.StateSet, error) {
	if set, ok := s.snaps.get(id); ok {
		return set, nil
	}
	refs, err := s.p.Store.Snapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	set := make(stateres.StateSet, len(refs))
	for _, r := range refs {
		set[events.StateTuple{Type: r.Type, StateKey: r.StateKey}] = r.EventID
	}
	s.snaps.put(id, set)
	return set, nil
}

// eventState is the state before or after a timeline event (after: the
// event included when it is state) and the snapshot's ID; ok is false for
// an event with no snapshot (stored before they were kept).
func (s *Service) eventState(ctx context.Context, eventID string, after bool) (set stateres.StateSet, id int64, ok bool, err error) {
	st, err := s.p.Store.EventState(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	id = st.Before
	if after {
		id = st.After
	}
	set, err = s.snapshot(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, false, nil
	}
	return set, id, err == nil, err
}

// specFrom is the store's description of state: the changes from base
// (a snapshot whose state is baseSet), or the whole of state.
func specFrom(base int64, baseSet, state stateres.StateSet) *store.StateSpec {
	if base == 0 {
		spec := &store.StateSpec{Delta: make([]store.StateRef, 0, len(state))}
		for t, id := range state {
			spec.Delta = append(spec.Delta, store.StateRef{Type: t.Type, StateKey: t.StateKey, EventID: id})
		}
		return spec
	}
	spec := &store.StateSpec{Base: base}
	for t, id := range state {
		if baseSet[t] != id {
			spec.Delta = append(spec.Delta, store.StateRef{Type: t.Type, StateKey: t.StateKey, EventID: id})
		}
	}
	for t := range baseSet {
		if _, ok := state[t]; !ok {
			spec.Delta = append(spec.Delta, store.StateRef{Type: t.Type, StateKey: t.StateKey})
		}
	}
	return spec
}
