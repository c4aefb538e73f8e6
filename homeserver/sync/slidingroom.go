package sync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	gosync "sync"

	"github.com/salonhq/salon/homeserver/store"
)

// wanted is a room matched by lists or subscriptions, with the combined
// room config (MSC4186 "Combining room configs").
type wanted struct {
	c     *candidate
	cfg   RoomConfig
	lists []string
	// sent is the combined config as the connection remembers it, shared
	// by the rooms that have the same one.
	sent *sentConfig
}

// sentConfig is a room config a room was sent with.
type sentConfig struct {
	limit int
	rs    RequiredState
}

// widens reports whether c asks for more than o was sent with: a larger
// timeline, or state o's selection does not cover (MSC4186 "Changing room
// configs"; a narrower config changes nothing already sent).
func (c *sentConfig) widens(o *sentConfig) bool {
	return c != o && (c.limit > o.limit || !o.rs.covers(&c.rs))
}

func (w *wanted) add(cfg RoomConfig) {
	if w.cfg.RequiredState.include == nil && w.cfg.RequiredState.exclude == nil && !w.cfg.RequiredState.lazy && w.cfg.TimelineLimit == 0 {
		w.cfg = cfg
		return
	}
	w.cfg.TimelineLimit = max(w.cfg.TimelineLimit, cfg.TimelineLimit)
	w.cfg.RequiredState.merge(&cfg.RequiredState)
}

func (w *wanted) cfgKey() string {
	return fmt.Sprintf("%d#%s", w.cfg.TimelineLimit, w.cfg.RequiredState.key())
}

