package sync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	gosync "sync"

	"github.com/salonhq/salon/homeserver/store"
)

// The room list of sliding sync: which rooms a user's lists may show, in
// which order, through which filters.

// candidate is a room the user's lists may show.
type candidate struct {
	roomID     string
	membership string
	memPos     int64 // position of the user's membership event
	eventID    string
	wasJoined  bool  // leave or ban: the user was joined before it
	bump       int64 // ordering key, greater is more recent
}

// candidates lists the rooms, newest activity first: joined, invited and
// knocked rooms; rooms the user was kicked or banned from after being
// joined; and rooms the connection was already sent that the user left
// (MSC4186 "Lists"). Membership is read as of s.to.
//
// The membership cache serves new connections too: a phone opening the
// app starts one each time, and the cache is kept exact by the Notifier.
func (e *Engine) candidates(ctx context.Context, s *syncer, sent map[string]*sentRoom) ([]*candidate, error) {
	mems, err := e.userMemberships(ctx, s.req.UserID, true)
	if err != nil {
		return nil, err
	}
	out := make([]*candidate, 0, len(mems))
	var joined []string
	for _, m := range mems {
		if m.Forgotten {
			continue
		}
		cur := memAt{m.Membership, m.Pos, m.EventID}
		if m.Pos > s.to.Pos {
			if cur, err = s.membershipAt(ctx, m.RoomID, s.to.Pos); err != nil {
				return nil, err
			}
		}
		c := &candidate{roomID: m.RoomID, membership: cur.membership, memPos: cur.pos, eventID: cur.eventID, bump: cur.pos}
		switch cur.membership {
		case join:
			joined = append(joined, m.RoomID)
		case invite, knock:
		case leave, ban:
			was, err := s.joinedBefore(ctx, m.RoomID, cur)
			if err != nil {
				return nil, err
			}
			c.wasJoined = was
			if sent[m.RoomID] == nil {
				if !was {
					continue
				}
				kicked, err := e.kickedBy(ctx, cur.eventID, s.req.UserID)
				if err != nil {
					return nil, err
				}
				if !kicked {
					continue
				}
			}
		default:
			continue
		}
		out = append(out, c)
	}
	bumps, err := e.bumps(ctx, joined)
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		if b, ok := bumps[c.roomID]; ok && c.membership == join {
			c.bump = b
		}
	}
	slices.SortFunc(out, func(a, b *candidate) int {
		if c := cmp.Compare(b.bump, a.bump); c != 0 {
			return c
		}
		return cmp.Compare(a.roomID, b.roomID)
	})
	return out, nil
}

// kickedBy reports whether the membership event was sent by someone other
// than the user (a kick or a ban), cached: events never change sender.
func (e *Engine) kickedBy(ctx context.Context, eventID, userID string) (bool, error) {
	e.kicked.mu.Lock()
	k, ok := e.kicked.m[eventID]
	e.kicked.mu.Unlock()
	if ok {
		return k, nil
	}
	row, err := e.p.Store.Event(ctx, eventID)
	if err != nil {
		return false, fmt.Errorf("sync: membership event: %w", err)
	}
	k = row.Sender != userID
	e.kicked.mu.Lock()
	if e.kicked.m == nil || len(e.kicked.m) >= kickedEntries {
		e.kicked.m = map[string]bool{}
	}
	e.kicked.m[eventID] = k
	e.kicked.mu.Unlock()
	return k, nil
}

// kickedCache holds kickedBy's answers by membership event ID: at most
// kickedEntries, dropped all at once when full (every left room of every
// sliding sync user would otherwise stay for the process's life).
type kickedCache struct {
	mu gosync.Mutex
	m  map[string]bool
}

const kickedEntries = 100_000

// bumpCache keeps rooms' bump positions; an entry is good while the
// Notifier has seen nothing newer in the room than when it was read.
type bumpCache struct {
	mu gosync.Mutex
	m  map[string]bumpEntry
}

type bumpEntry struct{ stamp, checked int64 }

// bumpScan is how many of a changed room's new events are read (from the
// store's memo of recent events, usually without SQL) to update its bump
// position; past it the position is queried.
const bumpScan = 32

