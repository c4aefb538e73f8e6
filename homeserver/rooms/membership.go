package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// ResolveRoom turns a room ID or a local alias into a room ID.
func (s *Service) ResolveRoom(ctx context.Context, idOrAlias string) (string, error) {
	id, _, err := s.resolveRoomVia(ctx, idOrAlias)
	return id, err
}

// resolveRoomVia is ResolveRoom, with the servers another server's alias
// names (asked over federation).
func (s *Service) resolveRoomVia(ctx context.Context, idOrAlias string) (string, []string, error) {
	if events.ValidRoomAlias(idOrAlias) && s.remote != nil && !s.isLocal(idOrAlias) {
		return s.remote.Directory(ctx, idOrAlias)
	}
	id, err := s.resolveLocal(ctx, idOrAlias)
	return id, nil, err
}

func (s *Service) resolveLocal(ctx context.Context, idOrAlias string) (string, error) {
	switch {
	case events.ValidRoomID(idOrAlias):
		return idOrAlias, nil
	case events.ValidRoomAlias(idOrAlias):
		id, _, err := s.p.Store.Alias(ctx, idOrAlias)
		if errors.Is(err, store.ErrNotFound) {
			return "", mxerr.NotFoundf("Room alias not found")
		}
		return id, err
	}
	return "", mxerr.InvalidParamf("Invalid room ID or alias")
}

func (s *Service) member(ctx context.Context, roomID, sender, target, membership, reason string, extra map[string]any) (string, error) {
	c, err := memberContent(target, membership, reason, extra)
	if err != nil {
		return "", err
	}
	return s.Send(ctx, roomID, sender, Event{Type: "m.room.member", StateKey: &target, Content: c})
}

// memberContent is the content of target's member event, after checking
// the target's ID and the reason's length.
func memberContent(target, membership, reason string, extra map[string]any) (json.RawMessage, error) {
	if !events.ValidUserID(target) {
		return nil, mxerr.InvalidParamf("Invalid user ID %q", target)
	}
	c := map[string]any{"membership": membership}
	for k, v := range extra {
		c[k] = v
	}
	if reason != "" {
		if len(reason) > 1024 {
			return nil, mxerr.InvalidParamf("reason is too long")
		}
		c["reason"] = reason
	}
	return mustJSON(c), nil
}

// membershipOf is a member event's membership ("" for none).
func membershipOf(ev *events.Event) string {
	if ev == nil {
		return ""
	}
	return ev.Membership()
}

// targetRefusal is why op ("invite" or "kick") cannot be done to someone
// whose membership is m, or nil: an invite to someone joined, a kick of
// someone not joined, invited or knocking.
func targetRefusal(op, target, m string) error {
	switch {
	case op == "invite" && m == "join":
		return mxerr.Forbid("%s is already in the room", target)
	case op == "kick" && m != "join" && m != "invite" && m != "knock":
		return mxerr.Forbid("%s is not in the room", target)
	}
	return nil
}

func (s *Service) profileFields(ctx context.Context, profile Profile, userID string) map[string]any {
	out := map[string]any{}
	if profile == nil {
		return out
	}
	if dn, av := profile(ctx, userID); true {
		if dn != "" {
			out["displayname"] = dn
		}
		if av != "" {
			out["avatar_url"] = av
		}
	}
	return out
}

// The answers to someone who may not act on a room. Each is the same
// whether the room exists, and whatever the target's membership: an
// outsider must not learn from an error who is in a room, who is banned,
// or that the room is there at all (issue 13, membership oracles).
var (
	errNotJoined    = mxerr.Forbid("You are not joined to this room")
	errJoinRefused  = mxerr.Forbid("You are not allowed to join this room")
	errKnockRefused = mxerr.Forbid("You are not allowed to knock on this room")
	errNeverMember  = mxerr.NotFoundf("You have never been in this room")
)

