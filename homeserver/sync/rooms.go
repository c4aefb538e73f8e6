package sync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"

	"github.com/salonhq/salon/homeserver/store"
)

// Memberships as content.membership spells them.
const (
	join   = "join"
	invite = "invite"
	leave  = "leave"
	ban    = "ban"
	knock  = "knock"
)

const typeMember = "m.room.member"

// maxTimelineScan bounds how many events one room's timeline reads when
// the timeline filter rejects most of them; past it the timeline is
// reported limited.
const maxTimelineScan = 1000

// syncer builds one response from one snapshot: everything it reads is
// bounded by to.
type syncer struct {
	e       *Engine
	req     *Request
	f       *Filter
	nowMS   int64
	initial bool
	since   StreamToken // zero for an initial sync
	to      StreamToken
	mu      gosync.Mutex // guards resp and lazyOut while rooms are built concurrently
	resp    *Response

	hist       map[string][]store.EventRow       // room → the user's member events
	vis        map[string]Visibility             // room → the user's read rules (guarded by mu)
	roomAD     map[string][]store.AccountDataRow // room → changed room account data
	rcpts      map[string][]store.Receipt        // room → receipts to send
	typing     map[string]typingState            // room → typing users
	typingFull bool                              // since's typing part is from another run

	// lazy is the device's lazy-loading record, nil when the filter does
	// not lazy-load or wants redundant members; lazyOut is what this
	// response sends (guarded by mu).
	lazy    *lazyDevice
	lazyOut map[string]*lazyRoom

	// newMates are the users who joined a room the user was already in
	// since the token (guarded by mu): their presence goes out with this
	// response, since they only now share a room with the user.
	newMates map[string]bool
}

// memAt is the user's membership at some position.
type memAt struct {
	membership string
	pos        int64
	eventID    string
}

type roomAt struct {
	roomID    string
	at        memAt
	wasJoined bool // leave: the user was joined before leaving
}

