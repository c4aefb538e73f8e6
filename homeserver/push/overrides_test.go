package push

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
)

var notifyOnly = []Action{ActionNotify}

func mustPut(t *testing.T, o *Overrides, kind, id string, r Rule, before, after string) {
	t.Helper()
	if err := o.Put(kind, id, r, before, after); err != nil {
		t.Fatalf("Put(%s, %s, before=%q, after=%q): %v", kind, id, before, after, err)
	}
}

func TestPutRefuses(t *testing.T) {
	ok := Rule{Actions: notifyOnly}
	cases := []struct {
		name, kind, id string
		rule           Rule
		before, after  string
	}{
		{"unknown kind", "global", "x", ok, "", ""},
		{"empty ID", KindOverride, "", ok, "", ""},
		{"reserved ID", KindOverride, ".m.rule.master", ok, "", ""},
		{"reserved custom ID", KindUnderride, ".mine", ok, "", ""},
		{"slash", KindOverride, "a/b", ok, "", ""},
		{"backslash", KindOverride, `a\b`, ok, "", ""},
		{"room rule not a room", KindRoom, "@bob:example.org", ok, "", ""},
		{"room rule bare sigil", KindRoom, "!", ok, "", ""},
		{"sender rule not a user", KindSender, "!room:example.org", ok, "", ""},
		{"content without pattern", KindContent, "c", ok, "", ""},
		{"no actions", KindOverride, "x", Rule{}, "", ""},
		{"action not JSON", KindOverride, "x", Rule{Actions: []Action{"notify"}}, "", ""},
		{"action a number", KindOverride, "x", Rule{Actions: []Action{"1"}}, "", ""},
		{"condition without kind", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Key: "type"}}}, "", ""},
		{"event_match without key", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondEventMatch, Pattern: "x"}}}, "", ""},
		{"property_is object", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondEventPropertyIs, Key: "a", Value: json.RawMessage(`{}`)}}}, "", ""},
		{"property_is float", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondEventPropertyIs, Key: "a", Value: json.RawMessage(`1.5`)}}}, "", ""},
		{"property_contains no value", KindUnderride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondEventPropertyContains, Key: "a"}}}, "", ""},
		{"member count", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondRoomMemberCount, Is: "~2"}}}, "", ""},
		{"permission without key", KindOverride, "x", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: CondSenderNotificationPermission}}}, "", ""},
		{"before unknown", KindOverride, "x", ok, "nope", ""},
		{"after unknown", KindOverride, "x", ok, "", "nope"},
		{"before a default", KindOverride, "x", ok, ".m.rule.master", ""},
		{"after a default", KindUnderride, "x", ok, "", ".m.rule.message"},
		{"before itself", KindOverride, "a", ok, "a", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o Overrides
			mustPut(t, &o, KindOverride, "a", ok, "", "")
			before, _ := json.Marshal(o)
			err := o.Put(tc.kind, tc.id, tc.rule, tc.before, tc.after)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if after, _ := json.Marshal(o); string(after) != string(before) {
				t.Errorf("a refused Put changed the record:\n%s\n%s", before, after)
			}
		})
	}
}

func TestPutAccepts(t *testing.T) {
	var o Overrides
	mustPut(t, &o, KindRoom, room, Rule{Actions: []Action{}}, "", "")
	mustPut(t, &o, KindSender, carol, Rule{Actions: []Action{ActionDontNotify}}, "", "")
	mustPut(t, &o, KindOverride, "unknown-condition", Rule{Actions: notifyOnly, Conditions: []Condition{{Kind: "org.example.future", Key: "x"}}}, "", "")
	mustPut(t, &o, KindOverride, "no-conditions", Rule{Actions: notifyOnly}, "", "")
	// Fields that do not belong to the kind are dropped.
	mustPut(t, &o, KindContent, "c", Rule{Pattern: "cake", Actions: notifyOnly,
		Conditions: []Condition{{Kind: CondEventMatch, Key: "type", Pattern: "x"}}}, "", "")
	mustPut(t, &o, KindUnderride, "u", Rule{Pattern: "cake", Actions: notifyOnly, RuleID: "other", Default: true, Enabled: false}, "", "")

	c, _ := Get(o.Rules, KindContent, "c")
	if c.Conditions != nil || c.Pattern != "cake" {
		t.Errorf("content rule = %+v", c)
	}
	u, _ := Get(o.Rules, KindUnderride, "u")
	if u.Pattern != "" || u.RuleID != "u" || u.Default || !u.Enabled || u.Conditions == nil {
		t.Errorf("underride rule = %+v: want own ID, not default, enabled, no pattern, [] conditions", u)
	}
	r, _ := Get(o.Rules, KindRoom, room)
	if r.Conditions != nil || r.Actions == nil {
		t.Errorf("room rule = %+v", r)
	}
}

