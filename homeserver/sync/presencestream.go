package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// maxPresenceChecks is how many changed users an incremental sync checks
// one by one (each user's memberships, usually cached) before listing the
// members of all the syncing user's rooms is cheaper.
const maxPresenceChecks = 16

// presence is the presence provider: m.presence events of the users who
// share a joined room with the syncing user, and of the user. Nobody else's
// presence is ever sent (spec: Presence, "Security considerations": it is
// for the users who share a room).
//
// An initial sync sends the known state of those users. An incremental
// sync sends the users whose presence changed since the token, plus the
// known state of new room-mates: the members of rooms joined since the
// token, and those who joined since the token a room the user was in
// (s.newMates, found by the rooms provider, which runs first). A token whose presence part is from another run (or absent)
// gets every room-mate's state, those not seen since the restart as
// offline, so clients forget who was online before it.
func (s *syncer) presence(ctx context.Context, existing, fresh []string) error {
	p := s.e.p.Presence
	if p == nil {
		return nil
	}
	cur := p.current()
	s.to.Presence = cur
	pf := &s.f.Presence
	if !pf.AllowsType("m.presence") || pf.limit(-1) == 0 {
		return nil
	}
	self := s.req.UserID
	joined := slices.Concat(existing, fresh)
	var statuses map[string]PresenceStatus
	if s.initial || !p.fromThisRun(s.since.Presence, cur) {
		users, err := s.e.sharers(ctx, self, joined)
		if err != nil {
			return err
		}
		statuses = p.statuses(users, !s.initial)
	} else {
		send := map[string]bool{}
		for u := range s.newMates {
			send[u] = true
		}
		if len(fresh) > 0 {
			users, err := s.e.sharers(ctx, self, fresh)
			if err != nil {
				return err
			}
			for _, u := range users {
				send[u] = true
			}
		}
		if s.since.Presence < cur {
			if changed := p.changedSince(s.since.Presence, cur); len(changed) > 0 {
				if err := s.e.keepSharers(ctx, self, joined, changed, send); err != nil {
					return err
				}
			}
		}
		if len(send) == 0 {
			return nil
		}
		users := make([]string, 0, len(send))
		for u := range send {
			users = append(users, u)
		}
		statuses = p.statuses(users, false)
	}
	users := make([]string, 0, len(statuses))
	for u := range statuses {
		if pf.AllowsSender(u) {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	if l := pf.limit(-1); l >= 0 && len(users) > l {
		users = users[:l]
	}
	for _, u := range users {
		ev, err := json.Marshal(struct {
			Content PresenceStatus `json:"content"`
			Sender  string         `json:"sender"`
			Type    string         `json:"type"`
		}{statuses[u], u, "m.presence"})
		if err != nil {
			return err
		}
		s.resp.Presence.Events = append(s.resp.Presence.Events, ev)
	}
	return nil
}

// keepSharers adds to send the users of changed who are userID or share
// one of the rooms joined with userID.
func (e *Engine) keepSharers(ctx context.Context, userID string, joined, changed []string, send map[string]bool) error {
	if len(changed) > maxPresenceChecks {
		all, err := e.sharers(ctx, userID, joined)
		if err != nil {
			return err
		}
		in := make(map[string]bool, len(all))
		for _, u := range all {
			in[u] = true
		}
		for _, u := range changed {
			if in[u] {
				send[u] = true
			}
		}
		return nil
	}
	rooms := make(map[string]bool, len(joined))
	for _, id := range joined {
		rooms[id] = true
	}
	for _, u := range changed {
		if u == userID || send[u] {
			send[u] = true
			continue
		}
		mems, err := e.userMemberships(ctx, u, true)
		if err != nil {
			return err
		}
		for _, m := range mems {
			if m.Membership == join && !m.Forgotten && rooms[m.RoomID] {
				send[u] = true
				break
			}
		}
	}
	return nil
}

// sharers lists userID and the joined members of the rooms.
func (e *Engine) sharers(ctx context.Context, userID string, rooms []string) ([]string, error) {
	out := []string{userID}
	for _, id := range rooms {
		members, err := e.joinedMembers(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, members...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// presenceAudience lists whom a change of userID's presence concerns: the
// user and everyone joined to a room the user is joined to.
func (e *Engine) presenceAudience(ctx context.Context, userID string) ([]string, error) {
	rooms, err := e.joinedRoomIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	return e.sharers(ctx, userID, rooms)
}

// SharesRoom reports whether user and other are both joined to some room
// (or are the same user): who may see whose presence.
func (e *Engine) SharesRoom(ctx context.Context, user, other string) (bool, error) {
	rooms, err := e.joinedRoomIDs(ctx, user)
	if err != nil {
		return false, err
	}
	send := map[string]bool{}
	err = e.keepSharers(ctx, user, rooms, []string{other}, send)
	return send[other], err
}

// joinedRoomIDs lists the rooms userID is joined to now.
func (e *Engine) joinedRoomIDs(ctx context.Context, userID string) ([]string, error) {
	mems, err := e.userMemberships(ctx, userID, true)
	if err != nil {
		return nil, err
	}
	var rooms []string
	for _, m := range mems {
		if m.Membership == join && !m.Forgotten {
			rooms = append(rooms, m.RoomID)
		}
	}
	return rooms, nil
}

func (e *Engine) joinedMembers(ctx context.Context, roomID string) ([]string, error) {
	if e.p.JoinedMembers != nil {
		return e.p.JoinedMembers(ctx, roomID)
	}
	ms, err := e.p.Store.RoomMemberships(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("sync: room memberships: %w", err)
	}
	var out []string
	for _, m := range ms {
		if m.Membership == join {
			out = append(out, m.UserID)
		}
	}
	return out, nil
}
