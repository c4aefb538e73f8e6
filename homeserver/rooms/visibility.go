package rooms

import (
	"context"
	"encoding/json"
	"slices"
	"sort"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Reader answers whether one user may read each event of one room, by the
// history-visibility rules of the Client-Server API ("History
// visibility"): with the room's history_visibility and the user's
// membership as they were when the event was sent.
type Reader struct {
	UserID  string
	RoomID  string
	members []store.EventRow // the user's membership events, oldest first
	vis     []store.EventRow // history_visibility events, oldest first
	// visOf is each vis event's history_visibility, parsed once: CanRead
	// runs for every event of every woken sync.
	visOf []string
	// Moderator is true for users whose power level lets them kick: they
	// see knocks, which other members do not.
	Moderator bool
}

// errNoRead answers a read of a room the user may not read, and of a room
// that does not exist.
var errNoRead = mxerr.Forbid("You are not allowed to read this room")

// NewReader loads what is needed to judge a user's reads in a room. It
// returns M_FORBIDDEN when the user can read nothing there, so a room's
// existence is not revealed.
func (s *Service) NewReader(ctx context.Context, roomID, userID string) (*Reader, error) {
	s.mu.RLock()
	room := s.rooms[roomID]
	s.mu.RUnlock()
	if room == nil || room.derived.Load() == nil {
		// Not loaded (or not lately used): load it, which also tells
		// a room that does not exist.
		r, err := s.lockRoom(ctx, roomID)
		if err != nil {
			if me, ok := err.(*mxerr.Error); ok && me.Code == mxerr.NotFound {
				return nil, errNoRead
			}
			return nil, err
		}
		r.derive()
		r.mu.Unlock()
		room = r
	}
	room.readersMu.RLock()
	cached, gen := room.readers[userID], room.stateGen
	room.readersMu.RUnlock()
	if cached != nil {
		return cached, nil
	}
	rd, err := s.newReader(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	room.readersMu.Lock()
	if room.stateGen == gen {
		if room.readers == nil {
			room.readers = map[string]*Reader{}
		}
		if len(room.readers) < 10_000 {
			room.readers[userID] = rd
		}
	}
	room.readersMu.Unlock()
	return rd, nil
}

func (s *Service) newReader(ctx context.Context, roomID, userID string) (*Reader, error) {
	mem, err := s.p.Store.StateHistory(ctx, roomID, "m.room.member", userID)
	if err != nil {
		return nil, err
	}
	vis, err := s.p.Store.StateHistory(ctx, roomID, "m.room.history_visibility", "")
	if err != nil {
		return nil, err
	}
	if n := len(mem); n > 0 && mem[n-1].Membership != "join" && mem[n-1].Membership != "invite" && mem[n-1].Membership != "knock" {
		// A room the user left and then forgot reads as one they were
		// never in (Synapse: forgotten rooms cannot be paginated).
		forgotten, err := s.forgotten(ctx, roomID, userID)
		if err != nil {
			return nil, err
		}
		if forgotten {
			mem = nil
		}
	}
	r := &Reader{UserID: userID, RoomID: roomID, members: mem, vis: vis}
	r.parseVisibility()
	if !r.everReadable() {
		return nil, errNoRead
	}
	if userPL, _, err := s.PowerLevels(ctx, roomID); err == nil {
		if kick, err := s.kickLevel(ctx, roomID); err == nil {
			r.Moderator = userPL(userID) >= kick
		}
	}
	return r, nil
}

func visibilityOf(row store.EventRow) string {
	var ev struct {
		Content struct {
			V string `json:"history_visibility"`
		} `json:"content"`
	}
	_ = json.Unmarshal(row.JSON, &ev)
	switch v := ev.Content.V; v {
	case "world_readable", "shared", "invited", "joined":
		return v
	}
	return "shared"
}

// parseVisibility fills visOf from vis.
func (r *Reader) parseVisibility() {
	r.visOf = make([]string, len(r.vis))
	for i, v := range r.vis {
		r.visOf[i] = visibilityOf(v)
	}
}

// visibilityBefore is the history visibility in force for an event at pos:
// that of the last change before it, "shared" before any. History
// backfilled from another server (pos < 0) older than every change held
// here has the oldest one held: what the room said before is not known
// here, and the oldest setting known is the one to keep to.
func (r *Reader) visibilityBefore(pos int64) string {
	i := sort.Search(len(r.vis), func(i int) bool { return r.vis[i].Pos >= pos })
	if i == 0 {
		if pos < 0 && len(r.visOf) > 0 {
			return r.visOf[0]
		}
		return "shared"
	}
	return r.visOf[i-1]
}

// at returns the last row before pos in rows sorted by position, or nil.
func at(rows []store.EventRow, pos int64) *store.EventRow {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].Pos >= pos })
	if i == 0 {
		return nil
	}
	return &rows[i-1]
}

