package authrules

import (
	"encoding/json"
	"strings"
)

// Event types the authorization rules read.
const (
	typeCreate           = "m.room.create"
	typeMember           = "m.room.member"
	typeJoinRules        = "m.room.join_rules"
	typePowerLevels      = "m.room.power_levels"
	typeThirdPartyInvite = "m.room.third_party_invite"
	typeRedaction        = "m.room.redaction"
	typeAliases          = "m.room.aliases"
)

// Values of content.membership in m.room.member events.
const (
	MembershipJoin   = "join"
	MembershipInvite = "invite"
	MembershipLeave  = "leave"
	MembershipBan    = "ban"
	MembershipKnock  = "knock"
)

// Values of content.join_rule in m.room.join_rules events.
// https://spec.matrix.org/latest/client-server-api/#mroomjoin_rules
const (
	JoinRulePublic          = "public"
	JoinRuleInvite          = "invite"
	JoinRuleKnock           = "knock"
	JoinRuleRestricted      = "restricted"
	JoinRuleKnockRestricted = "knock_restricted"
	JoinRulePrivate         = "private" // reserved; nobody can join
)

// AllowTypeRoomMembership is the allow condition of restricted join rules
// met by being joined to the room RoomID names.
const AllowTypeRoomMembership = "m.room_membership"

// AllowRule is one condition of a restricted or knock_restricted join rule.
type AllowRule struct {
	Type   string // AllowTypeRoomMembership, or a type Salon does not know
	RoomID string // for AllowTypeRoomMembership
}

// JoinRule reads m.room.join_rules content: the rule, and the allow
// conditions of a restricted or knock_restricted room. A room without the
// event (nil content) or content without join_rule reads as "invite", the
// reading Synapse and gomatrixserverlib give it; a join_rule that is not a
// string reads as "", which no rule admits. Malformed allow entries are
// dropped: the spec makes a restricted room with no usable condition
// effectively invite-only.
func JoinRule(content json.RawMessage) (rule string, allow []AllowRule) {
	// Each key is decoded on its own, so that a bad "allow" cannot hide a
	// good "join_rule".
	var c map[string]json.RawMessage
	if json.Unmarshal(content, &c) != nil || c == nil {
		return JoinRuleInvite, nil
	}
	raw, ok := c["join_rule"]
	switch {
	case !ok:
		rule = JoinRuleInvite
	case json.Unmarshal(raw, &rule) != nil:
		rule = "" // present but not a string: a rule nobody satisfies
	}
	var list []json.RawMessage
	if json.Unmarshal(c["allow"], &list) != nil {
		return rule, nil
	}
	for _, raw := range list {
		var a struct {
			Type   *string `json:"type"`
			RoomID *string `json:"room_id"`
		}
		if json.Unmarshal(raw, &a) != nil || a.Type == nil {
			continue
		}
		r := AllowRule{Type: *a.Type}
		if r.Type == AllowTypeRoomMembership {
			if a.RoomID == nil || !strings.HasPrefix(*a.RoomID, "!") {
				continue
			}
			r.RoomID = *a.RoomID
		}
		allow = append(allow, r)
	}
	return rule, allow
}

// History visibilities of m.room.history_visibility.
const (
	HistoryInvited       = "invited"
	HistoryJoined        = "joined"
	HistoryShared        = "shared"
	HistoryWorldReadable = "world_readable"
)

// HistoryVisibility reads m.room.history_visibility content. A missing
// event (nil content) or a value Salon does not understand reads as
// "shared", as the spec's server behaviour requires.
// https://spec.matrix.org/latest/client-server-api/#server-behaviour-7
func HistoryVisibility(content json.RawMessage) string {
	var c struct {
		HistoryVisibility string `json:"history_visibility"`
	}
	if len(content) == 0 || json.Unmarshal(content, &c) != nil {
		return HistoryShared
	}
	switch c.HistoryVisibility {
	case HistoryInvited, HistoryJoined, HistoryShared, HistoryWorldReadable:
		return c.HistoryVisibility
	}
	return HistoryShared
}