// run is the rooms provider followed by the receipts, typing and account
// data providers, which add to the rooms it chose.
func (s *syncer) run(ctx context.Context) error {
	mems, err := s.e.userMemberships(ctx, s.req.UserID, !s.initial)
	if err != nil {
		return err
	}
	var existing, fresh []string
	var invites, knocks, leaves []roomAt
	for _, m := range mems {
		// A forgotten room is gone from sync, except that the leave
		// itself still reaches an incremental sync from before it, so the
		// user's other devices learn of it (as Synapse does).
		if !s.f.Room.AllowsRoom(m.RoomID) || (m.Forgotten && (s.initial || m.Pos <= s.since.Pos)) {
			continue
		}
		cur := memAt{m.Membership, m.Pos, m.EventID}
		if m.Pos > s.to.Pos {
			// Changed after the snapshot: use the membership at to.
			if cur, err = s.membershipAt(ctx, m.RoomID, s.to.Pos); err != nil {
				return err
			}
		}
		if s.initial {
			switch cur.membership {
			case join:
				fresh = append(fresh, m.RoomID)
			case invite:
				invites = append(invites, roomAt{roomID: m.RoomID, at: cur})
			case knock:
				knocks = append(knocks, roomAt{roomID: m.RoomID, at: cur})
			case leave, ban:
				if s.f.Room.IncludeLeave {
					was, err := s.joinedBefore(ctx, m.RoomID, cur)
					if err != nil {
						return err
					}
					leaves = append(leaves, roomAt{m.RoomID, cur, was})
				}
			}
			continue
		}
		prev := cur
		if cur.pos > s.since.Pos {
			if prev, err = s.membershipAt(ctx, m.RoomID, s.since.Pos); err != nil {
				return err
			}
		}
		changed := cur.pos > s.since.Pos
		switch cur.membership {
		case join:
			if prev.membership == join {
				existing = append(existing, m.RoomID)
			} else {
				fresh = append(fresh, m.RoomID)
			}
		case invite:
			if changed {
				invites = append(invites, roomAt{roomID: m.RoomID, at: cur})
			}
		case knock:
			if changed {
				knocks = append(knocks, roomAt{roomID: m.RoomID, at: cur})
			}
		case leave, ban:
			if changed {
				leaves = append(leaves, roomAt{m.RoomID, cur, prev.membership == join})
			}
		}
	}

	if err := s.accountData(ctx); err != nil {
		return err
	}
	changed := map[string]bool{}
	if !s.initial {
		changed = s.e.p.Notifier.changedRooms(existing, s.since.Pos)
	}
	if err := s.receipts(ctx, existing, fresh, changed); err != nil {
		return err
	}
	s.snapshotTyping(existing, fresh)
	if err := s.toDevice(ctx); err != nil {
		return err
	}
	if err := s.keyCounts(ctx); err != nil {
		return err
	}
	if !s.initial {
		var leftRooms []string
		for _, r := range leaves {
			if r.wasJoined {
				leftRooms = append(leftRooms, r.roomID)
			}
		}
		dl := &s.resp.DeviceLists
		c, l, err := s.e.deviceLists(ctx, s.req.UserID, s.since.Pos, s.to.Pos, existing, fresh, leftRooms, changed)
		if err != nil {
			return err
		}
		dl.Changed, dl.Left = append(dl.Changed, c...), append(dl.Left, l...)
	}

	err = s.forEach(ctx, fresh, func(ctx context.Context, id string) error {
		return s.addJoined(ctx, id, true, true)
	})
	if err != nil {
		return err
	}
	err = s.forEach(ctx, s.worthVisiting(existing, changed), func(ctx context.Context, id string) error {
		return s.addJoined(ctx, id, false, changed[id])
	})
	if err != nil {
		return err
	}
	// Presence after the rooms: the joined rooms tell who joined since.
	if err := s.presence(ctx, existing, fresh); err != nil {
		return err
	}
	if invites, err = s.dropIgnoredInvites(ctx, invites); err != nil {
		return err
	}
	for _, r := range invites {
		ev, err := s.strippedState(ctx, r)
		if err != nil {
			return err
		}
		s.resp.Rooms.Invite[r.roomID] = &InvitedRoom{InviteState: EventList{ev}}
	}
	for _, r := range knocks {
		ev, err := s.strippedState(ctx, r)
		if err != nil {
			return err
		}
		s.resp.Rooms.Knock[r.roomID] = &KnockedRoom{KnockState: EventList{ev}}
	}
	for _, r := range leaves {
		if err := s.addLeft(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// worthVisiting keeps the rooms an incremental sync has something to say
// about: events or receipts after since, room account data, a typing
// change, or full_state. A woken long-poll so does work for the rooms that
// changed, not for every room the user is in.
func (s *syncer) worthVisiting(existing []string, changed map[string]bool) []string {
	if s.req.FullState || s.typingFull {
		return existing
	}
	out := make([]string, 0, len(changed))
	for _, id := range existing {
		if changed[id] || len(s.rcpts[id]) > 0 || len(s.roomAD[id]) > 0 ||
			(s.e.p.Typing != nil && s.typing[id].pos > s.since.Typing) {
			out = append(out, id)
		}
	}
	return out
}

// history is the user's member events in a room, oldest first.
func (s *syncer) history(ctx context.Context, roomID string) ([]store.EventRow, error) {
	if h, ok := s.hist[roomID]; ok {
		return h, nil
	}
	h, err := s.e.p.Store.StateHistory(ctx, roomID, typeMember, s.req.UserID)
	if err != nil {
		return nil, fmt.Errorf("sync: membership history: %w", err)
	}
	s.hist[roomID] = h
	return h, nil
}

// membershipAt is the user's membership in the room after every event at
// or before pos ("" if none).
func (s *syncer) membershipAt(ctx context.Context, roomID string, pos int64) (memAt, error) {
	h, err := s.history(ctx, roomID)
	if err != nil {
		return memAt{}, err
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Pos <= pos {
			return memAt{h[i].Membership, h[i].Pos, h[i].EventID}, nil
		}
	}
	return memAt{}, nil
}

// joinedBefore reports whether the user was joined just before the
// membership event at.
func (s *syncer) joinedBefore(ctx context.Context, roomID string, at memAt) (bool, error) {
	h, err := s.history(ctx, roomID)
	if err != nil {
		return false, err
	}
	for i := len(h) - 1; i > 0; i-- {
		if h[i].Pos == at.pos {
			return h[i-1].Membership == join, nil
		}
	}
	return false, nil
}

// timeline returns the newest events of the room with after < Pos <= upto
// that pass the filter, oldest first, at most the filter's limit, and
// whether older matching events were left out.
func (s *syncer) timeline(ctx context.Context, roomID string, after, upto int64) ([]store.EventRow, bool, error) {
	f := &s.f.Room.Timeline
	if !f.AllowsRoom(roomID) || upto <= after {
		return nil, false, nil
	}
	limit := f.limit(DefaultTimelineLimit)
	filtering := f.Types != nil || f.NotTypes != nil || f.Senders != nil || f.NotSenders != nil || f.ContainsURL != nil
	page := limit + 1
	if filtering {
		page = max(page, 50)
	}
	return s.readableTimeline(ctx, roomID, after, upto, limit, page, f.allowsEvent)
}

// readableTimeline is the newest limit events with after < Pos <= upto
// that keep accepts (nil: all) and the user may read, oldest first, and
// whether such events were left out; it reads the room page events at a
// time, newest first, and gives up after maxTimelineScan events. /sync's
// timeline and sliding sync's share it.
func (s *syncer) readableTimeline(ctx context.Context, roomID string, after, upto int64, limit, page int, keep func(*store.EventRow) bool) ([]store.EventRow, bool, error) {
	vis, err := s.visibility(ctx, roomID)
	if err != nil {
		return nil, false, err
	}
	var out []store.EventRow
	limited := false
	before, scanned := upto+1, 0
scan:
	for {
		batch, err := s.e.p.Store.RoomEvents(ctx, roomID, after, before, page, true)
		if err != nil {
			return nil, false, fmt.Errorf("sync: room events: %w", err)
		}
		for i := range batch {
			scanned++
			if (keep != nil && !keep(&batch[i])) || (vis != nil && !vis.CanRead(batch[i])) {
				continue
			}
			if len(out) == limit {
				limited = true
				break scan
			}
			out = append(out, batch[i])
		}
		if len(batch) < page {
			break
		}
		if scanned >= maxTimelineScan {
			limited = true
			break
		}
		before = batch[len(batch)-1].Pos
	}
	slices.Reverse(out)
	return out, limited, nil
}

// addJoined builds a room of rooms.join. fresh: initial sync or joined
// since the token (full state, timeline from the room's history). changed:
// the room has events or receipts after since.
func (s *syncer) addJoined(ctx context.Context, roomID string, fresh, changed bool) error {
	st := s.e.p.Store
	jr := &JoinedRoom{}
	full := fresh || s.req.FullState

	var tl []store.EventRow
	limited := false
	if full || changed {
		after := s.since.Pos
		if fresh {
			after = 0
		}
		var err error
		if tl, limited, err = s.timeline(ctx, roomID, after, s.to.Pos); err != nil {
			return err
		}
		// A room joined since the token: the client has none of its
		// history, so the timeline is limited unless it starts at the
		// room's creation, telling the client there is more to page back
		// to (Synapse marks every newly joined room so).
		if fresh && !s.initial && len(tl) > 0 && tl[0].Type != "m.room.create" {
			limited = true
		}
	}
	startPos := s.to.Pos
	if len(tl) > 0 {
		startPos = tl[0].Pos - 1
	}
	var stateRows []store.EventRow
	if full {
		rows, err := st.StateAt(ctx, roomID, startPos)
		if err != nil {
			return fmt.Errorf("sync: state: %w", err)
		}
		stateRows = rows
	} else if limited {
		var err error
		if stateRows, err = s.gapState(ctx, roomID, startPos); err != nil {
			return err
		}
	}

	if !fresh && !s.initial {
		s.noteNewMates(tl, stateRows)
	}

	var heroes []string
	if full || hasMember(tl) || hasMember(stateRows) {
		var fullState []store.EventRow
		if full {
			fullState = stateRows
		}
		sum, h, err := s.summary(ctx, roomID, fullState, tl)
		if err != nil {
			return err
		}
		jr.Summary, heroes = sum, h
	}

	if vis, err := s.visibility(ctx, roomID); err != nil {
		return err
	} else if vis != nil {
		kept := stateRows[:0:0]
		for _, r := range stateRows {
			if vis.SeesKnock(r) {
				kept = append(kept, r)
			}
		}
		stateRows = kept
	}
	state, err := s.filterState(ctx, roomID, stateRows, tl, startPos, full, heroes)
	if err != nil {
		return err
	}
	if jr.State.Events, err = s.format(ctx, state); err != nil {
		return err
	}
	if s.req.StateAfter != "" && (full || changed) {
		// (A room without events since the token has no state changes.)
		if err := s.stateAfter(ctx, roomID, jr, tl, startPos, full, heroes); err != nil {
			return err
		}
	}
	if jr.Timeline.Events, err = s.format(ctx, tl); err != nil {
		return err
	}
	jr.Timeline.Limited = limited
	jr.Timeline.PrevBatch = PrevBatchToken(startPos + 1)

	if jr.Ephemeral.Events, err = s.ephemeral(roomID, fresh); err != nil {
		return err
	}
	if jr.AccountData.Events, err = s.roomAccountData(roomID); err != nil {
		return err
	}
	if !full && len(jr.Timeline.Events) == 0 && len(jr.State.Events) == 0 && len(jr.StateAfter.Events) == 0 &&
		len(jr.Ephemeral.Events) == 0 && len(jr.AccountData.Events) == 0 {
		return nil
	}
	if s.e.p.ThreadCounts != nil && s.f.Room.Timeline.UnreadThreadNotifications {
		main, threads, err := s.e.p.ThreadCounts(ctx, s.req.UserID, roomID)
		if err != nil {
			s.e.log.Warn("sync: unread counts", "room", roomID, "err", err)
		} else {
			jr.UnreadNotifications = &main
			jr.UnreadThreadNotifications = threads
		}
	} else if s.e.p.Counts != nil {
		n, h, err := s.e.p.Counts(ctx, s.req.UserID, roomID, s.since.Pos)
		if err != nil {
			s.e.log.Warn("sync: unread counts", "room", roomID, "err", err)
		} else {
			jr.UnreadNotifications = &UnreadCounts{NotificationCount: n, HighlightCount: h}
		}
	}
	s.mu.Lock()
	s.resp.Rooms.Join[roomID] = jr
	s.mu.Unlock()
	return nil
}

// gapScan bounds the events of a limited sync's gap that gapState reads
// one by one; a longer gap reads the room's state instead.
const gapScan = 200

// gapState is the state that changed in the gap between since and the
// start of a limited timeline (startPos), as it was at the start of the
// timeline: for each piece of state, its last event in the gap. A short
// gap is read from its events (the newest of which the store holds in
// memory); reading the room's whole state instead made every woken sync
// of a member of a room of thousands read thousands of member events as
// soon as the syncs fell more than a timeline behind, which made them
// fall further behind (issue 24's profile).
func (s *syncer) gapState(ctx context.Context, roomID string, startPos int64) ([]store.EventRow, error) {
	since := s.since.Pos
	if startPos <= since {
		return nil, nil
	}
	evs, err := s.e.p.Store.RoomEvents(ctx, roomID, since, startPos+1, gapScan+1, false)
	if err != nil {
		return nil, fmt.Errorf("sync: gap: %w", err)
	}
	if len(evs) <= gapScan {
		var out []store.EventRow
		at := map[[2]string]int{}
		for _, ev := range evs {
			if ev.StateKey == nil {
				continue
			}
			k := [2]string{ev.Type, *ev.StateKey}
			if i, ok := at[k]; ok {
				out[i] = ev
			} else {
				at[k] = len(out)
				out = append(out, ev)
			}
		}
		slices.SortFunc(out, func(a, b store.EventRow) int { return cmp.Compare(a.Pos, b.Pos) })
		return out, nil
	}
	rows, err := s.e.p.Store.StateAt(ctx, roomID, startPos)
	if err != nil {
		return nil, fmt.Errorf("sync: state: %w", err)
	}
	var out []store.EventRow
	for _, r := range rows {
		if r.Pos > since {
			out = append(out, r)
		}
	}
	return out, nil
}

// noteNewMates records the users other than the syncing one whose join
// to a room the user was in is among rows (timeline and gap state of an
// incremental sync). A profile change is a join too: sending that user's
// presence again does no harm.
func (s *syncer) noteNewMates(rows ...[]store.EventRow) {
	for _, rs := range rows {
		for i := range rs {
			r := &rs[i]
			if r.Type != typeMember || r.Membership != join || r.StateKey == nil ||
				*r.StateKey == s.req.UserID || r.Pos <= s.since.Pos {
				continue
			}
			s.mu.Lock()
			if s.newMates == nil {
				s.newMates = map[string]bool{}
			}
			s.newMates[*r.StateKey] = true
			s.mu.Unlock()
		}
	}
}

// Rooms are built by a few goroutines when there are many: the queries of
// one room wait on the database, not on each other.
const (
	roomWorkers     = 4
	parallelMinimum = 8
)

// forEach calls fn for every room, concurrently when there are many. The
// first error cancels the rest and is returned; every goroutine has ended
// when forEach returns.
func (s *syncer) forEach(ctx context.Context, ids []string, fn func(ctx context.Context, id string) error) error {
	if len(ids) < parallelMinimum {
		for _, id := range ids {
			if err := fn(ctx, id); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    gosync.WaitGroup
		next  atomic.Int64
		mu    gosync.Mutex
		first error
	)
	for range min(roomWorkers, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, ids[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// addLeft builds a room of rooms.leave: the timeline up to the user's
// leave, never after it.
func (s *syncer) addLeft(ctx context.Context, r roomAt) error {
	lr := &LeftRoom{}
	var tl, stateRows []store.EventRow
	limited := false
	if r.wasJoined {
		var err error
		if tl, limited, err = s.timeline(ctx, r.roomID, s.since.Pos, r.at.pos); err != nil {
			return err
		}
		startPos := r.at.pos
		if len(tl) > 0 {
			startPos = tl[0].Pos - 1
		}
		full := s.initial || s.req.FullState
		if full || limited {
			rows, err := s.e.p.Store.StateAt(ctx, r.roomID, startPos)
			if err != nil {
				return fmt.Errorf("sync: state: %w", err)
			}
			for _, row := range rows {
				if full || row.Pos > s.since.Pos {
					stateRows = append(stateRows, row)
				}
			}
		}
		if stateRows, err = s.filterState(ctx, r.roomID, stateRows, tl, startPos, full, nil); err != nil {
			return err
		}
		lr.Timeline.PrevBatch = PrevBatchToken(startPos + 1)
	} else {
		// Never joined (a rejected invite, a withdrawn knock, a ban): only
		// the user's own membership event.
		row, err := s.e.p.Store.Event(ctx, r.at.eventID)
		if err != nil {
			return fmt.Errorf("sync: leave event: %w", err)
		}
		tl = []store.EventRow{row}
		lr.Timeline.PrevBatch = PrevBatchToken(row.Pos)
	}
	var err error
	if lr.State.Events, err = s.format(ctx, stateRows); err != nil {
		return err
	}
	if lr.Timeline.Events, err = s.format(ctx, tl); err != nil {
		return err
	}
	lr.Timeline.Limited = limited
	if lr.AccountData.Events, err = s.roomAccountData(r.roomID); err != nil {
		return err
	}
	s.resp.Rooms.Leave[r.roomID] = lr
	return nil
}

func hasMember(rows []store.EventRow) bool {
	for i := range rows {
		if rows[i].Type == typeMember {
			return true
		}
	}
	return false
}

// stateAfter fills MSC4222's state_after: the room's state at the end of
// the timeline (the sync's upper position), whole for a full sync, else
// what changed after the token — so a state event of the timeline is in
// both. The same visibility and state filter as state apply.
func (s *syncer) stateAfter(ctx context.Context, roomID string, jr *JoinedRoom, tl []store.EventRow, startPos int64, full bool, heroes []string) error {
	rows, err := s.e.p.Store.StateAt(ctx, roomID, s.to.Pos)
	if err != nil {
		return fmt.Errorf("sync: state after: %w", err)
	}
	vis, err := s.visibility(ctx, roomID)
	if err != nil {
		return err
	}
	var kept []store.EventRow
	for _, r := range rows {
		if (full || r.Pos > s.since.Pos) && (vis == nil || vis.SeesKnock(r)) {
			kept = append(kept, r)
		}
	}
	kept, err = s.filterState(ctx, roomID, kept, tl, startPos, full, heroes)
	if err != nil {
		return err
	}
	jr.StateAfterField = s.req.StateAfter
	jr.StateAfter.Events, err = s.format(ctx, kept)
	jr.State.Events = nil
	return err
}

// filterState applies the state filter. With lazy_load_members it keeps
// only the member events of the timeline's senders (as of the timeline's
// start), the heroes', and the user's own when full; member events that
// changed in a limited sync's gap are always kept (spec: /sync). Unless
// include_redundant_members is set, a sender's member event that the
// device already holds (see lazyCache) is not sent again.
func (s *syncer) filterState(ctx context.Context, roomID string, rows, tl []store.EventRow, startPos int64, full bool, heroes []string) ([]store.EventRow, error) {
	sf := &s.f.Room.State
	if !sf.AllowsRoom(roomID) {
		return nil, nil
	}
	if !sf.LazyLoadMembers {
		out := rows[:0:0]
		for i := range rows {
			if sf.allowsEvent(&rows[i]) {
				out = append(out, rows[i])
			}
		}
		return out, nil
	}
	need := map[string]bool{}
	for i := range tl {
		need[tl[i].Sender] = true
	}
	for _, h := range heroes {
		need[h] = true
	}
	if full {
		need[s.req.UserID] = true
	} else {
		delete(need, s.req.UserID)
	}
	var out []store.EventRow
	have := map[string]bool{}
	var sent []string
	for i := range rows {
		r := &rows[i]
		if r.Type == typeMember && full && !need[*r.StateKey] {
			continue
		}
		if !sf.allowsEvent(r) {
			continue
		}
		out = append(out, *r)
		if r.Type == typeMember {
			have[*r.StateKey] = true
			sent = append(sent, *r.StateKey)
		}
	}
	// The client can only be trusted to hold members while it sees every
	// change to them in complete timelines.
	complete := s.timelineComplete(roomID)
	for i := range tl {
		if tl[i].Type == typeMember {
			sent = append(sent, *tl[i].StateKey)
		}
	}
	if !full && sf.AllowsType(typeMember) {
		missing := make([]string, 0, len(need))
		for u := range need {
			if !have[u] && !(complete && s.lazy != nil && s.e.lazy.holds(s.lazy, roomID, u)) {
				missing = append(missing, u)
			}
		}
		slices.Sort(missing)
		for _, u := range missing {
			h, err := s.e.p.Store.StateHistory(ctx, roomID, typeMember, u)
			if err != nil {
				return nil, fmt.Errorf("sync: member history: %w", err)
			}
			for i := len(h) - 1; i >= 0; i-- {
				if h[i].Pos <= startPos {
					if sf.allowsEvent(&h[i]) {
						out = append(out, h[i])
						sent = append(sent, u)
					}
					break
				}
			}
		}
	}
	if complete {
		s.lazySent(roomID, full, sent)
	} else {
		s.lazySent(roomID, true, nil)
	}
	slices.SortFunc(out, func(a, b store.EventRow) int { return cmp.Compare(a.Pos, b.Pos) })
	return out, nil
}

// summary is the room summary. fullState is the state at the timeline's
// start when the sync has it (then the room name is read from it and the
// timeline), nil otherwise; with an unfiltered timeline the two make the
// room's whole state at to, and the members are counted from them instead
// of being read again. It also returns the heroes.
func (s *syncer) summary(ctx context.Context, roomID string, fullState, tl []store.EventRow) (Summary, []string, error) {
	st := s.e.p.Store
	var mems []store.Membership
	if fullState != nil && s.timelineComplete(roomID) {
		latest := map[string]int{}
		for _, rows := range [][]store.EventRow{fullState, tl} {
			for i := range rows {
				r := &rows[i]
				if r.Type != typeMember || r.StateKey == nil {
					continue
				}
				m := store.Membership{RoomID: roomID, UserID: *r.StateKey, Membership: r.Membership, EventID: r.EventID, Pos: r.Pos}
				if j, ok := latest[m.UserID]; ok {
					mems[j] = m
				} else {
					latest[m.UserID] = len(mems)
					mems = append(mems, m)
				}
			}
		}
		slices.SortFunc(mems, func(a, b store.Membership) int { return cmp.Compare(a.Pos, b.Pos) })
	} else {
		var err error
		if mems, err = s.e.roomMemberships(ctx, roomID, s.to.Pos); err != nil {
			return Summary{}, nil, fmt.Errorf("sync: room memberships: %w", err)
		}
	}
	joined, invited := 0, 0
	for _, m := range mems {
		switch m.Membership {
		case join:
			joined++
		case invite:
			invited++
		}
	}
	sum := Summary{JoinedMemberCount: &joined, InvitedMemberCount: &invited}

	var named bool
	if fullState != nil {
		var name, alias *store.EventRow
		for _, rows := range [][]store.EventRow{fullState, tl} {
			for i := range rows {
				switch r := &rows[i]; {
				case r.StateKey == nil || *r.StateKey != "":
				case r.Type == "m.room.name":
					name = r
				case r.Type == "m.room.canonical_alias":
					alias = r
				}
			}
		}
		named = contentString(name, "name") != "" || contentString(alias, "alias") != ""
	} else {
		for _, k := range [][2]string{{"m.room.name", "name"}, {"m.room.canonical_alias", "alias"}} {
			h, err := st.StateHistory(ctx, roomID, k[0], "")
			if err != nil {
				return Summary{}, nil, fmt.Errorf("sync: room name: %w", err)
			}
			for i := len(h) - 1; i >= 0; i-- {
				if h[i].Pos <= s.to.Pos {
					named = named || contentString(&h[i], k[1]) != ""
					break
				}
			}
		}
	}
	if named {
		return sum, nil, nil
	}
	// Heroes: the first five other joined or invited members by stream
	// order, else the ones who left.
	heroes := []string{}
	for _, want := range [][]string{{join, invite}, {leave, ban}} {
		for _, m := range mems {
			if len(heroes) == 5 {
				break
			}
			if m.UserID != s.req.UserID && slices.Contains(want, m.Membership) {
				heroes = append(heroes, m.UserID)
			}
		}
		if len(heroes) > 0 {
			break
		}
	}
	sum.Heroes = heroes
	return sum, heroes, nil
}

// roomMemsCache keeps, per room, the memberships read for a summary at a
// snapshot position: every member woken by one membership change builds
// its summary at the same position, and each reading the room's N
// memberships made one join into a room of thousands cost N² rows.
type roomMemsCache struct {
	mu gosync.Mutex
	m  map[string]roomMems
}

type roomMems struct {
	to   int64
	mems []store.Membership // read-only once stored
}

// roomMemsRooms bounds the rooms remembered.
const roomMemsRooms = 1024

// roomMemberships returns the room's memberships as read by a sync whose
// snapshot is to: from the cache when another sync of the same snapshot
// read them (as read, they are at least as new as to, as they always
// were), else from the store.
func (e *Engine) roomMemberships(ctx context.Context, roomID string, to int64) ([]store.Membership, error) {
	e.rm.mu.Lock()
	c, ok := e.rm.m[roomID]
	e.rm.mu.Unlock()
	if ok && c.to == to {
		return c.mems, nil
	}
	mems, err := e.p.Store.RoomMemberships(ctx, roomID)
	if err != nil {
		return nil, err
	}
	e.rm.mu.Lock()
	if e.rm.m == nil || len(e.rm.m) >= roomMemsRooms {
		e.rm.m = map[string]roomMems{}
	}
	if cur, ok := e.rm.m[roomID]; !ok || cur.to < to {
		e.rm.m[roomID] = roomMems{to: to, mems: mems}
	}
	e.rm.mu.Unlock()
	return mems, nil
}

// timelineComplete reports whether the timeline filter lets every event of
// the room through.
func (s *syncer) timelineComplete(roomID string) bool {
	f := &s.f.Room.Timeline
	return f.AllowsRoom(roomID) && f.Types == nil && f.NotTypes == nil && f.Senders == nil &&
		f.NotSenders == nil && f.ContainsURL == nil
}

// contentString reads content[key] of a stored event as a string.
func contentString(r *store.EventRow, key string) string {
	if r == nil {
		return ""
	}
	var v struct {
		Content map[string]json.RawMessage `json:"content"`
	}
	if json.Unmarshal(r.JSON, &v) != nil {
		return ""
	}
	var str string
	_ = json.Unmarshal(v.Content[key], &str)
	return str
}

// strippedTypes are the state events an invited or knocking user sees
// (spec: Stripped state), besides their own membership.
var strippedTypes = map[string]bool{
	"m.room.create":          true,
	"m.room.name":            true,
	"m.room.avatar":          true,
	"m.room.topic":           true,
	"m.room.join_rules":      true,
	"m.room.canonical_alias": true,
	"m.room.encryption":      true,
}

// strippedState is the stripped state of the room at the user's invite or
// knock, the membership event itself included.
func (s *syncer) strippedState(ctx context.Context, r roomAt) ([]json.RawMessage, error) {
	rows, err := s.e.p.Store.StateAt(ctx, r.roomID, r.at.pos)
	if err != nil {
		return nil, fmt.Errorf("sync: invite state: %w", err)
	}
	out := make([]json.RawMessage, 0, 8)
	for i := range rows {
		row := &rows[i]
		keep := (strippedTypes[row.Type] && *row.StateKey == "") ||
			(row.Type == typeMember && *row.StateKey == s.req.UserID)
		if !keep {
			continue
		}
		ev, err := s.strippedEvent(ctx, row)
		if err != nil {
			s.e.log.Error("sync: cannot format stored event", "event_id", row.EventID, "err", err)
			continue
		}
		out = append(out, ev)
		if row.Type == typeMember {
			out = append(out, remoteInviteState(row)...)
		}
	}
	return out, nil
}

// remoteInviteState is the stripped state another server sent with an
// invite into a room this server is not in, or answered a knock with (kept in the invite's
// unsigned data; the room's state is not here until a join).
func remoteInviteState(row *store.EventRow) []json.RawMessage {
	if len(row.Unsigned) == 0 {
		return nil
	}
	var u struct {
		Invite []json.RawMessage `json:"invite_room_state"`
		Knock  []json.RawMessage `json:"knock_room_state"`
	}
	if json.Unmarshal(row.Unsigned, &u) != nil {
		return nil
	}
	var out []json.RawMessage
	for _, raw := range append(u.Invite, u.Knock...) {
		var e struct {
			Type     string          `json:"type"`
			StateKey *string         `json:"state_key"`
			Sender   string          `json:"sender"`
			Content  json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &e) != nil || e.StateKey == nil || !strippedTypes[e.Type] && e.Type != typeMember {
			continue
		}
		b, err := json.Marshal(e)
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

// format formats stored events for the client. An event that cannot be
// formatted (a stored PDU that no longer parses) is logged and left out
// rather than failing every sync of the room.
func (s *syncer) format(ctx context.Context, rows []store.EventRow) ([]json.RawMessage, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]json.RawMessage, 0, len(rows))
	for i := range rows {
		ev, err := s.clientEvent(ctx, &rows[i])
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.e.log.Error("sync: cannot format stored event", "event_id", rows[i].EventID, "err", err)
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

// visibility returns (and caches for this sync) the user's read rules in
// a room, nil when the engine has none.
func (s *syncer) visibility(ctx context.Context, roomID string) (Visibility, error) {
	if s.e.p.Visibility == nil {
		return nil, nil
	}
	s.mu.Lock()
	v, ok := s.vis[roomID]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := s.e.p.Visibility(ctx, s.req.UserID, roomID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.vis == nil {
		s.vis = map[string]Visibility{}
	}
	s.vis[roomID] = v
	s.mu.Unlock()
	return v, nil
}

// dropIgnoredInvites leaves out invites sent by users the syncing user
// ignores (m.ignored_user_list): the spec hides all their events,
// invites included.
func (s *syncer) dropIgnoredInvites(ctx context.Context, invites []roomAt) ([]roomAt, error) {
	if len(invites) == 0 {
		return invites, nil
	}
	raw, err := s.e.p.Store.AccountData(ctx, s.req.UserID, "", "m.ignored_user_list")
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(raw) == 0) {
		return invites, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync: ignored users: %w", err)
	}
	var list struct {
		Ignored map[string]json.RawMessage `json:"ignored_users"`
	}
	if json.Unmarshal(raw, &list) != nil || len(list.Ignored) == 0 {
		return invites, nil
	}
	kept := invites[:0]
	for _, r := range invites {
		ev, err := s.e.p.Store.Event(ctx, r.at.eventID)
		if err != nil {
			return nil, fmt.Errorf("sync: invite event: %w", err)
		}
		if _, ignored := list.Ignored[ev.Sender]; !ignored {
			kept = append(kept, r)
		}
	}
	return kept, nil
}
