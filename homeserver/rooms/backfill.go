package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/pducheck"
	"github.com/salonhq/salon/homeserver/store"
)

// Backfill: the history of a room from before this server joined it,
// asked of the room's other servers (/backfill) when a member pages back
// past the oldest event held here, and kept in the past (store.Backfill),
// where /messages reads it and /sync never does.

const (
	// maxBackfillFrom bounds the event IDs a /backfill request names.
	maxBackfillFrom = 20
	// maxBackfillServers bounds the servers asked for one page.
	maxBackfillServers = 3
	// backfillQuiet is how long a room whose servers had nothing older
	// is not asked again.
	backfillQuiet = time.Minute
)

// backfills serialises the backfill of each room and remembers the rooms
// whose history is all here (or that no server would give more of).
type backfills struct {
	mu    sync.Mutex
	rooms map[string]*backfillRoom
}

type backfillRoom struct {
	mu    sync.Mutex
	quiet time.Time // not asked again before
}

func (b *backfills) of(roomID string) *backfillRoom {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rooms == nil {
		b.rooms = map[string]*backfillRoom{}
	}
	r := b.rooms[roomID]
	if r == nil {
		if len(b.rooms) >= 10_000 {
			clear(b.rooms) // only quiet periods are lost
		}
		r = &backfillRoom{}
		b.rooms[roomID] = r
	}
	return r
}

// Backfill asks the room's other servers for up to limit events of its
// history older than what this server holds, checks each (signatures,
// content hash, its own auth events) and keeps those that pass before the
// room's timeline. It returns how many it kept: 0 when the history is all
// here, no other server is in the room, or none answered.
func (s *Service) Backfill(ctx context.Context, roomID string, limit int) (int, error) {
	if s.remote == nil || limit <= 0 {
		return 0, nil
	}
	br := s.backfills.of(roomID)
	br.mu.Lock()
	defer br.mu.Unlock()
	if s.p.Now().Before(br.quiet) {
		return 0, nil
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return 0, err
	}
	v, create := r.version, r.state.Create()
	var servers []string
	for _, srv := range r.derive().servers {
		if srv != s.p.ServerName {
			servers = append(servers, srv)
		}
	}
	r.mu.Unlock()
	if len(servers) == 0 {
		return 0, nil
	}
	from, err := s.backwardExtremities(ctx, roomID, v)
	if err != nil {
		return 0, err
	}
	if len(from) == 0 { // the whole history is here, back to the creation
		br.quiet = s.p.Now().Add(backfillQuiet)
		return 0, nil
	}
	for i, server := range servers {
		if i == maxBackfillServers {
			break
		}
		// An answer of events held here already (the state the join
		// brought) goes on from what they cite, a few rounds at most.
		next := from
		for round := 0; round < 5 && len(next) > 0; round++ {
			pdus, err := s.remote.Backfill(ctx, server, roomID, next, limit)
			if err != nil {
				s.log.Info("federation: backfill refused", "room", roomID, "server", server, "err", err)
				break
			}
			var kept int
			if kept, next, err = s.keepBackfill(ctx, roomID, v, create, server, pdus); err != nil {
				return 0, err
			}
			if kept > 0 {
				return kept, nil
			}
		}
	}
	br.quiet = s.p.Now().Add(backfillQuiet)
	return 0, nil
}