func TestPutOrder(t *testing.T) {
	var o Overrides
	put := func(id, before, after string) {
		t.Helper()
		mustPut(t, &o, KindOverride, id, Rule{Actions: notifyOnly}, before, after)
	}
	order := func(want ...string) {
		t.Helper()
		if got := ruleIDs(o.Rules.Override); !slices.Equal(got, want) {
			t.Errorf("order %q, want %q", got, want)
		}
	}
	put("a", "", "")
	put("b", "", "") // a new rule becomes the most important
	order("b", "a")
	put("c", "", "b")
	order("b", "c", "a")
	put("d", "b", "")
	order("d", "b", "c", "a")
	put("e", "a", "d") // before wins over after
	order("d", "b", "c", "e", "a")
	put("f", "", "a")
	order("d", "b", "c", "e", "a", "f")

	// An update keeps its place and its enabled flag unless moved.
	if err := o.SetEnabled(KindOverride, "c", false); err != nil {
		t.Fatal(err)
	}
	mustPut(t, &o, KindOverride, "c", Rule{Actions: []Action{}}, "", "")
	order("d", "b", "c", "e", "a", "f")
	c, _ := Get(o.Rules, KindOverride, "c")
	if c.Enabled || len(c.Actions) != 0 {
		t.Errorf("updated rule = %+v, want disabled with no actions", c)
	}
	put("c", "d", "")
	order("c", "d", "b", "e", "a", "f")
	put("c", "", "f")
	order("d", "b", "e", "a", "f", "c")
	put("f", "", "c")
	order("d", "b", "e", "a", "c", "f")
}

func TestDelete(t *testing.T) {
	var o Overrides
	mustPut(t, &o, KindOverride, "a", Rule{Actions: notifyOnly}, "", "")
	mustPut(t, &o, KindSender, carol, Rule{Actions: notifyOnly}, "", "")
	cases := []struct {
		kind, id string
		want     error
	}{
		{KindOverride, ".m.rule.master", ErrDefaultRule},
		{KindContent, ".m.rule.contains_user_name", ErrDefaultRule},
		{KindUnderride, ".m.rule.message", ErrDefaultRule},
		{KindOverride, ".m.rule.message", ErrNotFound}, // a default, but of another kind
		{KindOverride, ".m.rule.nonexistent", ErrNotFound},
		{KindOverride, "nope", ErrNotFound},
		{KindSender, "a", ErrNotFound},
		{"global", "a", ErrInvalid},
		{KindOverride, "a", nil},
		{KindOverride, "a", ErrNotFound}, // already gone
		{KindSender, carol, nil},
	}
	for _, tc := range cases {
		if err := o.Delete(tc.kind, tc.id); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Delete(%s, %s) = %v, want %v", tc.kind, tc.id, err, tc.want)
		}
	}
	if len(o.Rules.Override) != 0 || len(o.Rules.Sender) != 0 {
		t.Errorf("rules left: %+v", o.Rules)
	}
}

func TestSetEnabledAndActions(t *testing.T) {
	var o Overrides
	mustPut(t, &o, KindContent, "cake", Rule{Pattern: "cake", Actions: notifyOnly}, "", "")

	for _, tc := range []struct {
		kind, id string
		want     error
	}{
		{KindContent, "cake", nil},
		{KindUnderride, ".m.rule.message", nil},
		{KindOverride, ".m.rule.master", nil},
		{KindOverride, ".m.rule.message", ErrNotFound},
		{KindContent, "pie", ErrNotFound},
		{"global", "cake", ErrInvalid},
	} {
		if err := o.SetEnabled(tc.kind, tc.id, true); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("SetEnabled(%s, %s) = %v, want %v", tc.kind, tc.id, err, tc.want)
		}
		if err := o.SetActions(tc.kind, tc.id, []Action{}); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("SetActions(%s, %s) = %v, want %v", tc.kind, tc.id, err, tc.want)
		}
	}
	if err := o.SetActions(KindContent, "cake", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetActions(nil) = %v, want ErrInvalid", err)
	}
	if err := o.SetActions(KindContent, "cake", []Action{"notify"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetActions(bare word) = %v, want ErrInvalid", err)
	}

	// Enabling the master rule and emptying .m.rule.message's actions are
	// recorded; enabling the already enabled .m.rule.message is not.
	rs := Apply(Defaults(alice, "alice"), o)
	master, _ := Get(rs, KindOverride, RuleMaster)
	msg, _ := Get(rs, KindUnderride, ".m.rule.message")
	if !master.Enabled || len(master.Actions) != 0 || !msg.Enabled || len(msg.Actions) != 0 || msg.Actions == nil {
		t.Errorf("master %+v, message %+v", master, msg)
	}
	if len(o.Defaults) != 2 {
		t.Errorf("changes recorded: %+v", o.Defaults)
	}

	// Setting them back to their defaults leaves no record behind.
	if err := o.SetEnabled(KindOverride, RuleMaster, false); err != nil {
		t.Fatal(err)
	}
	if err := o.SetActions(KindUnderride, ".m.rule.message", []Action{ActionNotify}); err != nil {
		t.Fatal(err)
	}
	if o.Defaults != nil {
		t.Errorf("changes left after reverting: %+v", o.Defaults)
	}
}