// slide reads one snapshot and builds the response from base.
func (e *Engine) slide(ctx context.Context, req *SlidingRequest, base *connState) (*SlidingResponse, *connState, error) {
	if e.p.Notifier.needsReseed() {
		e.reseedMu.Lock()
		err := e.seed(ctx)
		e.reseedMu.Unlock()
		if err != nil {
			return nil, nil, err
		}
	}
	now := e.p.Now()
	fresh := req.Pos == ""
	sreq := &Request{UserID: req.UserID, DeviceID: req.DeviceID}
	s := &syncer{
		e:       e,
		req:     sreq,
		f:       &sreq.Filter,
		nowMS:   now.UnixMilli(),
		initial: fresh,
		hist:    map[string][]store.EventRow{},
		roomAD:  map[string][]store.AccountDataRow{},
	}
	s.to.Pos = e.p.Notifier.watermark(e.p.Store.CurrentPos(), now)
	s.since = base.tok
	if s.since.Pos > s.to.Pos {
		s.since.Pos = s.to.Pos
	}
	next := base.next()
	next.tok = s.to
	next.tok.Typing, next.tok.Presence = base.tok.Typing, base.tok.Presence
	for _, id := range req.UnsubscribeRooms {
		delete(next.subs, id)
	}
	for id, c := range req.RoomSubscriptions {
		next.subs[id] = c
	}

	cands, err := e.candidates(ctx, s, base.rooms)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]*candidate, len(cands))
	joined := map[string]bool{}
	for _, c := range cands {
		byID[c.roomID] = c
		if c.membership == join {
			joined[c.roomID] = true
		}
	}
	dm, err := e.directRooms(ctx, s, base)
	if err != nil {
		return nil, nil, err
	}
	next.dm = dm

	resp := &SlidingResponse{Lists: map[string]SlidingListResult{}, Rooms: map[string]*SlidingRoom{}, Extensions: map[string]any{}}
	want := map[string]*wanted{}
	inList := map[string][]string{} // list → rooms in its window
	next.counts = map[string]int{}
	keys := slices.Sorted(maps.Keys(req.Lists))
	var tags map[string][]string
	for _, key := range keys {
		if f := req.Lists[key].Filters; f != nil && (f.Tags != nil || f.NotTags != nil) && tags == nil {
			if tags, err = e.roomTags(ctx, s, base); err != nil {
				return nil, nil, err
			}
		}
	}
	next.tags = tags
	for _, key := range keys {
		l := req.Lists[key]
		lf := &listFilter{f: l.Filters, dm: dm, tags: tags}
		if l.Filters != nil && l.Filters.Spaces != nil {
			if lf.children, err = e.spaceChildren(ctx, s, l.Filters.Spaces, joined); err != nil {
				return nil, nil, err
			}
		}
		var rooms []*candidate
		for _, c := range cands {
			ok, err := e.allows(ctx, lf, c)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				rooms = append(rooms, c)
			}
		}
		resp.Lists[key] = SlidingListResult{Count: len(rooms)}
		next.counts[key] = len(rooms)
		ranges := l.Ranges
		if l.Ranges == nil {
			ranges = [][2]int{{0, len(rooms) - 1}}
		}
		for _, r := range ranges {
			for i := r[0]; i <= r[1] && i < len(rooms); i++ {
				c := rooms[i]
				w := want[c.roomID]
				if w == nil {
					w = &wanted{c: c}
					want[c.roomID] = w
				}
				w.add(l.RoomConfig)
				if !slices.Contains(w.lists, key) {
					w.lists = append(w.lists, key)
					inList[key] = append(inList[key], c.roomID)
				}
			}
		}
	}
	for id, cfg := range next.subs {
		c := byID[id]
		if c == nil {
			// Not a room the user may see (MSC4186 "Subscriptions").
			continue
		}
		w := want[id]
		if w == nil {
			w = &wanted{c: c}
			want[id] = w
		}
		w.add(cfg)
	}

	// Rooms with the same config share one sentConfig (a connection
	// remembers it for every room it was sent).
	interned := map[string]*sentConfig{}
	for _, w := range want {
		k := w.cfgKey()
		sc := interned[k]
		if sc == nil {
			sc = &sentConfig{limit: w.cfg.TimelineLimit, rs: w.cfg.RequiredState}
			interned[k] = sc
		}
		w.sent = sc
	}

	// The rooms to send: new to the connection, sent with another config
	// or membership, or changed since.
	known := make(map[string]int64, len(want))
	for id := range want {
		if p := base.rooms[id]; p != nil {
			known[id] = p.pos
		}
	}
	changed := map[string]bool{}
	for _, id := range e.p.Notifier.roomsAfter(known) {
		if known[id] < s.to.Pos {
			changed[id] = true
		}
	}
	var send []*wanted
	for id, w := range want {
		p := base.rooms[id]
		if p == nil || w.sent.widens(p.cfg) || p.membership != w.c.membership || p.memberPos != w.c.memPos ||
			p.isDM != dm[id] || (changed[id] && w.c.membership == join) {
			send = append(send, w)
		}
	}
	sort.Slice(send, func(i, j int) bool { return send[i].c.roomID < send[j].c.roomID })

	b := &roomBuilder{s: s, base: base, fresh: fresh, dm: dm, out: resp.Rooms, sent: next.rooms, tl: map[string][]string{}}
	err = s.forEach(ctx, roomIDs(send), func(ctx context.Context, id string) error {
		return b.build(ctx, want[id])
	})
	if err != nil {
		return nil, nil, err
	}
	if err := e.extensions(ctx, s, req, base, next, resp, want, inList, b); err != nil {
		return nil, nil, err
	}
	return resp, next, nil
}

func roomIDs(ws []*wanted) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.c.roomID
	}
	return out
}

// roomBuilder builds the room results of one response, concurrently.
type roomBuilder struct {
	s     *syncer
	base  *connState
	fresh bool
	dm    map[string]bool

	mu   gosync.Mutex
	out  map[string]*SlidingRoom
	sent map[string]*sentRoom
	tl   map[string][]string // room → timeline event IDs sent (for receipts)
}

func (b *roomBuilder) put(id string, r *SlidingRoom, sr *sentRoom, tl []store.EventRow) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent[id] = sr
	if r == nil {
		return
	}
	b.out[id] = r
	ids := make([]string, len(tl))
	for i := range tl {
		ids[i] = tl[i].EventID
	}
	b.tl[id] = ids
}

// initialRooms lists the rooms this response sends with initial set.
func (b *roomBuilder) initialRooms() map[string]bool {
	out := map[string]bool{}
	for id, r := range b.out {
		if r.Initial {
			out[id] = true
		}
	}
	return out
}

