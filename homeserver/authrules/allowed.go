package authrules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
)

// Allowed applies the authorization rules of ev.Version to ev, checked
// against st. It returns nil if the rules allow ev, an error wrapping
// ErrForbidden that names the failed rule if they reject it, or
// ErrUnsupportedRoomVersion.
//
// What Allowed leaves to its caller: signatures (the sender's server, and
// for restricted joins the authorising server; see RequiredSigners), and the
// auth_events checks of rule 2 when st is the event's own auth events (see
// CheckAuthEvents). Redactions pass here on the ordinary power-level rules
// only; whether one takes effect is RedactionApplies.
//
// Rule numbers are those of v11 and earlier; v12 inserted a rule 2 (the
// room ID names the create event), so its rules 3 and later are one more.
func Allowed(ev *events.Event, st AuthState) error {
	vr, err := rules(ev.Version)
	if err != nil {
		return err
	}
	if ev.Type == typeCreate {
		return allowedCreate(ev, vr)
	}

	// 2.4: every other event rests on the create event; in v12 (rule 2)
	// the one its room ID names.
	create := st.Create()
	if create == nil {
		return forbid("no m.room.create event in the auth state")
	}
	if vr.privilegedCreators {
		if events.RoomIDForCreateEvent(create.ID) != ev.RoomID {
			return forbid("room %s is not named by the m.room.create event %s", ev.RoomID, create.ID)
		}
	} else if create.RoomID != ev.RoomID {
		return forbid("the m.room.create event is for room %s, not %s", create.RoomID, ev.RoomID)
	}

	// 3: m.federate false keeps other servers' users out.
	// Only a JSON false counts; a decode into *bool would also set it for
	// a mistyped value such as "false".
	var cc map[string]json.RawMessage
	_ = json.Unmarshal(create.Content, &cc)
	if string(bytes.TrimSpace(cc["m.federate"])) == "false" && events.ServerOf(ev.Sender) != events.ServerOf(create.Sender) {
		return forbid("the room does not federate and %s is not on the creator's server", ev.Sender)
	}

	// 4 (v1 to v5): m.room.aliases belongs to the server its state key
	// names, whatever the sender's membership.
	if vr.aliasesRule && ev.Type == typeAliases {
		if ev.StateKey == nil {
			return forbid("m.room.aliases has no state_key")
		}
		if events.ServerOf(ev.Sender) != *ev.StateKey {
			return forbid("m.room.aliases for %q sent by a user of %s", *ev.StateKey, events.ServerOf(ev.Sender))
		}
		return nil
	}

	pl, err := CurrentPowerLevels(ev.Version, st)
	if err != nil {
		return err
	}

	if ev.Type == typeMember {
		return allowedMember(ev, vr, st, create, pl)
	}

	// 5: everything else needs the sender in the room.
	if m := membershipOf(st.Member(ev.Sender)); m != MembershipJoin {
		return forbid("sender %s is not joined to the room (membership %s)", ev.Sender, describe(m))
	}
	senderLevel := pl.UserLevel(ev.Sender)

	// 6: third-party invites need the invite level, and only that.
	if ev.Type == typeThirdPartyInvite {
		if senderLevel < pl.Invite() {
			return forbid("sender's power level %d is below the invite level %d", senderLevel, pl.Invite())
		}
		return nil
	}

	// 7: the level the event type requires.
	if need := pl.EventLevel(ev.Type, ev.IsState()); senderLevel < need {
		return forbid("sender's power level %d is below %d required for %s", senderLevel, need, ev.Type)
	}

	// 8: a state key naming a user belongs to that user.
	if ev.IsState() && strings.HasPrefix(*ev.StateKey, "@") && *ev.StateKey != ev.Sender {
		return forbid("state key %s names a user other than the sender %s", *ev.StateKey, ev.Sender)
	}

	// 9: power level changes.
	if ev.Type == typePowerLevels {
		next, err := ParsePowerLevels(ev.Version, ev.Content)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrForbidden, err) // 9.1 to 9.3
		}
		if vr.privilegedCreators { // v12 10.4
			for _, c := range Creators(ev.Version, create) {
				if _, listed := next.users[c]; listed {
					return forbid("power levels may not list the room creator %s in users", c)
				}
			}
		}
		if st.PowerLevels() == nil {
			return nil // 9.4
		}
		return checkPowerLevelsChange(ev.Sender, senderLevel, pl, next, vr.notificationLevels)
	}

	// 11 (v1 and v2): a redaction needs the redact level, or to come from
	// the server that named the redacted event.
	if vr.redactionRule && ev.Type == typeRedaction {
		if senderLevel >= pl.Redact() {
			return nil
		}
		if s := events.ServerOf(ev.Redacts); s != "" && s == events.ServerOf(ev.ID) {
			return nil
		}
		return forbid("sender's power level %d is below the redact level %d and %s is another server's event",
			senderLevel, pl.Redact(), ev.Redacts)
	}

	return nil // 10
}

