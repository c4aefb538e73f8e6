package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/internal/mxerr"
)

// upgradeCopied are the state types a room upgrade carries over.
var upgradeCopied = []string{
	"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.name", "m.room.topic",
	"m.room.avatar", "m.room.encryption", "m.room.server_acl", "m.room.canonical_alias", "m.space.parent", "m.space.child",
	"m.room.pinned_events",
}

// Upgrade replaces a room by a new one at another room version: the new
// room gets the old one's state, local aliases move, the old room gets a
// tombstone and is closed to new messages, and spaces that list the old
// room list the new one instead.
//
// additionalCreators is the additional_creators of the request (MSC4289):
// into a v12 room the upgrader and these users are its creators; for other
// versions it is ignored. The power levels follow the creators: the new
// room's creators leave "users" in v12, and the old room's creators, who
// had infinite power in a v12 room, keep 100 where they are no longer
// creators.
func (s *Service) Upgrade(ctx context.Context, roomID, userID, newVersion string, additionalCreators json.RawMessage, profile Profile) (string, error) {
	v := events.RoomVersion(newVersion)
	if !v.Supported() {
		return "", unsupportedVersion(newVersion)
	}
	var extra []string
	if len(additionalCreators) > 0 && string(additionalCreators) != "null" {
		list, err := authrules.ValidateAdditionalCreators(additionalCreators)
		if err != nil {
			return "", mxerr.BadJSONf("additional_creators must be an array of user IDs")
		}
		extra = list
	}
	if err := s.RequireJoined(ctx, roomID, userID); err != nil {
		return "", err
	}
	ok, err := s.CanSendState(ctx, roomID, userID, "m.room.tombstone")
	if err != nil {
		if me, isMx := err.(*mxerr.Error); isMx && me.Code == mxerr.NotFound {
			return "", mxerr.Forbid("You are not joined to this room")
		}
		return "", err
	}
	if !ok {
		return "", mxerr.Forbid("You may not upgrade this room")
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	oldType := r.info.RoomType
	lastID := r.latestID()
	var oldCreators []string
	if authrules.HasPrivilegedCreators(r.version) {
		oldCreators = authrules.Creators(r.version, r.state.Create())
	}
	var initial []StateEvent
	var parents []string
	var plContent json.RawMessage
	for t, ev := range r.state {
		switch {
		case t.Type == "m.room.power_levels":
			plContent = ev.Content
		case slices.Contains(upgradeCopied, t.Type):
			if string(ev.Content) == "{}" {
				continue
			}
			initial = append(initial, StateEvent{Type: t.Type, StateKey: t.StateKey, Content: ev.Content})
			if t.Type == "m.space.parent" {
				parents = append(parents, t.StateKey)
			}
		}
	}
	r.mu.Unlock()

	// The new room's power levels are the old ones; the upgrader keeps at
	// least the level that let them upgrade.
	var pl map[string]any
	_ = json.Unmarshal(plContent, &pl)
	if pl == nil {
		pl = map[string]any{}
	}
	newCreators := []string{userID}
	if authrules.HasPrivilegedCreators(v) {
		newCreators = append(newCreators, extra...)
	}
	// The new room's levels are a copy: pl itself, with the old room's
	// users, is what restrictOldRoom raises thresholds in.
	newPL := make(map[string]any, len(pl))
	for k, val := range pl {
		newPL[k] = val
	}
	newPL["users"] = upgradedUsers(pl["users"], v, userID, oldCreators, newCreators)
	// From v12 the create event cannot name the tombstone, sent after it,
	// and predecessor.event_id is deprecated (MSC4291).
	predecessor := map[string]string{"room_id": roomID}
	if !v.RoomIDFromCreateEvent() {
		predecessor["event_id"] = lastID
	}
	creation := map[string]any{"predecessor": predecessor}
	if oldType != "" {
		creation["type"] = oldType
	}
	if authrules.HasPrivilegedCreators(v) && len(extra) > 0 {
		creation["additional_creators"] = extra
	}
	newID, _, err := s.Create(ctx, userID, CreateRequest{
		Preset: "private_chat", RoomVersion: newVersion, InitialState: initial,
		CreationContent: mustJSON(creation), PowerLevelContentOverride: mustJSON(newPL),
	}, profile)
	if err != nil {
		return "", err
	}
	if _, err := s.Send(ctx, roomID, userID, Event{Type: "m.room.tombstone", StateKey: strp(""), Content: mustJSON(map[string]string{
		"body": "This room has been replaced", "replacement_room": newID,
	})}); err != nil {
		return "", err
	}
	// Close the old room to ordinary members.
	s.restrictOldRoom(ctx, roomID, userID, pl)
	if aliases, err := s.p.Store.RoomAliases(ctx, roomID); err == nil {
		for _, a := range aliases {
			_, creator, err := s.p.Store.Alias(ctx, a)
			if err != nil {
				continue
			}
			if s.p.Store.DeleteAlias(ctx, a) == nil {
				_ = s.p.Store.CreateAlias(ctx, a, newID, creator)
			}
		}
	}
	for _, space := range parents {
		s.relinkChild(ctx, space, roomID, newID, userID)
	}
	return newID, nil
}

// upgradedUsers is the "users" of the new room's power levels: the old
// room's, without the new room's creators if it is a v12 room, and with
// the old v12 room's creators, who are not listed there, at 100 (or what
// they are given) unless they are creators of the new room. The upgrader
// of a room before v12 keeps their level: they had the one needed to
// upgrade.
func upgradedUsers(old any, v events.RoomVersion, upgrader string, oldCreators, newCreators []string) map[string]any {
	users := map[string]any{}
	if m, ok := old.(map[string]any); ok {
		for u, l := range m {
			users[u] = l
		}
	}
	privileged := authrules.HasPrivilegedCreators(v)
	for _, c := range oldCreators {
		if _, listed := users[c]; !listed && !(privileged && slices.Contains(newCreators, c)) {
			users[c] = 100
		}
	}
	if privileged {
		for _, c := range newCreators {
			delete(users, c)
		}
	} else if _, listed := users[upgrader]; !listed {
		users[upgrader] = 100
	}
	return users
}

func (s *Service) restrictOldRoom(ctx context.Context, roomID, userID string, pl map[string]any) {
	restricted := map[string]any{}
	for k, v := range pl {
		restricted[k] = v
	}
	level := int64(50)
	if u, ok := pl["users_default"].(float64); ok && int64(u)+1 > level {
		level = int64(u) + 1
	}
	for _, k := range []string{"events_default", "invite"} {
		cur, _ := pl[k].(float64)
		if int64(cur) < level {
			restricted[k] = level
		}
	}
	if _, err := s.Send(ctx, roomID, userID, Event{Type: "m.room.power_levels", StateKey: strp(""), Content: mustJSON(restricted)}); err != nil {
		s.log.Info("upgrade: could not restrict the old room", "room", roomID, "err", err)
	}
}

// relinkChild replaces oldID by newID among a space's children, when the
// upgrader may edit the space.
func (s *Service) relinkChild(ctx context.Context, spaceID, oldID, newID, userID string) {
	ev, _, err := s.currentStateEvent(ctx, spaceID, events.StateTuple{Type: "m.space.child", StateKey: oldID})
	if err != nil || ev == nil {
		return
	}
	if ok, err := s.CanSendState(ctx, spaceID, userID, "m.space.child"); err != nil || !ok {
		s.log.Info("upgrade: cannot update the space's children", "space", spaceID)
		return
	}
	if _, err := s.Send(ctx, spaceID, userID, Event{Type: "m.space.child", StateKey: &newID, Content: ev.Content}); err != nil {
		s.log.Info("upgrade: add the new room to the space", "space", spaceID, "err", err)
		return
	}
	_, _ = s.Send(ctx, spaceID, userID, Event{Type: "m.space.child", StateKey: &oldID, Content: json.RawMessage(`{}`)})
}

// SpacePowerLevels returns the users a space's power levels raise above
// its default, and its moderation thresholds: what a room created in the
// space inherits when inheritance is on.
func (s *Service) SpacePowerLevels(ctx context.Context, spaceID, userID string) (map[string]any, error) {
	r, err := s.lockRoom(ctx, spaceID)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	if r.info.RoomType != "m.space" || r.membership(userID) != "join" {
		return nil, mxerr.Forbid("Not a space you are in")
	}
	ev := r.state[events.StateTuple{Type: "m.room.power_levels"}]
	if ev == nil {
		return nil, errors.New("space without power levels")
	}
	var pl struct {
		Users        map[string]int64 `json:"users"`
		UsersDefault int64            `json:"users_default"`
		Kick         *int64           `json:"kick"`
		Ban          *int64           `json:"ban"`
		Redact       *int64           `json:"redact"`
	}
	if err := json.Unmarshal(ev.Content, &pl); err != nil {
		return nil, err
	}
	users := map[string]any{}
	for u, l := range pl.Users {
		if l > pl.UsersDefault {
			users[u] = l
		}
	}
	// A v12 space's creators are not listed but outrank everybody: in the
	// room they moderate at the highest ordinary level.
	if authrules.HasPrivilegedCreators(r.version) {
		for _, c := range authrules.Creators(r.version, r.state.Create()) {
			users[c] = int64(100)
		}
	}
	out := map[string]any{"users": users}
	for k, v := range map[string]*int64{"kick": pl.Kick, "ban": pl.Ban, "redact": pl.Redact} {
		if v != nil {
			out[k] = *v
		}
	}
	return out, nil
}
