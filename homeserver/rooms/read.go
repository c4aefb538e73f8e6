package rooms

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Event returns one event if the user may read it (M_NOT_FOUND otherwise,
// so hidden events look like missing ones).
func (s *Service) Event(ctx context.Context, userID, roomID, eventID string) (store.EventRow, events.RoomVersion, error) {
	rd, err := s.NewReader(ctx, roomID, userID)
	if err != nil {
		return store.EventRow{}, "", err
	}
	row, err := s.p.Store.Event(ctx, eventID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (row.RoomID != roomID || !rd.CanRead(row))) {
		return store.EventRow{}, "", mxerr.NotFoundf("Event not found")
	}
	if err != nil {
		return row, "", err
	}
	v, err := s.Version(ctx, roomID)
	return row, v, err
}

// State returns the room state the user may see: current when joined or
// world_readable, otherwise as it was when they left.
func (s *Service) State(ctx context.Context, userID, roomID string) ([]store.EventRow, events.RoomVersion, error) {
	rd, v, err := s.reader(ctx, roomID, userID)
	if err != nil {
		return nil, "", err
	}
	now := s.p.Store.CurrentPos()
	bound := rd.StateBound(now)
	if bound == 0 {
		return nil, "", errNoRead
	}
	var rows []store.EventRow
	if bound == now {
		rows, err = s.p.Store.CurrentState(ctx, roomID)
	} else {
		rows, err = s.p.Store.StateAt(ctx, roomID, bound)
	}
	return rd.FilterState(rows), v, err
}

// StateAtPos returns the room state at a position, bounded by what the
// user may see: not later than StateBound, and not earlier than the first
// position whose events they may read (a later joiner of a "joined" room
// does not see who was there before them).
func (s *Service) StateAtPos(ctx context.Context, userID, roomID string, pos int64) ([]store.EventRow, events.RoomVersion, error) {
	rd, v, err := s.reader(ctx, roomID, userID)
	if err != nil {
		return nil, "", err
	}
	bound := rd.StateBound(s.p.Store.CurrentPos())
	if bound == 0 {
		return nil, "", errNoRead
	}
	pos = rd.FirstReadableState(max(pos, 0), bound)
	rows, err := s.p.Store.StateAt(ctx, roomID, pos)
	return rd.FilterState(rows), v, err
}

// MembersAtPos returns the member events of the given users in the room
// state at a position, bounded as StateAtPos bounds it: what StateAtPos
// would return of them. /messages with lazy-loaded members asks for the
// senders of a page; reading each one's membership history (which the
// store keeps in memory) instead of the whole state makes a page of a
// room of thousands cost what a page of a small room costs.
func (s *Service) MembersAtPos(ctx context.Context, userID, roomID string, pos int64, userIDs []string) ([]store.EventRow, events.RoomVersion, error) {
	rd, v, err := s.reader(ctx, roomID, userID)
	if err != nil {
		return nil, "", err
	}
	bound := rd.StateBound(s.p.Store.CurrentPos())
	if bound == 0 {
		return nil, "", errNoRead
	}
	pos = rd.FirstReadableState(max(pos, 0), bound)
	var rows []store.EventRow
	for _, u := range userIDs {
		h, err := s.p.Store.StateHistory(ctx, roomID, "m.room.member", u)
		if err != nil {
			return nil, "", err
		}
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Pos <= pos {
				rows = append(rows, h[i])
				break
			}
		}
	}
	slices.SortFunc(rows, func(a, b store.EventRow) int { return cmp.Compare(a.Pos, b.Pos) })
	return rd.FilterState(rows), v, nil
}