// bumps returns the bump positions of the rooms (MSC4186 bump_stamp).
func (e *Engine) bumps(ctx context.Context, rooms []string) (map[string]int64, error) {
	out := make(map[string]int64, len(rooms))
	known := make(map[string]int64, len(rooms))
	var missing []string
	e.bc.mu.Lock()
	for _, id := range rooms {
		if b, ok := e.bc.m[id]; ok {
			out[id] = b.stamp
			known[id] = b.checked
		} else {
			missing = append(missing, id)
		}
	}
	e.bc.mu.Unlock()
	head := e.p.Store.CurrentPos()
	fresh := map[string]bumpEntry{}
	// A room that changed since its entry was read: its new events say
	// whether a message-like one came.
	for _, id := range e.p.Notifier.roomsAfter(known) {
		evs, err := e.p.Store.RoomEvents(ctx, id, known[id], head+1, bumpScan, true)
		if err != nil {
			return nil, fmt.Errorf("sync: room events: %w", err)
		}
		if len(evs) == bumpScan {
			missing = append(missing, id)
			continue
		}
		stamp := out[id]
		for i := range evs {
			if slices.Contains(store.BumpTypes, evs[i].Type) {
				stamp = max(stamp, evs[i].Pos)
				break
			}
		}
		fresh[id] = bumpEntry{stamp: stamp, checked: head}
	}
	if len(missing) > 0 {
		got, err := e.p.Store.BumpPositions(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("sync: bump positions: %w", err)
		}
		for _, id := range missing {
			fresh[id] = bumpEntry{stamp: got[id], checked: head}
		}
	}
	if len(fresh) == 0 {
		return out, nil
	}
	e.bc.mu.Lock()
	if e.bc.m == nil {
		e.bc.m = map[string]bumpEntry{}
	}
	for id, b := range fresh {
		out[id] = b.stamp
		if old, ok := e.bc.m[id]; !ok || old.checked < b.checked {
			e.bc.m[id] = b
		}
	}
	e.bc.mu.Unlock()
	return out, nil
}

// roomMeta is what the filters need to know of a room.
type roomMeta struct {
	typ       string
	encrypted bool
	checked   int64 // stream head when encrypted was read (false only)
}

// meta returns the room's type and whether it is encrypted. The type never
// changes and encryption cannot be turned off, so only "not encrypted" is
// read again, once the room had new events.
func (e *Engine) meta(ctx context.Context, roomID string, needEnc bool) (roomMeta, error) {
	v, ok := e.metas.Load(roomID)
	var m roomMeta
	if ok {
		m = v.(roomMeta)
		if !needEnc || m.encrypted || len(e.p.Notifier.roomsAfter(map[string]int64{roomID: m.checked})) == 0 {
			return m, nil
		}
	} else {
		r, err := e.p.Store.Room(ctx, roomID)
		if err != nil {
			return m, fmt.Errorf("sync: room %s: %w", roomID, err)
		}
		m.typ = r.RoomType
	}
	head := e.p.Store.CurrentPos()
	h, err := e.p.Store.StateHistory(ctx, roomID, "m.room.encryption", "")
	if err != nil {
		return m, fmt.Errorf("sync: encryption state: %w", err)
	}
	m.encrypted, m.checked = len(h) > 0, head
	e.metas.Store(roomID, m)
	return m, nil
}

// directRooms is the user's m.direct account data, the rooms that are
// direct chats: the connection's copy (base) unless the user's account
// data changed since, which the store answers from its memo.
func (e *Engine) directRooms(ctx context.Context, s *syncer, base *connState) (map[string]bool, error) {
	userID := s.req.UserID
	if base.dm != nil {
		rows, err := e.p.Store.AccountDataSince(ctx, userID, s.since.Pos, s.to.Pos)
		if err != nil {
			return nil, fmt.Errorf("sync: account data: %w", err)
		}
		dm := base.dm
		for _, r := range rows {
			if r.RoomID == "" && r.Type == "m.direct" {
				dm = parseDirect(r.Content)
			}
		}
		return dm, nil
	}
	b, err := e.p.Store.AccountData(ctx, userID, "", "m.direct")
	if err != nil {
		if isNotFound(err) {
			return map[string]bool{}, nil
		}
		return nil, fmt.Errorf("sync: m.direct: %w", err)
	}
	return parseDirect(b), nil
}

