package push

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func ruleIDs(rules []Rule) []string {
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.RuleID)
	}
	return ids
}

func TestDefaultsOrder(t *testing.T) {
	rs := Defaults("@alice:example.org", "alice")
	want := map[string][]string{
		KindOverride: {
			".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
			".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
			".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
			".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits",
		},
		KindContent: {".m.rule.contains_user_name"},
		KindRoom:    nil,
		KindSender:  nil,
		KindUnderride: {
			".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
			".m.rule.message", ".m.rule.encrypted",
		},
	}
	for _, kind := range Kinds() {
		rules, err := rs.Rules(kind)
		if err != nil {
			t.Fatal(err)
		}
		if got := ruleIDs(rules); !slices.Equal(got, want[kind]) {
			t.Errorf("%s: %q, want %q", kind, got, want[kind])
		}
		for _, r := range rules {
			if !r.Default {
				t.Errorf("%s is not marked default", r.RuleID)
			}
			if r.Enabled != (r.RuleID != RuleMaster) {
				t.Errorf("%s enabled = %v", r.RuleID, r.Enabled)
			}
		}
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs:\n got %s\nwant %s", got, want)
	}
}

// The definitions below are those of the specification's "Predefined Rules",
// with the user's ID and localpart filled in.
func TestDefaultsJSON(t *testing.T) {
	rs := Defaults("@alice:example.org", "alice")
	cases := []struct {
		kind, id, want string
	}{
		{KindOverride, ".m.rule.master", `{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}`},
		{KindOverride, ".m.rule.invite_for_me", `{"rule_id":".m.rule.invite_for_me","default":true,"enabled":true,
			"conditions":[{"key":"type","kind":"event_match","pattern":"m.room.member"},
				{"key":"content.membership","kind":"event_match","pattern":"invite"},
				{"key":"state_key","kind":"event_match","pattern":"@alice:example.org"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{KindOverride, ".m.rule.is_user_mention", `{"rule_id":".m.rule.is_user_mention","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@alice:example.org"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{KindOverride, ".m.rule.is_room_mention", `{"rule_id":".m.rule.is_room_mention","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true},
				{"kind":"sender_notification_permission","key":"room"}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{KindOverride, ".m.rule.tombstone", `{"rule_id":".m.rule.tombstone","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.tombstone"},
				{"kind":"event_match","key":"state_key","pattern":""}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{KindOverride, ".m.rule.suppress_edits", `{"rule_id":".m.rule.suppress_edits","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_is","key":"content.m\\.relates_to.rel_type","value":"m.replace"}],
			"actions":[]}`},
		{KindContent, ".m.rule.contains_user_name", `{"rule_id":".m.rule.contains_user_name","default":true,"enabled":true,
			"pattern":"alice","actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{KindUnderride, ".m.rule.call", `{"rule_id":".m.rule.call","default":true,"enabled":true,
			"conditions":[{"key":"type","kind":"event_match","pattern":"m.call.invite"}],
			"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`},
		{KindUnderride, ".m.rule.encrypted_room_one_to_one", `{"rule_id":".m.rule.encrypted_room_one_to_one","default":true,"enabled":true,
			"conditions":[{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"m.room.encrypted"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			r, err := Get(rs, tc.kind, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, got, tc.want)
		})
	}
}

func TestRulesetJSONRoundTrip(t *testing.T) {
	rs := Defaults("@alice:example.org", "alice")
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var back Ruleset
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rs) {
		t.Errorf("round trip changed the rules:\n%+v\n%+v", back, rs)
	}
	empty, err := json.Marshal(Ruleset{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, empty, `{"override":[],"content":[],"room":[],"sender":[],"underride":[]}`)
	rule, err := json.Marshal(Rule{RuleID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, rule, `{"rule_id":"x","default":false,"enabled":false,"actions":[]}`)
}

func TestAction(t *testing.T) {
	var got []Action
	in := `["notify", "dont_notify", "coalesce", { "set_tweak" : "sound", "value" : "default" }, {"set_tweak":"highlight"}, {"x":[1, 2]}]`
	if err := json.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := []Action{ActionNotify, ActionDontNotify, ActionCoalesce, SoundTweak("default"), HighlightTweak(true), `{"x":[1,2]}`}
	if !slices.Equal(got, want) {
		t.Errorf("decoded %q, want %q", got, want)
	}
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, in)

	for _, bad := range []string{`[1]`, `[null]`, `[[]]`, `[true]`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("decoded %s without error", bad)
		}
	}
	if _, err := json.Marshal([]Action{"notify"}); err == nil {
		t.Error("marshalled an action that is not JSON")
	}

	tweaks := []struct {
		a     Action
		name  string
		value string
		ok    bool
	}{
		{SoundTweak("ring"), "sound", `"ring"`, true},
		{HighlightTweak(true), "highlight", "", true},
		{HighlightTweak(false), "highlight", "false", true},
		{SetTweak("x", json.RawMessage(`{ "a" : 1 }`)), "x", `{"a":1}`, true},
		{ActionNotify, "", "", false},
		{`{"value":1}`, "", "", false},
		{`{"set_tweak":1}`, "", "", false},
	}
	for _, tc := range tweaks {
		name, value, ok := tc.a.Tweak()
		if name != tc.name || string(value) != tc.value || ok != tc.ok {
			t.Errorf("%s.Tweak() = %q, %s, %v; want %q, %s, %v", tc.a, name, value, ok, tc.name, tc.value, tc.ok)
		}
	}
}
