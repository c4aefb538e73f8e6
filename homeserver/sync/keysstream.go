package sync

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/salonhq/salon/homeserver/store"
)

// maxToDevice is how many to-device messages one sync sends; the rest
// follow in the next (the token's ToDevice part says where to resume).
const maxToDevice = 100

// memberScan bounds the events of one room read to find membership
// changes for device_lists; past it the room's memberships are read
// instead.
const memberScan = 200

// toDevice is the to-device provider: the device's queued messages after
// the since token, oldest first. Messages up to since are deleted first:
// the client asking with since has them (at-least-once delivery: a
// message leaves the queue only when the client acknowledges it by syncing
// with a later token).
func (s *syncer) toDevice(ctx context.Context) error {
	if s.req.DeviceID == "" {
		return nil
	}
	st := s.e.p.Store
	user, dev := s.req.UserID, s.req.DeviceID
	acked := int64(0)
	if !s.initial {
		acked = s.since.toDevicePos()
		has, err := st.HasToDeviceUpTo(ctx, user, dev, acked)
		if err != nil {
			return err
		}
		if has {
			if _, err := st.AckToDevice(ctx, user, dev, acked); err != nil {
				return err
			}
		}
	}
	msgs, err := st.ToDevice(ctx, user, dev, acked, s.to.Pos, maxToDevice+1)
	if err != nil {
		return err
	}
	if len(msgs) > maxToDevice {
		msgs = msgs[:maxToDevice]
		s.to.ToDevice = msgs[len(msgs)-1].Pos
	}
	for _, m := range msgs {
		ev, err := json.Marshal(struct {
			Content json.RawMessage `json:"content"`
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
		}{m.Content, m.Sender, m.Type})
		if err != nil {
			return err
		}
		s.resp.ToDevice.Events = append(s.resp.ToDevice.Events, ev)
	}
	return nil
}

// keyCounts fills device_one_time_keys_count and
// device_unused_fallback_key_types for the syncing device.
func (s *syncer) keyCounts(ctx context.Context) error {
	if s.req.DeviceID == "" {
		return nil
	}
	counts, err := s.e.p.Store.OneTimeKeyCounts(ctx, s.req.UserID, s.req.DeviceID)
	if err != nil {
		return err
	}
	for alg, n := range counts {
		s.resp.DeviceOneTimeKeysCount[alg] = n
	}
	fb, err := s.e.p.Store.UnusedFallbackKeyTypes(ctx, s.req.UserID, s.req.DeviceID)
	if err != nil {
		return err
	}
	s.resp.DeviceUnusedFallbackKeyTypes = fb
	return nil
}