// isForbidden reports an M_FORBIDDEN refusal (a rule said no), as opposed
// to bad input or a failure of the server.
func isForbidden(err error) bool {
	var me *mxerr.Error
	return errors.As(err, &me) && me.Code == mxerr.Forbidden
}

// mayChangeOthers checks, before anything about the target is looked at,
// that sender is joined to the room and has the power level a membership
// change of op ("invite", "kick", "ban"; unban needs the ban level) needs.
// Anyone else gets one answer, whatever the room and the target.
func (s *Service) mayChangeOthers(ctx context.Context, roomID, sender, op string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		return errNotJoined
	}
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if r.membership(sender) != "join" {
		return errNotJoined
	}
	pl, err := r.powerLevels()
	if err != nil {
		return err
	}
	need := pl.Ban()
	switch op {
	case "invite":
		need = pl.Invite()
	case "kick":
		need = pl.Kick()
	}
	if pl.UserLevel(sender) < need {
		return mxerr.Forbid("Your power level is too low to %s in this room", op)
	}
	return nil
}

// RequireJoined answers M_FORBIDDEN unless userID is joined to the room,
// the same for a room that does not exist.
func (s *Service) RequireJoined(ctx context.Context, roomID, userID string) error {
	m, err := s.Membership(ctx, roomID, userID)
	if err == errUnknownRoom || (err == nil && m != "join") {
		return errNotJoined
	}
	return err
}

// Join joins userID to a room (by ID or alias) and returns the room ID.
// Every refusal is the same M_FORBIDDEN, so a refused join does not tell
// whether the room exists, or why.
func (s *Service) Join(ctx context.Context, idOrAlias, userID, reason string, profile Profile) (string, error) {
	return s.JoinWith(ctx, idOrAlias, userID, reason, profile, nil)
}

// reservedMemberKeys are member content keys a join request cannot set:
// the server decides them.
var reservedMemberKeys = map[string]bool{
	"membership": true, "reason": true, "displayname": true, "avatar_url": true,
	"join_authorised_via_users_server": true, "third_party_signed": true, "third_party_invite": true,
}

// JoinWith is Join keeping the request's custom content in the member
// event (as Synapse does), all but the keys the server decides.
func (s *Service) JoinWith(ctx context.Context, idOrAlias, userID, reason string, profile Profile, custom map[string]any) (string, error) {
	return s.JoinVia(ctx, idOrAlias, userID, reason, profile, custom, nil)
}

// JoinVia is JoinWith for a room this server may not be in: then it joins
// through a resident server, one of via (the request's server_name), the
// alias's servers, the inviter's, the room ID's.
func (s *Service) JoinVia(ctx context.Context, idOrAlias, userID, reason string, profile Profile, custom map[string]any, via []string) (string, error) {
	roomID, aliasServers, err := s.resolveRoomVia(ctx, idOrAlias)
	if err != nil {
		return "", err
	}
	extra := s.profileFields(ctx, profile, userID)
	for k, v := range custom {
		if !reservedMemberKeys[k] {
			extra[k] = v
		}
	}
	if s.remote != nil && !s.residentHere(ctx, roomID) {
		if servers := s.joinServers(ctx, roomID, userID, append(slices.Clone(via), aliasServers...)); len(servers) > 0 {
			if reason != "" {
				extra["reason"] = reason
			}
			if err := s.joinRemote(ctx, roomID, userID, servers, extra); err != nil {
				if isForbidden(err) {
					return "", errJoinRefused
				}
				return "", err
			}
			return roomID, nil
		}
	}
	authoriser, err := s.restrictedAuthoriser(ctx, roomID, userID)
	if err == errUnknownRoom || isForbidden(err) {
		return "", errJoinRefused
	}
	if err != nil {
		return "", err
	}
	if authoriser != "" {
		extra["join_authorised_via_users_server"] = authoriser
	}
	if _, err := s.member(ctx, roomID, userID, userID, "join", reason, extra); err != nil {
		if isForbidden(err) {
			return "", errJoinRefused
		}
		return "", err
	}
	return roomID, nil
}

