package rooms

import (
	"context"
	"encoding/json"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// PublicInfo is a published room's directory entry (PublicRoomsChunk).
func (s *Service) PublicInfo(ctx context.Context, roomID string) (map[string]any, error) {
	r, err := s.load(ctx, roomID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	str := func(typ, key string) string {
		ev, ok := r.state[events.StateTuple{Type: typ}]
		if !ok {
			return ""
		}
		var c map[string]any
		_ = json.Unmarshal(ev.Content, &c)
		v, _ := c[key].(string)
		return v
	}
	joined := 0
	for t, ev := range r.state {
		if t.Type == "m.room.member" && ev.Membership() == "join" {
			joined++
		}
	}
	joinRule := str("m.room.join_rules", "join_rule")
	info := map[string]any{
		"room_id":            roomID,
		"num_joined_members": joined,
		"world_readable":     str("m.room.history_visibility", "history_visibility") == "world_readable",
		"guest_can_join":     str("m.room.guest_access", "guest_access") == "can_join",
		"join_rule":          joinRule,
	}
	for k, v := range map[string]string{
		"name": str("m.room.name", "name"), "topic": str("m.room.topic", "topic"),
		"canonical_alias": str("m.room.canonical_alias", "alias"), "avatar_url": str("m.room.avatar", "url"),
		"room_type": r.info.RoomType,
	} {
		if v != "" {
			info[k] = v
		}
	}
	return info, nil
}

// DirectoryEntry is a published room's /publicRooms entry, or ok false
// while the room is not open to the public: its join rule lets anyone join
// or knock (public, knock, knock_restricted), or its history is
// world_readable. A room published and later made invite-only drops out of
// the directory, name and topic with it, until it opens again.
func (s *Service) DirectoryEntry(ctx context.Context, roomID string) (info map[string]any, ok bool, err error) {
	info, err = s.PublicInfo(ctx, roomID)
	if err != nil {
		return nil, false, err
	}
	switch info["join_rule"] {
	case "public", "knock", "knock_restricted":
		return info, true, nil
	}
	if info["world_readable"] == true {
		return info, true, nil
	}
	return nil, false, nil
}

// CanSendState reports whether a joined user's power level allows a state
// event of the given type.
func (s *Service) CanSendState(ctx context.Context, roomID, userID, evType string) (bool, error) {
	r, err := s.load(ctx, roomID)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.membership(userID) != "join" {
		return false, nil
	}
	pl, err := authrules.CurrentPowerLevels(r.version, r.state)
	if err != nil {
		return false, err
	}
	return pl.UserLevel(userID) >= pl.EventLevel(evType, true), nil
}

// PublicJoinRooms lists the rooms published in the directory whose join
// rule is public: the rooms whose members the user directory may show to
// everyone.
func (s *Service) PublicJoinRooms(ctx context.Context) ([]string, error) {
	ids, err := s.p.Store.PublishedRooms(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		r, err := s.load(ctx, id)
		if err != nil {
			continue
		}
		r.mu.Lock()
		jr := r.state[events.StateTuple{Type: "m.room.join_rules"}]
		r.mu.Unlock()
		if jr != nil {
			if rule, _ := authrules.JoinRule(jr.Content); rule == "public" {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// MemberCount is the number of joined members of a room.
func (s *Service) MemberCount(ctx context.Context, roomID string) (int, error) {
	m, err := s.Members(ctx, roomID, "join")
	return len(m), err
}

// PowerLevels returns lookups of a room's current power levels: a user's
// level and a notification key's level.
func (s *Service) PowerLevels(ctx context.Context, roomID string) (func(string) int64, func(string) int64, error) {
	r, err := s.load(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	pl, err := authrules.CurrentPowerLevels(r.version, r.state)
	r.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return pl.UserLevel, pl.Notification, nil
}

func (s *Service) kickLevel(ctx context.Context, roomID string) (int64, error) {
	r, err := s.load(ctx, roomID)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pl, err := authrules.CurrentPowerLevels(r.version, r.state)
	if err != nil {
		return 0, err
	}
	return pl.Kick(), nil
}