// inTimeline reports whether an event is held in the room's history: the
// timeline or the backfilled past, not the state a join brought (which
// is not history: what it cites is still to be backfilled).
func (s *Service) inTimeline(ctx context.Context, id string) (bool, error) {
	row, err := s.p.Store.Event(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !store.InJoinState(row.Pos), nil
}

// backwardExtremities are the events the oldest history held here cites
// and this server lacks: where /backfill goes on from. The oldest history
// is the backfilled past's first events, or the timeline's when nothing
// was backfilled yet.
func (s *Service) backwardExtremities(ctx context.Context, roomID string, v events.RoomVersion) ([]string, error) {
	rows, err := s.p.Store.RoomEvents(ctx, roomID, Oldest, store.BackfillTop, maxBackfillFrom, false)
	if err == nil && len(rows) == 0 {
		rows, err = s.p.Store.RoomEvents(ctx, roomID, -1, s.p.Store.CurrentPos()+1, maxBackfillFrom, false)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, row := range rows {
		ev, err := events.Parse(v, row.JSON)
		if err != nil {
			continue
		}
		for _, p := range ev.PrevEvents {
			if slices.Contains(out, p) {
				continue
			}
			held, err := s.inTimeline(ctx, p)
			if err != nil {
				return nil, err
			}
			if !held {
				out = append(out, p)
			}
		}
		if len(out) >= maxBackfillFrom {
			return out[:maxBackfillFrom], nil
		}
	}
	return out, nil
}

// keepBackfill checks the events a server answered and stores those that
// pass, oldest first, before the room's timeline. next: when it kept none,
// what the answered events that are held here already cite and this
// server lacks.
func (s *Service) keepBackfill(ctx context.Context, roomID string, v events.RoomVersion, create *events.Event, server string, pdus []json.RawMessage) (kept int, next []string, err error) {
	// Auth events missing here are fetched from the same server and kept
	// as outliers, as for a received PDU.
	in := &inbound{s: s, r: &room{id: roomID, version: v}, origin: server}
	var keep, stored []*events.Event
	answered := map[string]bool{}
	for _, raw := range pdus {
		ev, err := pducheck.ParseEvent(v, raw)
		if err != nil || ev.RoomID != roomID || answered[ev.ID] {
			continue
		}
		answered[ev.ID] = true
		if row, err := s.p.Store.Event(ctx, ev.ID); err == nil {
			if store.InJoinState(row.Pos) {
				// Of the state the join brought: it moves to its place
				// in the history (checked when the join brought it).
				keep = append(keep, ev)
			}
			stored = append(stored, ev)
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
		if err := s.checkBackfilled(ctx, in, ev, create); err != nil {
			s.log.Info("federation: backfilled event refused", "room", roomID, "event", ev.ID, "server", server, "err", err)
			continue
		}
		if ev, _, err = pducheck.CheckHash(ev); err != nil { // a mismatch keeps the redacted event
			continue
		}
		keep = append(keep, ev)
	}
	if len(keep) == 0 {
		for _, ev := range stored {
			for _, p := range ev.PrevEvents {
				if answered[p] || slices.Contains(next, p) {
					continue
				}
				held, err := s.inTimeline(ctx, p)
				if err != nil {
					return 0, nil, err
				}
				if !held && len(next) < maxBackfillFrom {
					next = append(next, p)
				}
			}
		}
		return 0, next, nil
	}
	slices.SortFunc(keep, oldestFirst)
	batch := &store.EventBatch{Backfill: true}
	for _, ev := range keep {
		batch.Events = append(batch.Events, eventRow(in.r, ev, nil))
	}
	if _, err := s.p.Store.PersistEvents(ctx, batch); err != nil {
		if errors.Is(err, store.ErrExists) {
			return 0, nil, nil // stored meanwhile (received, or another backfill)
		}
		return 0, nil, err
	}
	// Membership and visibility histories changed (events of the join's
	// state moved into them): the room's Readers are read again.
	s.mu.RLock()
	if r := s.rooms[roomID]; r != nil {
		r.dropReaders()
	}
	s.mu.RUnlock()
	return len(keep), nil, nil
}

// checkBackfilled checks one event of the past: signed by its server, and
// allowed by its own auth events (the state at it is not known here).
func (s *Service) checkBackfilled(ctx context.Context, in *inbound, ev *events.Event, create *events.Event) error {
	if err := pducheck.CheckSignatures(ctx, ev, s.remote); err != nil {
		return err
	}
	auth := make([]*events.Event, 0, len(ev.AuthEvents))
	for _, id := range ev.AuthEvents {
		a, err := in.load(ctx, id)
		if err != nil {
			return err
		}
		auth = append(auth, a)
	}
	return pducheck.CheckAuthEvents(ev, auth, in.isRejected, create)
}
