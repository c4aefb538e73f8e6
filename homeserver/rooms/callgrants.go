package rooms

import (
	"context"
	"sync"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// CallGrantsListener hears that what a room's members may do in its call
// may have changed: a commit changed the room's power levels, its teaching
// mode (CallTeachingEventType) or took someone out of the room. It gets only the
// room ID and asks CallPermissions again for the participants it has.
//
// It is called from Service.Run's goroutine, never under a room's lock nor
// on the path of the request that made the change; changes to one room
// that arrive while the listener is busy are delivered once.
type CallGrantsListener interface {
	CallGrantsChanged(ctx context.Context, roomID string)
}

// changesCallGrants reports whether storing batch (already applied to r's
// state) can change CallPermissions of the room's members.
func changesCallGrants(r *room, batch *store.EventBatch) bool {
	for _, e := range batch.Events {
		if e.StateKey == nil {
			continue
		}
		switch e.Type {
		case "m.room.member":
			// Only someone leaving (left, kicked, banned) changes a grant
			// in the call: a join or a profile change does not, since
			// everyone in the call is joined already.
			if ev := r.state[events.StateTuple{Type: e.Type, StateKey: *e.StateKey}]; ev == nil || ev.Membership() != "join" {
				return true
			}
		case "m.room.power_levels":
			return true
		case CallTeachingEventType:
			if *e.StateKey == "" {
				return true
			}
		}
	}
	// A redaction of the current power levels or teaching mode empties
	// them. (Redacting a membership keeps "membership": no change.)
	for _, red := range batch.Redactions {
		for _, t := range []events.StateTuple{{Type: "m.room.power_levels"}, {Type: CallTeachingEventType}} {
			if ev := r.state[t]; ev != nil && ev.ID == red.EventID {
				return true
			}
		}
	}
	return false
}

// grantQueue holds the rooms whose call grants changed until Run hands
// them to the listener: a set, so a burst of changes to one room (a mass
// invite, a power-level edit per user) is one delivery.
type grantQueue struct {
	mu      sync.Mutex
	pending map[string]struct{}
	order   []string
	wake    chan struct{}
}

func newGrantQueue() *grantQueue {
	return &grantQueue{pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// add queues roomID without blocking.
func (q *grantQueue) add(roomID string) {
	q.mu.Lock()
	if _, ok := q.pending[roomID]; !ok {
		q.pending[roomID] = struct{}{}
		q.order = append(q.order, roomID)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the queued rooms in arrival order and empties the queue.
func (q *grantQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.order
	q.order = nil
	clear(q.pending)
	return out
}

// Run delivers call-grant changes to Params.CallGrants until ctx ends,
// then returns (after the delivery in progress, if any). Without a
// listener it returns at once.
func (s *Service) Run(ctx context.Context) error {
	if s.p.CallGrants == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.grants.wake:
		}
		for _, roomID := range s.grants.take() {
			if ctx.Err() != nil {
				return nil
			}
			s.p.CallGrants.CallGrantsChanged(ctx, roomID)
		}
	}
}