// Invite invites target to a room.
func (s *Service) Invite(ctx context.Context, roomID, sender, target, reason string, profile Profile) error {
	if err := s.mayChangeOthers(ctx, roomID, sender, "invite"); err != nil {
		return err
	}
	if ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: target}); err != nil {
		return err
	} else if err := targetRefusal("invite", target, membershipOf(ev)); err != nil {
		return err
	}
	if err := s.checkInvitee(ctx, target); err != nil {
		return err
	}
	extra := s.profileFields(ctx, profile, target)
	_, err := s.member(ctx, roomID, sender, target, "invite", reason, extra)
	return err
}

// Leave leaves a room (also rejects an invite or withdraws a knock).
// Leaving a room one is not in, or one that does not exist, succeeds
// without doing anything: both look the same.
func (s *Service) Leave(ctx context.Context, roomID, userID, reason string) error {
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: userID})
	if err == errUnknownRoom {
		return nil
	}
	if err != nil {
		return err
	}
	if ev == nil || ev.Membership() == "leave" {
		return nil // nothing to leave: idempotent, as the spec allows
	}
	if m := ev.Membership(); s.remote != nil && (m == "invite" || m == "knock") && !s.residentHere(ctx, roomID) {
		if servers := s.joinServers(ctx, roomID, userID, nil); len(servers) > 0 {
			return s.leaveRemote(ctx, roomID, userID, reason, servers)
		}
	}
	_, err = s.member(ctx, roomID, userID, userID, "leave", reason, nil)
	return err
}

// Kick removes target from a room.
func (s *Service) Kick(ctx context.Context, roomID, sender, target, reason string) error {
	if err := s.mayChangeOthers(ctx, roomID, sender, "kick"); err != nil {
		return err
	}
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: target})
	if err != nil {
		return err
	}
	if err := targetRefusal("kick", target, membershipOf(ev)); err != nil {
		return err
	}
	_, err = s.member(ctx, roomID, sender, target, "leave", reason, nil)
	return err
}

// Ban bans target from a room.
func (s *Service) Ban(ctx context.Context, roomID, sender, target, reason string) error {
	if err := s.mayChangeOthers(ctx, roomID, sender, "ban"); err != nil {
		return err
	}
	_, err := s.member(ctx, roomID, sender, target, "ban", reason, nil)
	return err
}

// Unban lifts a ban.
func (s *Service) Unban(ctx context.Context, roomID, sender, target, reason string) error {
	if err := s.mayChangeOthers(ctx, roomID, sender, "ban"); err != nil {
		return err
	}
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: target})
	if err != nil {
		return err
	}
	if ev == nil || ev.Membership() != "ban" {
		return mxerr.Forbid("%s is not banned", target)
	}
	_, err = s.member(ctx, roomID, sender, target, "leave", reason, nil)
	return err
}

// Knock asks to join a room whose join rule allows knocking.
func (s *Service) Knock(ctx context.Context, idOrAlias, userID, reason string, profile Profile) (string, error) {
	return s.KnockVia(ctx, idOrAlias, userID, reason, profile, nil)
}

// KnockVia is Knock for a room this server may not be in: then through a
// resident server (via, the alias's servers, the room ID's).
func (s *Service) KnockVia(ctx context.Context, idOrAlias, userID, reason string, profile Profile, via []string) (string, error) {
	roomID, aliasServers, err := s.resolveRoomVia(ctx, idOrAlias)
	if err != nil {
		return "", err
	}
	if s.remote != nil && !s.residentHere(ctx, roomID) {
		if servers := s.joinServers(ctx, roomID, userID, append(slices.Clone(via), aliasServers...)); len(servers) > 0 {
			extra := s.profileFields(ctx, profile, userID)
			if reason != "" {
				extra["reason"] = reason
			}
			if err := s.knockRemote(ctx, roomID, userID, servers, extra); err != nil {
				if isForbidden(err) {
					return "", errKnockRefused
				}
				return "", err
			}
			return roomID, nil
		}
	}
	if _, err := s.member(ctx, roomID, userID, userID, "knock", reason, s.profileFields(ctx, profile, userID)); err != nil {
		if isForbidden(err) {
			return "", errKnockRefused
		}
		return "", err
	}
	return roomID, nil
}

