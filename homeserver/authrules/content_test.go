package authrules

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestJoinRuleContent(t *testing.T) {
	table := []struct {
		name    string
		content string // "" for no event
		rule    string
		allow   []AllowRule
	}{
		{"no_event", "", JoinRuleInvite, nil},
		{"no_key", `{}`, JoinRuleInvite, nil},
		{"public", `{"join_rule":"public"}`, JoinRulePublic, nil},
		{"not_a_string", `{"join_rule":["public"]}`, "", nil},
		{"null", `{"join_rule":null}`, "", nil},
		{"not_an_object", `"public"`, JoinRuleInvite, nil},
		{"restricted_with_allow", `{"join_rule":"restricted","allow":[
			{"type":"m.room_membership","room_id":"!space:a.test"},
			{"type":"m.room_membership"},
			{"type":"m.room_membership","room_id":5},
			{"type":"m.room_membership","room_id":"#alias:a.test"},
			{"room_id":"!x:a.test"},
			"junk",
			{"type":"org.example.future","room_id":"!y:a.test"}]}`,
			JoinRuleRestricted, []AllowRule{
				{Type: AllowTypeRoomMembership, RoomID: "!space:a.test"},
				{Type: "org.example.future"},
			}},
		{"knock_restricted_no_allow", `{"join_rule":"knock_restricted"}`, JoinRuleKnockRestricted, nil},
		{"allow_not_a_list", `{"join_rule":"restricted","allow":{}}`, JoinRuleRestricted, nil},
		{"allow_with_bad_join_rule", `{"join_rule":1,"allow":[{"type":"m.room_membership","room_id":"!s:a.test"}]}`,
			"", []AllowRule{{Type: AllowTypeRoomMembership, RoomID: "!s:a.test"}}},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			var content json.RawMessage
			if tc.content != "" {
				content = json.RawMessage(tc.content)
			}
			rule, allow := JoinRule(content)
			if rule != tc.rule || !slices.Equal(allow, tc.allow) {
				t.Fatalf("JoinRule = %q, %v; want %q, %v", rule, allow, tc.rule, tc.allow)
			}
		})
	}
}

func TestHistoryVisibility(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"", HistoryShared},
		{`{}`, HistoryShared},
		{`{"history_visibility":"invited"}`, HistoryInvited},
		{`{"history_visibility":"joined"}`, HistoryJoined},
		{`{"history_visibility":"shared"}`, HistoryShared},
		{`{"history_visibility":"world_readable"}`, HistoryWorldReadable},
		{`{"history_visibility":"everyone"}`, HistoryShared},
		{`{"history_visibility":1}`, HistoryShared},
		{`[]`, HistoryShared},
	} {
		t.Run(tc.content, func(t *testing.T) {
			var content json.RawMessage
			if tc.content != "" {
				content = json.RawMessage(tc.content)
			}
			if got := HistoryVisibility(content); got != tc.want {
				t.Fatalf("HistoryVisibility = %q, want %q", got, tc.want)
			}
		})
	}
}
