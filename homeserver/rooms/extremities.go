package rooms

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
)

// maxPrevEvents bounds the prev_events of a new local event (the spec's
// limit on prev_events is 20).
const maxPrevEvents = 20

// loadExtremities reads a room's forward extremities; a room that has
// none recorded (created before they were kept) has its newest event.
func (s *Service) loadExtremities(ctx context.Context, roomID string, v events.RoomVersion) ([]*events.Event, error) {
	ids, err := s.p.Store.Extremities(ctx, roomID)
	if err != nil {
		return nil, err
	}
	var out []*events.Event
	for _, id := range ids {
		row, err := s.p.Store.Event(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev, err := events.Parse(v, row.JSON)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if len(out) > 0 {
		return out, nil
	}
	lastRow, err := s.p.Store.LastEvent(ctx, roomID)
	if err != nil {
		return nil, err
	}
	last, err := events.Parse(v, lastRow.JSON)
	if err != nil {
		return nil, err
	}
	return []*events.Event{last}, nil
}

// prevEvents are the events a new event of r cites: its extremities,
// deepest first, at most maxPrevEvents.
func (r *room) prevEvents() []*events.Event {
	prev := slices.Clone(r.extremities)
	slices.SortFunc(prev, func(a, b *events.Event) int {
		if a.Depth != b.Depth {
			if a.Depth > b.Depth {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	if len(prev) > maxPrevEvents {
		prev = prev[:maxPrevEvents]
	}
	return prev
}

// oldestFirst orders events by depth, then by ID: how events of a room's
// past are stored (the state a join brought, backfilled history).
func oldestFirst(a, b *events.Event) int {
	return cmp.Or(cmp.Compare(a.Depth, b.Depth), strings.Compare(a.ID, b.ID))
}

// advance makes ev an extremity of r in place of the events it cites, and
// records the new set in batch.
func (r *room) advance(ev *events.Event, batch *store.EventBatch) {
	keep := []*events.Event{ev}
	for _, x := range r.extremities {
		if x.ID != ev.ID && !slices.Contains(ev.PrevEvents, x.ID) {
			keep = append(keep, x)
		}
	}
	r.extremities = keep
	batch.Extremities = r.extremityIDs()
	batch.ExtremitiesRoom = r.id
}

// extremityIDs lists r's forward extremities.
func (r *room) extremityIDs() []string {
	ids := make([]string, len(r.extremities))
	for i, x := range r.extremities {
		ids[i] = x.ID
	}
	return ids
}

// latestID is the ID of r's deepest extremity (what a tombstone names as
// the old room's last event).
func (r *room) latestID() string {
	if p := r.prevEvents(); len(p) > 0 {
		return p[0].ID
	}
	return ""
}