// MembershipAfter is the user's membership just after the event at pos,
// "leave" when they had none: unsigned.membership (Matrix 1.11, MSC4115).
func (r *Reader) MembershipAfter(pos int64) string {
	if m := at(r.members, pos+1); m != nil {
		return m.Membership
	}
	return "leave"
}

// CurrentMembership is the user's membership now.
func (r *Reader) CurrentMembership() string {
	if len(r.members) == 0 {
		return ""
	}
	return r.members[len(r.members)-1].Membership
}

func (r *Reader) everReadable() bool {
	for _, v := range r.visOf {
		if v == "world_readable" {
			return true
		}
	}
	for _, m := range r.members {
		if m.Membership == "join" || m.Membership == "invite" {
			return true
		}
	}
	return false
}

// CanRead reports whether the user may read the event at pos (of the
// given sender and state key).
func (r *Reader) CanRead(ev store.EventRow) bool {
	vis := r.visibilityBefore(ev.Pos)
	if vis == "world_readable" {
		return true
	}
	mem := ""
	if m := at(r.members, ev.Pos); m != nil {
		mem = m.Membership
	}
	// Users always see their own membership changes.
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == r.UserID {
		return true
	}
	if !r.SeesKnock(ev) {
		return false
	}
	if mem == "join" {
		return true
	}
	if vis == "shared" {
		for _, m := range r.members {
			if m.Pos > ev.Pos && m.Membership == "join" {
				return true
			}
		}
	}
	return vis == "invited" && mem == "invite"
}

// SeesCurrentState reports whether the user may see the room as it is now:
// they are joined, or its history is world_readable.
func (r *Reader) SeesCurrentState(now int64) bool {
	if r.CurrentMembership() == "join" {
		return true
	}
	return len(r.vis) > 0 && r.visibilityBefore(now+1) == "world_readable"
}

// StateBound is the position whose state the user may see: now when joined
// (or the room is world_readable), else the moment their last stay as a
// member ended. Someone who was never joined (an invitee, say) sees no
// state: invitees get the stripped state /sync gives them, nothing more.
// 0 means none.
func (r *Reader) StateBound(now int64) int64 {
	if r.SeesCurrentState(now) {
		return now
	}
	for i := len(r.members) - 1; i >= 0; i-- {
		if r.members[i].Membership == "join" {
			if i+1 < len(r.members) {
				return r.members[i+1].Pos
			}
			return now
		}
	}
	return 0
}

// FirstReadableState is the first position at or after pos whose state the
// user may see, by the rule /messages applies to events: the state just
// after position q is theirs to see when an event right after q would be.
// The state at bound (StateBound) is always theirs; past it, nothing is.
func (r *Reader) FirstReadableState(pos, bound int64) int64 {
	if pos >= bound {
		return bound
	}
	cands := []int64{pos}
	for _, rows := range [][]store.EventRow{r.members, r.vis} {
		for _, row := range rows {
			if row.Pos > pos && row.Pos < bound {
				cands = append(cands, row.Pos)
			}
		}
	}
	slices.Sort(cands)
	for _, q := range cands {
		if r.CanRead(store.EventRow{Pos: q + 1, Type: "m.room.message"}) {
			return q
		}
	}
	return bound
}

// SeesKnock is false for another user's knock when the reader is not a
// moderator: knocks are for the people who can answer them.
func (r *Reader) SeesKnock(ev store.EventRow) bool {
	if ev.Type != "m.room.member" || ev.Membership != "knock" || ev.StateKey == nil || *ev.StateKey == r.UserID {
		return true
	}
	return r.Moderator
}

// FilterState drops what the reader may not see from a state list.
func (r *Reader) FilterState(rows []store.EventRow) []store.EventRow {
	out := rows[:0]
	for _, row := range rows {
		if r.SeesKnock(row) {
			out = append(out, row)
		}
	}
	return out
}

// forgotten reports whether the user forgot the room.
func (s *Service) forgotten(ctx context.Context, roomID, userID string) (bool, error) {
	ms, err := s.p.Store.UserMemberships(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.RoomID == roomID {
			return m.Forgotten, nil
		}
	}
	return false, nil
}
