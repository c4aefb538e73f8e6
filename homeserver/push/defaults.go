package push

import "encoding/json"

// Rule IDs of the server-default rules the evaluator treats specially.
const (
	RuleMaster              = ".m.rule.master"
	RuleContainsDisplayName = ".m.rule.contains_display_name"
	RuleContainsUserName    = ".m.rule.contains_user_name"
	RuleRoomNotif           = ".m.rule.roomnotif"
)

// Defaults returns the server-default rules of
// https://spec.matrix.org/latest/client-server-api/#predefined-rules for the
// user userID (e.g. "@alice:example.org") whose localpart is localpart
// ("alice"), in the specification's order. Every list and every override and
// underride rule's conditions are non-nil, so they marshal as [].
//
// Unstable rules (MSC polls, unstable-prefixed IDs) are not included.
func Defaults(userID, localpart string) Ruleset {
	var (
		notify    = ActionNotify
		sound     = SoundTweak("default")
		ring      = SoundTweak("ring")
		highlight = HighlightTweak(true)
	)
	match := func(key, pattern string) Condition {
		return Condition{Kind: CondEventMatch, Key: key, Pattern: pattern}
	}
	rule := func(id string, enabled bool, actions []Action, conds ...Condition) Rule {
		if conds == nil {
			conds = []Condition{}
		}
		return Rule{RuleID: id, Default: true, Enabled: enabled, Conditions: conds, Actions: actions}
	}
	userIDJSON, _ := json.Marshal(userID) // a string always marshals
	none := func() []Action { return []Action{} }

	return Ruleset{
		Override: []Rule{
			rule(RuleMaster, false, none()),
			rule(".m.rule.suppress_notices", true, none(),
				match("content.msgtype", "m.notice")),
			rule(".m.rule.invite_for_me", true, []Action{notify, sound},
				match("type", "m.room.member"),
				match("content.membership", "invite"),
				match("state_key", userID)),
			rule(".m.rule.member_event", true, none(),
				match("type", "m.room.member")),
			rule(".m.rule.is_user_mention", true, []Action{notify, sound, highlight},
				Condition{Kind: CondEventPropertyContains, Key: `content.m\.mentions.user_ids`, Value: userIDJSON}),
			rule(RuleContainsDisplayName, true, []Action{notify, sound, highlight},
				Condition{Kind: CondContainsDisplayName}),
			rule(".m.rule.is_room_mention", true, []Action{notify, highlight},
				Condition{Kind: CondEventPropertyIs, Key: `content.m\.mentions.room`, Value: json.RawMessage(`true`)},
				Condition{Kind: CondSenderNotificationPermission, Key: "room"}),
			rule(RuleRoomNotif, true, []Action{notify, highlight},
				match("content.body", "@room"),
				Condition{Kind: CondSenderNotificationPermission, Key: "room"}),
			rule(".m.rule.tombstone", true, []Action{notify, highlight},
				match("type", "m.room.tombstone"),
				match("state_key", "")),
			rule(".m.rule.reaction", true, none(),
				match("type", "m.reaction")),
			rule(".m.rule.room.server_acl", true, none(),
				match("type", "m.room.server_acl"),
				match("state_key", "")),
			rule(".m.rule.suppress_edits", true, none(),
				Condition{Kind: CondEventPropertyIs, Key: `content.m\.relates_to.rel_type`, Value: json.RawMessage(`"m.replace"`)}),
		},
		Content: []Rule{{
			RuleID: RuleContainsUserName, Default: true, Enabled: true,
			Pattern: localpart, Actions: []Action{notify, sound, highlight},
		}},
		Room:   []Rule{},
		Sender: []Rule{},
		Underride: []Rule{
			rule(".m.rule.call", true, []Action{notify, ring},
				match("type", "m.call.invite")),
			rule(".m.rule.encrypted_room_one_to_one", true, []Action{notify, sound},
				Condition{Kind: CondRoomMemberCount, Is: "2"},
				match("type", "m.room.encrypted")),
			rule(".m.rule.room_one_to_one", true, []Action{notify, sound},
				Condition{Kind: CondRoomMemberCount, Is: "2"},
				match("type", "m.room.message")),
			rule(".m.rule.message", true, []Action{notify},
				match("type", "m.room.message")),
			rule(".m.rule.encrypted", true, []Action{notify},
				match("type", "m.room.encrypted")),
		},
	}
}

// defaultRule returns the server-default rule of kind with ID ruleID. The
// IDs and actions of the defaults do not depend on the user, so a
// placeholder user stands in.
func defaultRule(kind, ruleID string) (Rule, bool) {
	rs := Defaults("@_:_", "_")
	l := rs.list(kind)
	if l == nil {
		return Rule{}, false
	}
	for _, r := range *l {
		if r.RuleID == ruleID {
			return r, true
		}
	}
	return Rule{}, false
}