func (b *roomBuilder) build(ctx context.Context, w *wanted) error {
	c := w.c
	s := b.s
	prev := b.base.rooms[c.roomID]
	sr := &sentRoom{pos: s.to.Pos, cfg: w.sent, membership: c.membership, memberPos: c.memPos, isDM: b.dm[c.roomID], notif: -1, highlight: -1}
	if prev != nil {
		sr.rcptPos, sr.adPos, sr.typing = prev.rcptPos, prev.adPos, prev.typing
	}
	r := &SlidingRoom{Membership: c.membership, Lists: w.lists, BumpStamp: c.bump}
	if c.membership == invite || c.membership == knock {
		st, err := s.strippedState(ctx, roomAt{roomID: c.roomID, at: memAt{c.membership, c.memPos, c.eventID}})
		if err != nil {
			return err
		}
		r.Initial = true
		r.StrippedState = st
		if c.membership == invite {
			r.InviteState = st
		}
		if sr.isDM {
			r.IsDM = &sr.isDM
		}
		b.put(c.roomID, r, sr, nil)
		return nil
	}
	if (c.membership == leave || c.membership == ban) && !c.wasJoined {
		// Never joined (an invite withdrawn or rejected, a knock refused):
		// only the membership event.
		row, err := s.e.p.Store.Event(ctx, c.eventID)
		if err != nil {
			return fmt.Errorf("sync: leave event: %w", err)
		}
		r.Initial = true
		if r.Timeline, err = s.format(ctx, []store.EventRow{row}); err != nil {
			return err
		}
		b.put(c.roomID, r, sr, nil)
		return nil
	}

	upto := s.to.Pos
	if c.membership != join {
		upto = min(upto, c.memPos)
	}
	initial := prev == nil || sr.cfg.widens(prev.cfg) || (prev.membership != join && prev.membership != c.membership)
	after := int64(0)
	if !initial {
		after = prev.pos
		if prev.membership != join {
			initial = true
			after = 0
		}
	}
	r.Initial = initial
	tl, limited, err := s.slideTimeline(ctx, c.roomID, after, upto, w.cfg.TimelineLimit)
	if err != nil {
		return err
	}
	vis, err := s.visibility(ctx, c.roomID)
	if err != nil {
		return err
	}
	seen := func(rows []store.EventRow) []store.EventRow {
		if vis == nil {
			return rows
		}
		kept := rows[:0:0]
		for _, row := range rows {
			if vis.SeesKnock(row) {
				kept = append(kept, row)
			}
		}
		return kept
	}

	// State: the whole state at upto for an initial room; otherwise what
	// changed since the room was last sent (the timeline's state events,
	// or, across a gap, the state rows written in it).
	var state, changedState []store.EventRow
	if initial || limited {
		rows, err := s.e.p.Store.StateAt(ctx, c.roomID, upto)
		if err != nil {
			return fmt.Errorf("sync: state: %w", err)
		}
		rows = seen(rows)
		if initial {
			state = rows
		} else {
			for _, row := range rows {
				if row.Pos > after {
					changedState = append(changedState, row)
				}
			}
		}
	} else {
		latest := map[[2]string]int{}
		for _, row := range seen(tl) {
			if row.StateKey == nil {
				continue
			}
			k := [2]string{row.Type, *row.StateKey}
			if i, ok := latest[k]; ok {
				changedState[i] = row
			} else {
				latest[k] = len(changedState)
				changedState = append(changedState, row)
			}
		}
	}
	pick := state
	if !initial {
		pick = changedState
	}

	me := s.req.UserID
	rs := &w.cfg.RequiredState
	var required []store.EventRow
	have := map[string]bool{}
	for _, row := range pick {
		if rs.wants(row.Type, *row.StateKey, me) {
			required = append(required, row)
			if row.Type == typeMember {
				have[*row.StateKey] = true
			}
		}
	}
	if rs.lazy {
		// The member events the client holds: none for an initial room,
		// nor after a gap (MSC4186: a client flushes its member cache
		// when the timeline is limited).
		var held []string
		if !initial && !limited && prev.members != nil {
			held = prev.members
		}
		added := map[string]bool{}
		holds := func(u string) bool {
			_, ok := slices.BinarySearch(held, u)
			return ok || added[u]
		}
		for u := range have {
			added[u] = true
		}
		need := map[string]bool{}
		for i := range tl {
			need[tl[i].Sender] = true
			if tl[i].Type == typeMember && tl[i].StateKey != nil {
				need[*tl[i].StateKey] = true
			}
		}
		for _, u := range slices.Sorted(maps.Keys(need)) {
			if holds(u) {
				continue
			}
			row, ok, err := s.memberAt(ctx, c.roomID, u, upto, pick)
			if err != nil {
				return err
			}
			if ok {
				required = append(required, row)
			}
			added[u] = true
		}
		sr.members = slices.Concat(held, slices.Collect(maps.Keys(added)))
		slices.Sort(sr.members)
		sr.members = slices.Compact(sr.members)
		if sr.members == nil {
			sr.members = []string{}
		}
	}
	if r.RequiredState, err = s.format(ctx, required); err != nil {
		return err
	}
	if r.Timeline, err = s.format(ctx, tl); err != nil {
		return err
	}
	r.Limited = limited
	if len(tl) > 0 {
		r.PrevBatch = PrevBatchToken(tl[0].Pos)
	} else if initial {
		r.PrevBatch = PrevBatchToken(upto + 1)
	}
	if c.membership == join {
		live := 0
		if !b.fresh {
			for i := range tl {
				if tl[i].Pos > s.since.Pos {
					live++
				}
			}
		}
		r.NumLive = &live
	}

	// Name, avatar, heroes and member counts: all of them for an initial
	// room, what the changed state touches otherwise.
	var nameRow, avatarRow *store.EventRow
	members := false
	for i := range pick {
		row := &pick[i]
		switch {
		case row.Type == "m.room.name" && *row.StateKey == "":
			nameRow = row
		case row.Type == "m.room.avatar" && *row.StateKey == "":
			avatarRow = row
		case row.Type == typeMember:
			members = true
		}
	}
	if nameRow != nil {
		n := contentString(nameRow, "name")
		r.Name = &n
	}
	if avatarRow != nil {
		a := contentString(avatarRow, "url")
		r.Avatar = &a
	}
	// A former member's counts are those of the state at the leave (an
	// initial room's); the room's later members are not theirs to count.
	if initial || (c.membership == join && (members || nameRow != nil)) {
		var full []store.EventRow
		if initial {
			full = state
		}
		sum, heroes, err := s.summary(ctx, c.roomID, full, nil)
		if err != nil {
			return err
		}
		r.JoinedCount, r.InvitedCount = sum.JoinedMemberCount, sum.InvitedMemberCount
		for _, h := range heroes {
			hero := Hero{UserID: h}
			if row, ok, err := s.memberAt(ctx, c.roomID, h, upto, state); err == nil && ok {
				hero.DisplayName = contentString(&row, "displayname")
				hero.AvatarURL = contentString(&row, "avatar_url")
			}
			r.Heroes = append(r.Heroes, hero)
		}
	}
	if (initial && sr.isDM) || (!initial && prev.isDM != sr.isDM) {
		r.IsDM = &sr.isDM
	}
	if s.e.p.Counts != nil && c.membership == join {
		n, h, err := s.e.p.Counts(ctx, me, c.roomID, s.since.Pos)
		if err != nil {
			s.e.log.Warn("sliding sync: unread counts", "room", c.roomID, "err", err)
		} else {
			r.NotificationCount, r.HighlightCount = &n, &h
			sr.notif, sr.highlight = n, h
		}
	}
	if !initial && len(r.Timeline) == 0 && len(r.RequiredState) == 0 && r.Name == nil && r.Avatar == nil &&
		r.JoinedCount == nil && r.IsDM == nil && sr.notif == prev.notif && sr.highlight == prev.highlight {
		// Nothing the client can see changed (a receipt of someone else,
		// an event it may not read): remember the position, send nothing.
		b.put(c.roomID, nil, sr, nil)
		return nil
	}
	b.put(c.roomID, r, sr, tl)
	return nil
}

// memberAt is userID's member event in the room at pos: from rows (a
// state already read) when it is there, else from the store.
func (s *syncer) memberAt(ctx context.Context, roomID, userID string, pos int64, rows []store.EventRow) (store.EventRow, bool, error) {
	for i := range rows {
		if rows[i].Type == typeMember && *rows[i].StateKey == userID {
			return rows[i], true, nil
		}
	}
	h, err := s.e.p.Store.StateHistory(ctx, roomID, typeMember, userID)
	if err != nil {
		return store.EventRow{}, false, fmt.Errorf("sync: member history: %w", err)
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Pos <= pos {
			return h[i], true, nil
		}
	}
	return store.EventRow{}, false, nil
}

// slideTimeline is the newest limit events with after < Pos <= upto that
// the user may read, oldest first, and whether readable events were left
// out.
func (s *syncer) slideTimeline(ctx context.Context, roomID string, after, upto int64, limit int) ([]store.EventRow, bool, error) {
	if upto <= after {
		return nil, false, nil
	}
	return s.readableTimeline(ctx, roomID, after, upto, limit, limit+1, nil)
}