func TestApply(t *testing.T) {
	var o Overrides
	mustPut(t, &o, KindOverride, "mine", Rule{Actions: notifyOnly}, "", "")
	mustPut(t, &o, KindContent, "cake", Rule{Pattern: "cake", Actions: notifyOnly}, "", "")
	mustPut(t, &o, KindUnderride, "late", Rule{Actions: notifyOnly}, "", "")
	if err := o.SetEnabled(KindOverride, ".m.rule.suppress_notices", false); err != nil {
		t.Fatal(err)
	}
	// A record read from storage may hold what the methods never write.
	o.Rules.Room = append(o.Rules.Room, Rule{RuleID: ".m.rule.sneaky", Actions: notifyOnly})
	o.Defaults = append(o.Defaults, DefaultChange{Kind: KindOverride, RuleID: ".m.rule.gone", Enabled: new(bool)})

	defaults := Defaults(alice, "alice")
	rs := Apply(defaults, o)
	if got := ruleIDs(rs.Override)[:3]; !slices.Equal(got, []string{RuleMaster, "mine", ".m.rule.suppress_notices"}) {
		t.Errorf("override starts %q", got)
	}
	if got := ruleIDs(rs.Content); !slices.Equal(got, []string{"cake", RuleContainsUserName}) {
		t.Errorf("content %q", got)
	}
	if got := ruleIDs(rs.Underride); got[0] != "late" || len(got) != len(defaults.Underride)+1 {
		t.Errorf("underride %q", got)
	}
	if len(rs.Room) != 0 || rs.Room == nil || rs.Sender == nil {
		t.Errorf("room %+v, sender %+v", rs.Room, rs.Sender)
	}
	if r, _ := Get(rs, KindOverride, ".m.rule.suppress_notices"); r.Enabled || !r.Default {
		t.Errorf("suppress_notices = %+v", r)
	}
	if r, _ := Get(rs, KindOverride, "mine"); r.Default {
		t.Errorf("user rule marked default")
	}

	// The result shares nothing with its inputs.
	rs.Override[1].Actions[0] = ActionCoalesce
	rs.Underride[len(rs.Underride)-1].Conditions[0].Pattern = "x"
	if o.Rules.Override[0].Actions[0] != ActionNotify {
		t.Error("Apply's result aliases the overrides")
	}
	if !reflect.DeepEqual(defaults, Defaults(alice, "alice")) {
		t.Error("Apply's result aliases the defaults")
	}
}