// deviceLists is the device-list provider of an incremental sync. Salon
// tracks every room the users share, not only encrypted ones (as Synapse
// does): a room can become encrypted at any time, and a client that
// learns of a room-mate's devices only then would encrypt to stale lists.
//
// changed: the users sharing a room with the syncing user (and the user)
// whose devices changed (added keys, deleted, re-signed) after since, and
// the users who started sharing a room with them (they joined one of the
// user's rooms, or the user joined theirs). left: users who shared a room
// at since and share none now.
func (e *Engine) deviceLists(ctx context.Context, userID string, since, to int64, existing, fresh, leftRooms []string, changedRooms map[string]bool) (changed, left []string, err error) {
	keyChanged, err := e.p.Store.DeviceListChanges(ctx, since, to)
	if err != nil {
		return nil, nil, err
	}
	joined := map[string]bool{}
	maybeLeft := map[string]bool{}
	for _, id := range fresh {
		members, err := e.joinedMembers(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		for _, u := range members {
			joined[u] = true
		}
	}
	for _, id := range existing {
		if !changedRooms[id] {
			continue
		}
		if err := e.membershipChanges(ctx, id, since, to, joined, maybeLeft); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range leftRooms {
		members, err := e.joinedMembers(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		for _, u := range members {
			maybeLeft[u] = true
		}
	}
	delete(joined, userID)
	delete(maybeLeft, userID)
	if len(keyChanged) == 0 && len(joined) == 0 && len(maybeLeft) == 0 {
		return nil, nil, nil
	}
	// Which of them share a room with the user now: few are checked one
	// by one, many against the members of the user's rooms (as presence).
	cands := slices.Clone(keyChanged)
	for u := range joined {
		cands = append(cands, u)
	}
	for u := range maybeLeft {
		cands = append(cands, u)
	}
	slices.Sort(cands)
	isMate := map[string]bool{}
	if err := e.keepSharers(ctx, userID, slices.Concat(existing, fresh), slices.Compact(cands), isMate); err != nil {
		return nil, nil, err
	}
	out := map[string]bool{}
	for _, u := range keyChanged {
		if isMate[u] {
			out[u] = true
		}
	}
	for u := range joined {
		if isMate[u] {
			out[u] = true
		}
	}
	for u := range out {
		changed = append(changed, u)
	}
	for u := range maybeLeft {
		if !isMate[u] {
			left = append(left, u)
		}
	}
	slices.Sort(changed)
	slices.Sort(left)
	return changed, left, nil
}

// membershipChanges adds to joined the users who joined roomID in
// (since, to] and to left those who left or were banned.
func (e *Engine) membershipChanges(ctx context.Context, roomID string, since, to int64, joined, left map[string]bool) error {
	evs, err := e.p.Store.RoomEvents(ctx, roomID, since, to+1, memberScan, false)
	if err != nil {
		return err
	}
	if len(evs) < memberScan {
		for _, ev := range evs {
			if ev.Type != typeMember || ev.StateKey == nil {
				continue
			}
			switch ev.Membership {
			case join:
				joined[*ev.StateKey] = true
			case leave, ban:
				left[*ev.StateKey] = true
			}
		}
		return nil
	}
	ms, err := e.p.Store.RoomMemberships(ctx, roomID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Pos <= since || m.Pos > to {
			continue
		}
		switch m.Membership {
		case join:
			joined[m.UserID] = true
		case leave, ban:
			left[m.UserID] = true
		}
	}
	return nil
}

// RoomMates lists the users who share a joined room with userID, the user
// included: whom a change of the user's devices concerns.
func (e *Engine) RoomMates(ctx context.Context, userID string) ([]string, error) {
	return e.presenceAudience(ctx, userID)
}

// KeyChanges answers GET /keys/changes: the users whose devices changed
// between two sync tokens, and those who stopped sharing a room with
// userID, by the rules of device_lists.
func (e *Engine) KeyChanges(ctx context.Context, userID, from, to string) (changed, left []string, err error) {
	f, err := ParseStreamToken(from)
	if err != nil {
		return nil, nil, err
	}
	t, err := ParseStreamToken(to)
	if err != nil {
		return nil, nil, err
	}
	if head := e.p.Store.CurrentPos(); t.Pos > head {
		t.Pos = head
	}
	if f.Pos >= t.Pos {
		return []string{}, []string{}, nil
	}
	s := &syncer{e: e, req: &Request{UserID: userID}, hist: map[string][]store.EventRow{}}
	mems, err := e.userMemberships(ctx, userID, true)
	if err != nil {
		return nil, nil, err
	}
	var existing, fresh, leftRooms []string
	for _, m := range mems {
		if m.Forgotten {
			continue
		}
		cur := memAt{m.Membership, m.Pos, m.EventID}
		if m.Pos > t.Pos {
			if cur, err = s.membershipAt(ctx, m.RoomID, t.Pos); err != nil {
				return nil, nil, err
			}
		}
		prev := cur
		if cur.pos > f.Pos {
			if prev, err = s.membershipAt(ctx, m.RoomID, f.Pos); err != nil {
				return nil, nil, err
			}
		}
		switch {
		case cur.membership == join && prev.membership == join:
			existing = append(existing, m.RoomID)
		case cur.membership == join:
			fresh = append(fresh, m.RoomID)
		case prev.membership == join:
			leftRooms = append(leftRooms, m.RoomID)
		}
	}
	changedRooms := e.p.Notifier.changedRooms(existing, f.Pos)
	changed, left, err = e.deviceLists(ctx, userID, f.Pos, t.Pos, existing, fresh, leftRooms, changedRooms)
	if changed == nil {
		changed = []string{}
	}
	if left == nil {
		left = []string{}
	}
	return changed, left, err
}