// Forget hides a room the user has left.
func (s *Service) Forget(ctx context.Context, roomID, userID string) error {
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: userID})
	if err == errUnknownRoom {
		return errNeverMember
	}
	if err != nil {
		return err
	}
	if ev == nil {
		return errNeverMember
	}
	if m := ev.Membership(); m == "join" || m == "invite" || m == "knock" {
		return mxerr.New(mxerr.Unknown, "You must leave the room before forgetting it").WithStatus(400)
	}
	if err := s.p.Store.Forget(ctx, roomID, userID); err != nil {
		return err
	}
	if s.p.Notifier != nil {
		s.p.Notifier.Forgotten(userID)
	}
	// The cached reader still lets the user read up to their leave.
	if r, err := s.lockRoom(ctx, roomID); err == nil {
		r.dropReaders()
		r.mu.Unlock()
	}
	return nil
}

// JoinedRooms lists the rooms a user is joined to.
func (s *Service) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	ms, err := s.p.Store.UserMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range ms {
		if m.Membership == "join" {
			out = append(out, m.RoomID)
		}
	}
	return out, nil
}

// UpdateProfile sends new member events with a user's new profile into
// every room they are joined to.
func (s *Service) UpdateProfile(ctx context.Context, userID, displayName, avatarURL string) {
	rooms, err := s.JoinedRooms(ctx, userID)
	if err != nil {
		s.log.Warn("profile propagation: list rooms", "err", err)
		return
	}
	for _, roomID := range rooms {
		ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: userID})
		if err != nil || ev == nil {
			continue
		}
		var c map[string]any
		_ = json.Unmarshal(ev.Content, &c)
		if c == nil {
			c = map[string]any{}
		}
		c["membership"] = "join"
		delete(c, "displayname")
		delete(c, "avatar_url")
		if displayName != "" {
			c["displayname"] = displayName
		}
		if avatarURL != "" {
			c["avatar_url"] = avatarURL
		}
		if _, err := s.Send(ctx, roomID, userID, Event{Type: "m.room.member", StateKey: &userID, Content: mustJSON(c)}); err != nil {
			s.log.Warn("profile propagation", "room", roomID, "err", err)
		}
	}
}

// checkInvitee refuses invites to users who cannot receive them: remote
// users (no federation) and local users who do not exist.
func (s *Service) checkInvitee(ctx context.Context, userID string) error {
	if !events.ValidUserID(userID) {
		return mxerr.InvalidParamf("Invalid user ID %q", userID)
	}
	if !strings.HasSuffix(userID, ":"+s.p.ServerName) {
		if s.remote != nil {
			return nil // the invitee's server answers for them
		}
		return mxerr.Forbid("Federation is not enabled: %s cannot be invited", userID)
	}
	if s.p.UserExists != nil && !s.p.UserExists(ctx, userID) {
		return mxerr.NotFoundf("Unknown user %s", userID)
	}
	return nil
}

// LeaveAll makes a user leave (or decline) every room they are joined to,
// invited to or knocking on: what deactivating an account does.
func (s *Service) LeaveAll(ctx context.Context, userID string) error {
	ms, err := s.p.Store.UserMemberships(ctx, userID)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		switch m.Membership {
		case "join", "invite", "knock":
			if err := s.Leave(ctx, m.RoomID, userID, "Account deactivated"); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.RoomID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Membership is a user's current membership of a room ("" for none).
func (s *Service) Membership(ctx context.Context, roomID, userID string) (string, error) {
	ev, _, err := s.currentStateEvent(ctx, roomID, events.StateTuple{Type: "m.room.member", StateKey: userID})
	if err != nil || ev == nil {
		return "", err
	}
	return ev.Membership(), nil
}