// Overrides survive the JSON a caller stores them as.
func TestOverridesJSON(t *testing.T) {
	var o Overrides
	mustPut(t, &o, KindOverride, "beer", Rule{
		Conditions: []Condition{
			{Kind: CondEventMatch, Key: "content.body", Pattern: "beer"},
			{Kind: CondRoomMemberCount, Is: "<=10"},
			{Kind: CondEventPropertyIs, Key: "content.n", Value: json.RawMessage(`null`)},
			{Kind: CondEventMatch, Key: "state_key", Pattern: ""},
		},
		Actions: []Action{ActionNotify, SoundTweak("beeroclock.wav")},
	}, "", "")
	mustPut(t, &o, KindRoom, room, Rule{Actions: []Action{}}, "", "")
	if err := o.SetActions(KindUnderride, ".m.rule.message", []Action{}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetEnabled(KindOverride, ".m.rule.reaction", false); err != nil {
		t.Fatal(err)
	}
	stored, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Overrides
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	d := Defaults(alice, "alice")
	if want, got := Apply(d, o), Apply(d, back); !reflect.DeepEqual(got, want) {
		t.Errorf("stored record %s applies differently:\n got %+v\nwant %+v", stored, got, want)
	}
	if r, _ := Get(Apply(d, back), KindUnderride, ".m.rule.message"); r.Actions == nil || len(r.Actions) != 0 {
		t.Errorf("emptied actions came back as %#v", r.Actions)
	}
}

// What users do with the API, end to end through Apply and Evaluate.
func TestOverridesEvaluate(t *testing.T) {
	mutedRoom := func(o *Overrides) {
		mustPut(t, o, KindRoom, room, Rule{Actions: []Action{}}, "", "")
	}
	cases := []struct {
		name  string
		edit  func(o *Overrides)
		event string
		want  outcome
		ctx   func(*EvalContext)
	}{
		{"muted room: messages are silent", mutedRoom, message(carol, `{"body":"hi"}`), silent(room), nil},
		{"muted room: 1:1 too", mutedRoom, message(carol, `{"body":"hi"}`), silent(room), members(2)},
		{"muted room: a mention still highlights", mutedRoom,
			message(carol, `{"body":"hi","m.mentions":{"user_ids":["@alice:example.org"]}}`), mentions(".m.rule.is_user_mention"), nil},
		{"muted room: the user name still highlights", mutedRoom,
			message(carol, `{"body":"alice?"}`), mentions(RuleContainsUserName), nil},
		{"muted room: another room notifies", mutedRoom,
			`{"type":"m.room.message","sender":"@carol:example.org","room_id":"!other:example.org","content":{"body":"hi"}}`,
			notifies(".m.rule.message"), nil},
		{"muted sender", func(o *Overrides) {
			mustPut(t, o, KindSender, carol, Rule{Actions: []Action{ActionDontNotify}}, "", "")
		}, message(carol, `{"body":"hi"}`), silent(carol), nil},
		{"message rule disabled", func(o *Overrides) {
			if err := o.SetEnabled(KindUnderride, ".m.rule.message", false); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"body":"hi"}`), noRule, nil},
		{"notices allowed", func(o *Overrides) {
			if err := o.SetEnabled(KindOverride, ".m.rule.suppress_notices", false); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"msgtype":"m.notice","body":"build ok"}`), notifies(".m.rule.message"), nil},
		{"master enabled", func(o *Overrides) {
			mustPut(t, o, KindOverride, "loud", Rule{Actions: []Action{ActionNotify, HighlightTweak(true)}}, "", "")
			if err := o.SetEnabled(KindOverride, RuleMaster, true); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"body":"hi"}`), silent(RuleMaster), nil},
		{"highlight all messages", func(o *Overrides) {
			if err := o.SetActions(KindUnderride, ".m.rule.message", []Action{ActionNotify, HighlightTweak(true)}); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"body":"hi"}`), mentions(".m.rule.message"), nil},
		{"the spec's beer rule", func(o *Overrides) {
			mustPut(t, o, KindOverride, "beer", Rule{
				Conditions: []Condition{
					{Kind: CondEventMatch, Key: "content.body", Pattern: "beer"},
					{Kind: CondRoomMemberCount, Is: "<=10"},
				},
				Actions: []Action{ActionNotify, SoundTweak("beeroclock.wav")},
			}, "", "")
		}, message(carol, `{"body":"Beer?","msgtype":"m.notice"}`), notifies("beer"), nil},
		{"the spec's beer rule in a big room", func(o *Overrides) {
			mustPut(t, o, KindOverride, "beer", Rule{
				Conditions: []Condition{
					{Kind: CondEventMatch, Key: "content.body", Pattern: "beer"},
					{Kind: CondRoomMemberCount, Is: "<=10"},
				},
				Actions: []Action{ActionNotify, SoundTweak("beeroclock.wav")},
			}, "", "")
		}, message(carol, `{"body":"Beer?","msgtype":"m.notice"}`), silent(".m.rule.suppress_notices"), members(11)},
		{"content rules in order: before", func(o *Overrides) {
			mustPut(t, o, KindContent, "cake", Rule{Pattern: "cake", Actions: notifyOnly}, "", "")
			mustPut(t, o, KindContent, "lie", Rule{Pattern: "cake*lie", Actions: []Action{}}, "cake", "")
		}, message(carol, `{"body":"the cake is a lie"}`), silent("lie"), nil},
		{"content rules in order: after", func(o *Overrides) {
			mustPut(t, o, KindContent, "cake", Rule{Pattern: "cake", Actions: notifyOnly}, "", "")
			mustPut(t, o, KindContent, "lie", Rule{Pattern: "cake*lie", Actions: []Action{}}, "", "cake")
		}, message(carol, `{"body":"the cake is a lie"}`), notifies("cake"), nil},
		{"custom rule disabled", func(o *Overrides) {
			mustPut(t, o, KindContent, "hush", Rule{Pattern: "hi", Actions: []Action{}}, "", "")
			if err := o.SetEnabled(KindContent, "hush", false); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"body":"hi"}`), notifies(".m.rule.message"), nil},
		{"custom rule deleted", func(o *Overrides) {
			mutedRoom(o)
			if err := o.Delete(KindRoom, room); err != nil {
				t.Fatal(err)
			}
		}, message(carol, `{"body":"hi"}`), notifies(".m.rule.message"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o Overrides
			tc.edit(&o)
			rs := Apply(Defaults(alice, "alice"), o)
			runEvalCases(t, rs, []evalCase{{tc.name, tc.event, tc.want, tc.ctx}})
		})
	}
}