// allowedCreate applies rule 1 to an m.room.create event.
func allowedCreate(ev *events.Event, vr versionRules) error {
	if len(ev.PrevEvents) > 0 {
		return forbid("m.room.create has prev_events")
	}
	if vr.privilegedCreators {
		// 1.2 of v12: no room_id. The events package refuses a v12
		// create PDU with one and sets RoomID from the event ID instead.
		if ev.RoomID != events.RoomIDForCreateEvent(ev.ID) {
			return forbid("m.room.create has a room_id")
		}
	} else if s := events.ServerOf(ev.Sender); s == "" || s != events.ServerOf(ev.RoomID) {
		return forbid("m.room.create sender %s is not on the server of room %s", ev.Sender, ev.RoomID)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(ev.Content, &c); err != nil || c == nil {
		return forbid("m.room.create content is not a JSON object")
	}
	// 1.3. The room version of an event is read from this very property, so
	// beyond being recognised it must agree with the version the caller
	// checks under; its absence means room version 1.
	raw, ok := c["room_version"]
	if !ok {
		raw = json.RawMessage(`"1"`)
	}
	var rv string
	if json.Unmarshal(raw, &rv) != nil || !events.RoomVersion(rv).Supported() {
		return forbid("m.room.create room_version %s is not a recognised version", raw)
	}
	if events.RoomVersion(rv) != ev.Version {
		return forbid("m.room.create room_version %q differs from the version %q being checked", rv, ev.Version)
	}
	// 1.4 up to v10; removed in v11, where the sender is the creator.
	if vr.creatorInContent {
		if _, ok := c["creator"]; !ok {
			return forbid("m.room.create has no creator")
		}
	}
	// 1.4 of v12: additional_creators are user IDs.
	if vr.privilegedCreators {
		if _, ok := additionalCreators(ev.Content); !ok {
			return forbid("m.room.create additional_creators is not an array of user IDs")
		}
	}
	return nil
}

// allowedMember applies rule 4 to an m.room.member event.
func allowedMember(ev *events.Event, vr versionRules, st AuthState, create *events.Event, pl PowerLevels) error {
	// 4.1
	if ev.StateKey == nil {
		return forbid("m.room.member has no state_key")
	}
	m, err := parseMember(ev.Content)
	if err != nil {
		return forbid("m.room.member %v", err)
	}
	if !m.hasMembership {
		return forbid("m.room.member has no membership")
	}
	// 4.2 (from v8): the signature itself is the caller's to verify, but
	// a key that names no user can be signed by no server. Before v8 the
	// key means nothing.
	if vr.restricted && m.hasAuthoriser && !isUserID(m.authoriser) {
		return forbid("join_authorised_via_users_server is not a user ID")
	}

	target := *ev.StateKey
	senderMembership := membershipOf(st.Member(ev.Sender))
	targetMembership := membershipOf(st.Member(target))
	senderLevel := pl.UserLevel(ev.Sender)
	targetLevel := pl.UserLevel(target)
	var joinRulesContent json.RawMessage
	if jr := st.JoinRules(); jr != nil {
		joinRulesContent = jr.Content
	}
	joinRule, _ := JoinRule(joinRulesContent)

	switch m.membership {
	case MembershipJoin:
		// 4.3.1: the creator's own join right after the create event.
		// The spec does not ask that the creator be the sender here.
		if len(ev.PrevEvents) == 1 && create.ID != "" && ev.PrevEvents[0] == create.ID &&
			target == creatorOf(ev.Version, create) {
			return nil
		}
		if ev.Sender != target { // 4.3.2
			return forbid("sender %s cannot join %s to the room", ev.Sender, target)
		}
		if targetMembership == MembershipBan { // 4.3.3
			return forbid("%s is banned from the room", target)
		}
		switch {
		case joinRule == JoinRuleInvite, joinRule == JoinRuleKnock && vr.knock: // 4.3.4
			if targetMembership == MembershipInvite || targetMembership == MembershipJoin {
				return nil
			}
			return forbid("join rule is %s and %s is not invited", joinRule, target)
		case joinRule == JoinRuleRestricted && vr.restricted,
			joinRule == JoinRuleKnockRestricted && vr.knockRestricted: // 4.3.5
			if targetMembership == MembershipInvite || targetMembership == MembershipJoin {
				return nil
			}
			return checkAuthoriser(m, st, pl, joinRule)
		case joinRule == JoinRulePublic: // 4.3.6
			return nil
		}
		return forbid("join rule %q admits no joins in room version %s", joinRule, ev.Version) // 4.3.7

	case MembershipInvite:
		if m.thirdParty != nil { // 4.4.1
			return checkThirdPartyInvite(ev, m, st, targetMembership)
		}
		if senderMembership != MembershipJoin { // 4.4.2
			return forbid("sender %s is not joined to the room (membership %s)", ev.Sender, describe(senderMembership))
		}
		if targetMembership == MembershipJoin || targetMembership == MembershipBan { // 4.4.3
			return forbid("%s cannot be invited: membership is %s", target, targetMembership)
		}
		if senderLevel < pl.Invite() { // 4.4.4, 4.4.5
			return forbid("sender's power level %d is below the invite level %d", senderLevel, pl.Invite())
		}
		return nil

	case MembershipLeave:
		if ev.Sender == target { // 4.5.1 (knock from v7)
			switch {
			case targetMembership == MembershipInvite, targetMembership == MembershipJoin,
				targetMembership == MembershipKnock && vr.knock:
				return nil
			}
			return forbid("%s cannot leave: membership is %s", target, describe(targetMembership))
		}
		if senderMembership != MembershipJoin { // 4.5.2
			return forbid("sender %s is not joined to the room (membership %s)", ev.Sender, describe(senderMembership))
		}
		if targetMembership == MembershipBan && senderLevel < pl.Ban() { // 4.5.3
			return forbid("sender's power level %d is below the ban level %d needed to unban", senderLevel, pl.Ban())
		}
		if senderLevel < pl.Kick() { // 4.5.4, 4.5.5
			return forbid("sender's power level %d is below the kick level %d", senderLevel, pl.Kick())
		}
		if targetLevel >= senderLevel {
			return forbid("sender's power level %d does not exceed %s's level %d", senderLevel, target, targetLevel)
		}
		return nil

	case MembershipBan:
		if senderMembership != MembershipJoin { // 4.6.1
			return forbid("sender %s is not joined to the room (membership %s)", ev.Sender, describe(senderMembership))
		}
		if senderLevel < pl.Ban() { // 4.6.2, 4.6.3
			return forbid("sender's power level %d is below the ban level %d", senderLevel, pl.Ban())
		}
		if targetLevel >= senderLevel {
			return forbid("sender's power level %d does not exceed %s's level %d", senderLevel, target, targetLevel)
		}
		return nil

	case MembershipKnock:
		if !vr.knock { // 4.7, from v7; before, an unknown membership (4.6)
			return forbid("room version %s has no knocking", ev.Version)
		}
		if joinRule != JoinRuleKnock && !(joinRule == JoinRuleKnockRestricted && vr.knockRestricted) { // 4.7.1
			return forbid("join rule %q does not allow knocking", joinRule)
		}
		if ev.Sender != target { // 4.7.2
			return forbid("sender %s cannot knock for %s", ev.Sender, target)
		}
		switch targetMembership { // 4.7.3, 4.7.4
		case MembershipBan, MembershipInvite, MembershipJoin:
			return forbid("%s cannot knock: membership is %s", target, targetMembership)
		}
		return nil
	}
	return forbid("unknown membership %q", m.membership) // 4.8
}

// checkAuthoriser applies rule 4.3.5.2 to a restricted join by a user who
// is neither joined nor invited: the join must name, in
// join_authorised_via_users_server, a user able to invite others, that is
// one joined to the room with at least the invite level. The allow
// conditions themselves are checked by the authorising server, not here.
func checkAuthoriser(m memberFields, st AuthState, pl PowerLevels, joinRule string) error {
	if m.authoriser == "" {
		return forbid("join rule is %s and the join has no join_authorised_via_users_server", joinRule)
	}
	if am := membershipOf(st.Member(m.authoriser)); am != MembershipJoin {
		return forbid("authorising user %s is not joined to the room (membership %s)", m.authoriser, describe(am))
	}
	if lvl := pl.UserLevel(m.authoriser); lvl < pl.Invite() {
		return forbid("authorising user %s has power level %d, below the invite level %d", m.authoriser, lvl, pl.Invite())
	}
	return nil
}

// checkThirdPartyInvite applies rule 4.4.1 as far as Salon can: the
// structural checks 4.4.1.1 to 4.4.1.6, after which it refuses the invite,
// since checking the signature in "signed" against the invite's public keys
// (4.4.1.7) is not implemented yet. Such invites are rejected even when
// other servers would accept them; see ErrThirdPartyInviteUnsupported.
func checkThirdPartyInvite(ev *events.Event, m memberFields, st AuthState, targetMembership string) error {
	if targetMembership == MembershipBan {
		return forbid("%s is banned from the room", *ev.StateKey)
	}
	var tpi struct {
		Signed *struct {
			MXID  *string `json:"mxid"`
			Token *string `json:"token"`
		} `json:"signed"`
	}
	if json.Unmarshal(m.thirdParty, &tpi) != nil || tpi.Signed == nil {
		return forbid("third_party_invite has no signed object")
	}
	if tpi.Signed.MXID == nil || tpi.Signed.Token == nil {
		return forbid("third_party_invite.signed lacks mxid or token")
	}
	if *tpi.Signed.MXID != *ev.StateKey {
		return forbid("third_party_invite is for %s, not %s", *tpi.Signed.MXID, *ev.StateKey)
	}
	inv := st.ThirdPartyInvite(*tpi.Signed.Token)
	if inv == nil {
		return forbid("no m.room.third_party_invite for the invite's token")
	}
	if inv.Sender != ev.Sender {
		return forbid("the m.room.third_party_invite was sent by %s, not %s", inv.Sender, ev.Sender)
	}
	return fmt.Errorf("%w: %w", ErrForbidden, ErrThirdPartyInviteUnsupported)
}

// membershipOf is the membership an m.room.member event records, or "" for
// a user with no membership event.
func membershipOf(ev *events.Event) string {
	if ev == nil {
		return ""
	}
	return ev.Membership()
}

// describe names a membership in error text.
func describe(membership string) string {
	if membership == "" {
		return "none"
	}
	return membership
}