// roomTags is the user's room tags (m.tag room account data), room → tag
// names: the connection's copy brought up to date with the account data
// changed since, or, the first time a list filters on tags, all of it.
func (e *Engine) roomTags(ctx context.Context, s *syncer, base *connState) (map[string][]string, error) {
	from := int64(0)
	tags := map[string][]string{}
	if base.tags != nil {
		from = s.since.Pos
		maps.Copy(tags, base.tags)
	}
	rows, err := e.p.Store.AccountDataSince(ctx, s.req.UserID, from, s.to.Pos)
	if err != nil {
		return nil, fmt.Errorf("sync: account data: %w", err)
	}
	for _, r := range rows {
		if r.RoomID == "" || r.Type != "m.tag" {
			continue
		}
		var c struct {
			Tags map[string]json.RawMessage `json:"tags"`
		}
		_ = json.Unmarshal(r.Content, &c)
		if len(c.Tags) == 0 {
			delete(tags, r.RoomID)
		} else {
			tags[r.RoomID] = slices.Sorted(maps.Keys(c.Tags))
		}
	}
	return tags, nil
}

func parseDirect(b []byte) map[string]bool {
	var direct map[string][]string
	_ = json.Unmarshal(b, &direct)
	out := map[string]bool{}
	for _, rooms := range direct {
		for _, id := range rooms {
			out[id] = true
		}
	}
	return out
}

// spaceChildren lists the rooms that the spaces the user is joined to
// name as children (m.space.child with a via); subspaces are not walked
// (MSC4186).
func (e *Engine) spaceChildren(ctx context.Context, s *syncer, spaces []string, joined map[string]bool) (map[string]bool, error) {
	out := map[string]bool{}
	for _, sp := range spaces {
		if !joined[sp] {
			continue
		}
		rows, err := e.p.Store.StateAt(ctx, sp, s.to.Pos)
		if err != nil {
			return nil, fmt.Errorf("sync: space state: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			if r.Type != "m.space.child" || r.StateKey == nil {
				continue
			}
			var c struct {
				Content struct {
					Via []string `json:"via"`
				} `json:"content"`
			}
			if json.Unmarshal(r.JSON, &c) == nil && len(c.Content.Via) > 0 {
				out[*r.StateKey] = true
			}
		}
	}
	return out, nil
}

// listFilter applies one list's filters.
type listFilter struct {
	f        *SlidingFilters
	dm       map[string]bool
	tags     map[string][]string // room → tags (read when a filter needs them)
	children map[string]bool     // nil: no spaces filter
}

func (e *Engine) allows(ctx context.Context, lf *listFilter, c *candidate) (bool, error) {
	f := lf.f
	if f == nil {
		return true, nil
	}
	if f.IsDM != nil && *f.IsDM != lf.dm[c.roomID] {
		return false, nil
	}
	inv := f.IsInvite
	if inv == nil {
		inv = f.IsInvited
	}
	if inv != nil && *inv != (c.membership == invite) {
		return false, nil
	}
	if lf.children != nil && !lf.children[c.roomID] {
		return false, nil
	}
	// not_tags wins over tags (MSC4186).
	if f.NotTags != nil && slices.ContainsFunc(lf.tags[c.roomID], func(t string) bool { return slices.Contains(f.NotTags, t) }) {
		return false, nil
	}
	if f.Tags != nil && !slices.ContainsFunc(lf.tags[c.roomID], func(t string) bool { return slices.Contains(f.Tags, t) }) {
		return false, nil
	}
	if f.IsEncrypted == nil && f.RoomTypes == nil && f.NotRoomTypes == nil {
		return true, nil
	}
	m, err := e.meta(ctx, c.roomID, f.IsEncrypted != nil)
	if err != nil {
		return false, err
	}
	if f.IsEncrypted != nil && *f.IsEncrypted != m.encrypted {
		return false, nil
	}
	if f.RoomTypes != nil && !typeIn(f.RoomTypes, m.typ) {
		return false, nil
	}
	if f.NotRoomTypes != nil && typeIn(f.NotRoomTypes, m.typ) {
		return false, nil
	}
	return true, nil
}

// typeIn: null in the list stands for rooms without a type.
func typeIn(list []*string, typ string) bool {
	for _, t := range list {
		if (t == nil && typ == "") || (t != nil && *t == typ) {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, store.ErrNotFound) }
