package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// PublicInfo is a published room's directory entry (PublicRoomsChunk).
func (s *Service) PublicInfo(ctx context.Context, roomID string) (map[string]any, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
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
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return false, err
	}
	defer r.mu.Unlock()
	if r.membership(userID) != "join" {
		return false, nil
	}
	pl, err := r.powerLevels()
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
		r, err := s.lockRoom(ctx, id)
		if err != nil {
			continue
		}
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
	d, err := s.derivedOf(ctx, roomID)
	if err != nil {
		return 0, err
	}
	return d.joined, nil
}

// PowerLevels returns lookups of a room's current power levels: a user's
// level and a notification key's level.
func (s *Service) PowerLevels(ctx context.Context, roomID string) (func(string) int64, func(string) int64, error) {
	d, err := s.derivedOf(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	if d.plErr != nil {
		return nil, nil, d.plErr
	}
	return d.pl.UserLevel, d.pl.Notification, nil
}

func (s *Service) kickLevel(ctx context.Context, roomID string) (int64, error) {
	d, err := s.derivedOf(ctx, roomID)
	if err != nil {
		return 0, err
	}
	if d.plErr != nil {
		return 0, d.plErr
	}
	return d.pl.Kick(), nil
}

// checkCanonicalAlias applies the Client-Server API's rules for sending
// m.room.canonical_alias: alias and alt_aliases must be room aliases
// (M_INVALID_PARAM), and a local one must exist and name this room
// (M_BAD_ALIAS). Aliases of other servers cannot be checked here.
func (s *Service) checkCanonicalAlias(ctx context.Context, roomID string, content json.RawMessage) error {
	var c struct {
		Alias      *json.RawMessage  `json:"alias"`
		AltAliases []json.RawMessage `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.InvalidParamf("alt_aliases must be a list of room aliases")
	}
	var aliases []json.RawMessage
	if c.Alias != nil && string(*c.Alias) != "null" {
		aliases = append(aliases, *c.Alias)
	}
	aliases = append(aliases, c.AltAliases...)
	for _, raw := range aliases {
		var alias string
		if err := json.Unmarshal(raw, &alias); err != nil || !events.ValidRoomAlias(alias) {
			return mxerr.InvalidParamf("%s is not a room alias", raw)
		}
		if !strings.HasSuffix(alias, ":"+s.p.ServerName) {
			continue
		}
		id, _, err := s.p.Store.Alias(ctx, alias)
		if errors.Is(err, store.ErrNotFound) || (err == nil && id != roomID) {
			return mxerr.New(mxerr.BadAlias, "%s does not point to this room", alias)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteAlias removes a local alias. Its creator may, and so may whoever
// may change the room's m.room.canonical_alias (the spec lets servers
// allow that; Synapse does). When the alias was the room's canonical alias
// or one of its alt_aliases, userID sends the canonical alias event
// without it, if allowed to.
func (s *Service) DeleteAlias(ctx context.Context, alias, userID string) error {
	roomID, creator, err := s.p.Store.Alias(ctx, alias)
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("Room alias not found")
	}
	if err != nil {
		return err
	}
	if creator != userID {
		ok, err := s.CanSendState(ctx, roomID, userID, "m.room.canonical_alias")
		if err != nil {
			var me *mxerr.Error
			if errors.As(err, &me) && me.Code == mxerr.Forbidden {
				return mxerr.Forbid("Only the alias's creator or a room moderator may delete it")
			}
			return err
		}
		if !ok {
			return mxerr.Forbid("Only the alias's creator or a room moderator may delete it")
		}
	}
	if err := s.p.Store.DeleteAlias(ctx, alias); err != nil {
		return err
	}
	return s.dropCanonicalAlias(ctx, roomID, alias, userID)
}

// dropCanonicalAlias takes a deleted alias out of the room's canonical
// alias event.
func (s *Service) dropCanonicalAlias(ctx context.Context, roomID, alias, userID string) error {
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.canonical_alias"})
	if err != nil || ev == nil {
		return err
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(ev.Content, &c) != nil {
		return nil
	}
	changed := false
	var main string
	if raw, ok := c["alias"]; ok && json.Unmarshal(raw, &main) == nil && main == alias {
		delete(c, "alias")
		changed = true
	}
	var alts []string
	if raw, ok := c["alt_aliases"]; ok && json.Unmarshal(raw, &alts) == nil {
		kept := make([]string, 0, len(alts))
		for _, a := range alts {
			if a != alias {
				kept = append(kept, a)
			}
		}
		if len(kept) != len(alts) {
			changed = true
			if len(kept) == 0 {
				delete(c, "alt_aliases")
			} else {
				c["alt_aliases"] = mustJSON(kept)
			}
		}
	}
	if !changed {
		return nil
	}
	_, err = s.Send(ctx, roomID, userID, Event{Type: "m.room.canonical_alias", StateKey: strp(""), Content: mustJSON(c)})
	var me *mxerr.Error
	if errors.As(err, &me) {
		// The alias is gone either way; the event is refused when the
		// alias's creator has no power in the room.
		return nil
	}
	return err
}