// SeesCurrentState answers M_FORBIDDEN unless the user may see the room as
// it is now: joined, or the room is world_readable (what
// /rooms/{roomId}/aliases asks of its caller).
func (s *Service) SeesCurrentState(ctx context.Context, userID, roomID string) error {
	rd, err := s.NewReader(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if !rd.SeesCurrentState(s.p.Store.CurrentPos()) {
		return errNoRead
	}
	return nil
}

// Page is one page of /messages.
type Page struct {
	Events  []store.EventRow
	Version events.RoomVersion
	// Last is the position of the last event looked at (0: none).
	Last int64
	// Exhausted: the range holds no events past Last.
	Exhausted bool
}

// Oldest is a lower bound below every position: history backfilled from
// other servers is in the past, below zero (store.PastTop).
const Oldest int64 = math.MinInt64

// Messages pages through a room's history as the user may read it: events
// with after < pos < before, newest first when desc, up to limit events.
// The state a join brought (store.EventRow.Past, between the backfilled
// history and the timeline) is the room's state, not its history: pages
// leave it out.
func (s *Service) Messages(ctx context.Context, userID, roomID string, after, before int64, desc bool, limit int, keep func(store.EventRow) bool) (Page, error) {
	rd, v, err := s.reader(ctx, roomID, userID)
	if err != nil {
		return Page{}, err
	}
	page := Page{Version: v}
	const scanCap = 10 // batches of unreadable events scanned before giving up
	for scans := 0; scans < scanCap; scans++ {
		lo, hi, more := historyPart(after, before, desc)
		rows, err := s.p.Store.RoomEvents(ctx, roomID, lo, hi, limit, desc)
		if err != nil {
			return page, err
		}
		for _, row := range rows {
			if desc {
				before = row.Pos
			} else {
				after = row.Pos
			}
			page.Last = row.Pos
			if rd.CanRead(row) && (keep == nil || keep(row)) {
				page.Events = append(page.Events, row)
				if len(page.Events) == limit {
					return page, nil
				}
			}
		}
		if len(rows) < limit {
			if more { // on to the other part
				if desc {
					before = store.BackfillTop
				} else {
					after = store.PastTop
				}
				continue
			}
			page.Exhausted = true
			return page, nil
		}
	}
	return page, nil
}

// historyPart clips a page's range (after, before) to the part of the
// history its next events are in: the timeline (positions from zero) or
// the backfilled history (below store.BackfillTop); the state a join
// brought, between them, is stepped over whole. more: the range goes on
// into the other part once this one is read.
func historyPart(after, before int64, desc bool) (lo, hi int64, more bool) {
	inBackfill := before <= 0
	if !desc {
		inBackfill = after < store.BackfillTop-1
	}
	if inBackfill {
		return after, min(before, store.BackfillTop), !desc && before > 0
	}
	return max(after, store.PastTop), before, desc && after < store.BackfillTop-1
}

// Relations pages through the events relating to a parent event (q:
// bounds, order, filters, depth) as the user may read them, up to q.Limit
// events. Like Messages, it skips unreadable events and reports in Last
// where the store stopped, so the next page starts after them.
func (s *Service) Relations(ctx context.Context, userID string, q store.RelationsQuery) (Page, error) {
	rd, v, err := s.reader(ctx, q.RoomID, userID)
	if err != nil {
		return Page{}, err
	}
	page := Page{Version: v}
	const scanCap = 10 // batches of unreadable events scanned before giving up
	for scans := 0; scans < scanCap; scans++ {
		rows, err := s.p.Store.RelationsPage(ctx, q)
		if err != nil {
			return page, err
		}
		for _, row := range rows {
			if q.Forward {
				q.After = row.Pos
			} else {
				q.Before = row.Pos
			}
			page.Last = row.Pos
			if rd.CanRead(row) {
				page.Events = append(page.Events, row)
				if len(page.Events) == q.Limit {
					return page, nil
				}
			}
		}
		if len(rows) < q.Limit {
			page.Exhausted = true
			return page, nil
		}
	}
	return page, nil
}

// reader is NewReader with the room's version.
func (s *Service) reader(ctx context.Context, roomID, userID string) (*Reader, events.RoomVersion, error) {
	rd, err := s.NewReader(ctx, roomID, userID)
	if err != nil {
		return nil, "", err
	}
	v, err := s.Version(ctx, roomID)
	return rd, v, err
}
