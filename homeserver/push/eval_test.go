package push

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
)

const (
	alice = "@alice:example.org" // owns the rules
	bob   = "@bob:example.org"   // a moderator
	carol = "@carol:example.org" // no power
	room  = "!room:example.org"
)

// aliceContext is alice in a five-member room where bob has power level 50
// and @room needs the default 50.
func aliceContext() EvalContext {
	return EvalContext{
		UserID:      alice,
		DisplayName: "Wonderland Girl",
		MemberCount: 5,
		PowerLevelOf: func(userID string) int64 {
			if userID == bob {
				return 50
			}
			return 0
		},
		NotificationLevel: func(key string) int64 { return 50 },
	}
}

// event builds a client-format event.
func event(typ, sender string, stateKey *string, content string) string {
	ev := map[string]any{
		"type": typ, "sender": sender, "room_id": room,
		"content": json.RawMessage(content), "event_id": "$e", "origin_server_ts": 1,
	}
	if stateKey != nil {
		ev["state_key"] = *stateKey
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func message(sender, content string) string { return event("m.room.message", sender, nil, content) }

func state(typ, sender, stateKey, content string) string {
	return event(typ, sender, &stateKey, content)
}

// outcome is what a test expects of an evaluation: the rule that matched
// ("" for none) and what it means for the counts.
type outcome struct {
	rule      string
	notify    bool
	highlight bool
}

var (
	silent   = func(rule string) outcome { return outcome{rule, false, false} }
	notifies = func(rule string) outcome { return outcome{rule, true, false} }
	mentions = func(rule string) outcome { return outcome{rule, true, true} }
	noRule   = outcome{}
)

type evalCase struct {
	name  string
	event string
	want  outcome
	// edit adjusts the context; nil keeps aliceContext().
	edit func(*EvalContext)
}

func runEvalCases(t *testing.T, rs Ruleset, cases []evalCase) {
	t.Helper()
	c := Compile(rs)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ec := aliceContext()
			if tc.edit != nil {
				tc.edit(&ec)
			}
			got := outcome{}
			if r := c.evaluate([]byte(tc.event), &ec); r != nil {
				got = outcome{r.id, r.notify, r.highlight}
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v\nevent %s", got, tc.want, tc.event)
			}
			// Evaluate reports the same as the rule found.
			notify, highlight, actions := c.Evaluate(json.RawMessage(tc.event), ec)
			if notify != tc.want.notify || highlight != tc.want.highlight {
				t.Errorf("Evaluate = %v, %v; want %v, %v", notify, highlight, tc.want.notify, tc.want.highlight)
			}
			if (actions == nil) != (tc.want.rule == "") {
				t.Errorf("Evaluate actions = %q for rule %q", actions, tc.want.rule)
			}
			// And so does the one-shot form.
			if n, h, _ := Evaluate(rs, json.RawMessage(tc.event), ec); n != notify || h != highlight {
				t.Errorf("one-shot Evaluate = %v, %v; compiled %v, %v", n, h, notify, highlight)
			}
		})
	}
}

func members(n int) func(*EvalContext) { return func(ec *EvalContext) { ec.MemberCount = n } }

// Each default rule fires on an event it is meant for, and a near miss goes
// to the rule that should take it instead.
func TestDefaultRules(t *testing.T) {
	rs := Defaults(alice, "alice")
	runEvalCases(t, rs, []evalCase{
		{"suppress_notices", message(bob, `{"msgtype":"m.notice","body":"alice: build failed"}`),
			silent(".m.rule.suppress_notices"), nil},
		{"not a notice", message(bob, `{"msgtype":"m.text","body":"hello"}`),
			notifies(".m.rule.message"), nil},

		{"invite_for_me", state("m.room.member", bob, alice, `{"membership":"invite"}`),
			outcome{".m.rule.invite_for_me", true, false}, nil},
		{"invite for someone else", state("m.room.member", bob, carol, `{"membership":"invite"}`),
			silent(".m.rule.member_event"), nil},
		{"member_event", state("m.room.member", carol, carol, `{"membership":"join"}`),
			silent(".m.rule.member_event"), nil},

		{"is_user_mention", message(carol, `{"body":"hi","m.mentions":{"user_ids":["@carol:example.org","@alice:example.org"]}}`),
			mentions(".m.rule.is_user_mention"), nil},
		{"mentions someone else", message(carol, `{"body":"hi alice","m.mentions":{"user_ids":["@carol:example.org"]}}`),
			notifies(".m.rule.message"), nil},
		{"user_ids not an array", message(carol, `{"body":"hi","m.mentions":{"user_ids":"@alice:example.org"}}`),
			notifies(".m.rule.message"), nil},
		{"user ID differs in case", message(carol, `{"body":"hi","m.mentions":{"user_ids":["@Alice:example.org"]}}`),
			notifies(".m.rule.message"), nil},

		{"contains_display_name", message(carol, `{"body":"is the wonderland girl here?"}`),
			mentions(".m.rule.contains_display_name"), nil},
		{"display name inside a word", message(carol, `{"body":"wonderland girls"}`),
			notifies(".m.rule.message"), nil},
		{"display name with m.mentions", message(carol, `{"body":"wonderland girl","m.mentions":{}}`),
			notifies(".m.rule.message"), nil},
		{"no display name", message(carol, `{"body":"wonderland girl"}`),
			notifies(".m.rule.message"), func(ec *EvalContext) { ec.DisplayName = "" }},

		{"is_room_mention", message(bob, `{"body":"all","m.mentions":{"room":true}}`),
			mentions(".m.rule.is_room_mention"), nil},
		{"room mention without power", message(carol, `{"body":"all","m.mentions":{"room":true}}`),
			notifies(".m.rule.message"), nil},
		{"room mention as a string", message(bob, `{"body":"all","m.mentions":{"room":"true"}}`),
			notifies(".m.rule.message"), nil},
		{"room mention with a lower requirement", message(carol, `{"body":"all","m.mentions":{"room":true}}`),
			mentions(".m.rule.is_room_mention"),
			func(ec *EvalContext) { ec.NotificationLevel = func(string) int64 { return 0 } }},

		{"roomnotif", message(bob, `{"body":"@room meeting now"}`),
			mentions(".m.rule.roomnotif"), nil},
		{"roomnotif without power", message(carol, `{"body":"@room meeting now"}`),
			notifies(".m.rule.message"), nil},
		{"roomnotif with m.mentions", message(bob, `{"body":"@room meeting now","m.mentions":{}}`),
			notifies(".m.rule.message"), nil},
		{"@room inside a word", message(bob, `{"body":"see@room"}`),
			notifies(".m.rule.message"), nil},

		{"tombstone", state("m.room.tombstone", bob, "", `{"body":"moved","replacement_room":"!new:example.org"}`),
			mentions(".m.rule.tombstone"), nil},
		{"tombstone not as state", event("m.room.tombstone", bob, nil, `{"replacement_room":"!new:example.org"}`),
			noRule, nil},
		{"tombstone with a state key", state("m.room.tombstone", bob, "x", `{}`),
			noRule, nil},

		{"reaction", event("m.reaction", carol, nil, `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$e","key":"👍"}}`),
			silent(".m.rule.reaction"), nil},
		{"reaction in a 1:1 room", event("m.reaction", carol, nil, `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$e","key":"alice"}}`),
			silent(".m.rule.reaction"), members(2)},

		{"server_acl", state("m.room.server_acl", bob, "", `{"allow":["*"]}`),
			silent(".m.rule.room.server_acl"), nil},

		{"suppress_edits", message(carol, `{"body":"* alice fixed","m.new_content":{"body":"alice fixed"},"m.relates_to":{"rel_type":"m.replace","event_id":"$e"}}`),
			silent(".m.rule.suppress_edits"), nil},
		{"thread reply is no edit", message(carol, `{"body":"more","m.relates_to":{"rel_type":"m.thread","event_id":"$e"}}`),
			notifies(".m.rule.message"), nil},
		{"edit key without escaping", message(carol, `{"body":"x","m":{"relates_to":{"rel_type":"m.replace"}}}`),
			notifies(".m.rule.message"), nil},

		{"contains_user_name", message(carol, `{"body":"Alice: lunch?"}`),
			mentions(".m.rule.contains_user_name"), nil},
		{"user name inside a word", message(carol, `{"body":"no malice meant"}`),
			notifies(".m.rule.message"), nil},
		{"user name with m.mentions", message(carol, `{"body":"alice: lunch?","m.mentions":{"user_ids":[]}}`),
			notifies(".m.rule.message"), nil},

		{"call", event("m.call.invite", carol, nil, `{"call_id":"c","version":"1"}`),
			notifies(".m.rule.call"), nil},

		{"encrypted_room_one_to_one", event("m.room.encrypted", carol, nil, `{"algorithm":"m.megolm.v1.aes-sha2"}`),
			notifies(".m.rule.encrypted_room_one_to_one"), members(2)},
		{"encrypted in a group", event("m.room.encrypted", carol, nil, `{"algorithm":"m.megolm.v1.aes-sha2"}`),
			notifies(".m.rule.encrypted"), nil},

		{"room_one_to_one", message(carol, `{"msgtype":"m.text","body":"hi"}`),
			notifies(".m.rule.room_one_to_one"), members(2)},
		{"message in a group", message(carol, `{"msgtype":"m.text","body":"hi"}`),
			notifies(".m.rule.message"), members(3)},

		{"topic change", state("m.room.topic", carol, "", `{"topic":"alice"}`),
			noRule, nil},
		{"invalid JSON", `{"type":"m.room.message",`, noRule, nil},
		{"not an object", `["m.room.message"]`, noRule, nil},
	})
}

// Events the user sent never notify: Evaluate itself excludes them.
func TestOwnEventsNeverNotify(t *testing.T) {
	rs := Defaults(alice, "alice")
	runEvalCases(t, rs, []evalCase{
		{"own mention", message(alice, `{"body":"alice","m.mentions":{"user_ids":["@alice:example.org"],"room":true}}`),
			noRule, nil},
		{"own message in a 1:1 room", message(alice, `{"body":"hi"}`), noRule, members(2)},
		{"own invite of herself", state("m.room.member", alice, alice, `{"membership":"invite"}`), noRule, nil},
		{"without a user ID nothing is excluded", message(alice, `{"body":"hi"}`),
			notifies(".m.rule.message"), func(ec *EvalContext) { ec.UserID = "" }},
	})
}

func TestMasterRule(t *testing.T) {
	rs := Defaults(alice, "alice")
	rs.Override[0].Enabled = true
	runEvalCases(t, rs, []evalCase{
		{"mention", message(carol, `{"body":"hi","m.mentions":{"user_ids":["@alice:example.org"]}}`), silent(RuleMaster), nil},
		{"message", message(carol, `{"body":"hi"}`), silent(RuleMaster), members(2)},
		{"invite", state("m.room.member", bob, alice, `{"membership":"invite"}`), silent(RuleMaster), nil},
		{"any event", event("org.example.custom", carol, nil, `{}`), silent(RuleMaster), nil},
	})
}

// override builds a custom override rule.
func override(id string, actions []Action, conds ...Condition) Rule {
	if conds == nil {
		conds = []Condition{}
	}
	return Rule{RuleID: id, Enabled: true, Conditions: conds, Actions: actions}
}

func TestConditions(t *testing.T) {
	notify := []Action{ActionNotify}
	is := func(key, value string) Condition {
		return Condition{Kind: CondEventPropertyIs, Key: key, Value: json.RawMessage(value)}
	}
	contains := func(key, value string) Condition {
		return Condition{Kind: CondEventPropertyContains, Key: key, Value: json.RawMessage(value)}
	}
	count := func(is string) Condition { return Condition{Kind: CondRoomMemberCount, Is: is} }
	match := func(key, pattern string) Condition {
		return Condition{Kind: CondEventMatch, Key: key, Pattern: pattern}
	}
	ev := func(content string) string { return event("org.example.test", carol, nil, content) }

	cases := []struct {
		cond  Condition
		event string
		edit  func(*EvalContext)
		want  bool
	}{
		{is("content.n", `7`), ev(`{"n":7}`), nil, true},
		{is("content.n", `7`), ev(`{"n":7.0}`), nil, false},
		{is("content.n", `7`), ev(`{"n":"7"}`), nil, false},
		{is("content.n", `-7`), ev(`{"n":-7}`), nil, true},
		{is("content.n", `true`), ev(`{"n":true}`), nil, true},
		{is("content.n", `true`), ev(`{"n":1}`), nil, false},
		{is("content.n", `null`), ev(`{"n":null}`), nil, true},
		{is("content.n", `null`), ev(`{}`), nil, false},
		{is("content.n", `"x"`), ev(`{"n":"x"}`), nil, true},
		{is("content.n", `"x"`), ev(`{"n":"X"}`), nil, false},
		{is("content.n", `"x"`), ev(`{"n":["x"]}`), nil, false},
		{is("content.n", `{"a":1}`), ev(`{"n":{"a":1}}`), nil, false},
		{is("content.n", `1.5`), ev(`{"n":1.5}`), nil, false},
		{is(`content.m\.federate`, `true`), ev(`{"m.federate":true}`), nil, true},
		{is(`content.m\.federate`, `true`), ev(`{"m":{"federate":true}}`), nil, false},
		{is(`content.m.federate`, `true`), ev(`{"m":{"federate":true}}`), nil, true},
		{is(`content.a\\b`, `1`), ev(`{"a\\b":1}`), nil, true},

		{contains("content.alt_aliases", `"#myroom:example.com"`), ev(`{"alt_aliases":["#somewhere:example.org","#myroom:example.com"]}`), nil, true},
		{contains("content.alt_aliases", `"#myroom:example.com"`), ev(`{"alt_aliases":[":example.com"]}`), nil, false},
		{contains("content.alt_aliases", `"#myroom:example.com"`), ev(`{"alt_aliases":"#myroom:example.com"}`), nil, false},
		{contains("content.l", `3`), ev(`{"l":[1,[3],{"a":3},3]}`), nil, true},
		{contains("content.l", `3`), ev(`{"l":[1,[3],{"a":3}]}`), nil, false},
		{contains("content.l", `null`), ev(`{"l":[null]}`), nil, true},
		{contains("content.l", `false`), ev(`{"l":[]}`), nil, false},

		{count("2"), ev(`{}`), members(2), true},
		{count("==2"), ev(`{}`), members(2), true},
		{count("==2"), ev(`{}`), members(3), false},
		{count("<2"), ev(`{}`), members(1), true},
		{count("<2"), ev(`{}`), members(2), false},
		{count("<=2"), ev(`{}`), members(2), true},
		{count(">2"), ev(`{}`), members(2), false},
		{count(">=3"), ev(`{}`), members(3), true},
		{count(">=3"), ev(`{}`), members(2), false},
		{count("x2"), ev(`{}`), members(2), false},
		{count(""), ev(`{}`), members(0), false},
		{count("-1"), ev(`{}`), members(0), false},
		{count("=<2"), ev(`{}`), members(2), false},

		{Condition{Kind: CondSenderNotificationPermission, Key: "room"}, ev(`{}`), nil, false},
		{Condition{Kind: CondSenderNotificationPermission, Key: "room"}, event("x", bob, nil, `{}`), nil, true},
		{Condition{Kind: CondSenderNotificationPermission, Key: "room"}, event("x", bob, nil, `{}`),
			func(ec *EvalContext) { ec.PowerLevelOf, ec.NotificationLevel = nil, nil }, false},
		{Condition{Kind: CondSenderNotificationPermission, Key: "room"}, event("x", bob, nil, `{}`),
			func(ec *EvalContext) { ec.NotificationLevel = nil }, true},
		{Condition{Kind: CondSenderNotificationPermission}, event("x", bob, nil, `{}`), nil, false},

		{Condition{Kind: CondContainsDisplayName}, ev(`{"body":"Wonderland Girl!"}`), nil, true},
		{Condition{Kind: CondContainsDisplayName}, ev(`{"body":["Wonderland Girl"]}`), nil, false},

		{match("content.topic", "lunc?*"), ev(`{"topic":"Lunch plans"}`), nil, true},
		{match("content.topic", "lunc?*"), ev(`{"topic":" lunch"}`), nil, false},
		{match("content.topic", "lunc?*"), ev(`{"topic":"lunc"}`), nil, false},
		{match("content.topic", "*"), ev(`{"topic":null}`), nil, false},
		{match("content.topic", "*"), ev(`{}`), nil, false},
		{match("content.topic", "*"), ev(`{"topic":""}`), nil, true},
		{match("content.body", "ex*ple"), ev(`{"body":"An exciting triple-whammy"}`), nil, true},
		{match("content.topic", "ex*ple"), ev(`{"topic":"An exciting triple-whammy"}`), nil, false},
		{match("content", "*"), ev(`{"a":"b"}`), nil, false},
		{match("state_key", ""), state("x", carol, "", `{}`), nil, true},
		{match("state_key", ""), ev(`{}`), nil, false},

		{Condition{Kind: "org.example.unknown"}, ev(`{}`), nil, false},
		{Condition{Kind: ""}, ev(`{}`), nil, false},
	}
	for i, tc := range cases {
		cond, _ := json.Marshal(tc.cond)
		t.Run(fmt.Sprintf("%d %s", i, cond), func(t *testing.T) {
			rs := Ruleset{Override: []Rule{override("test", notify, tc.cond)}}
			ec := aliceContext()
			if tc.edit != nil {
				tc.edit(&ec)
			}
			if got, _, _ := Evaluate(rs, json.RawMessage(tc.event), ec); got != tc.want {
				t.Errorf("matched %v, want %v\nevent %s", got, tc.want, tc.event)
			}
		})
	}
}

func TestActions(t *testing.T) {
	ev := message(carol, `{"body":"hi"}`)
	cases := []struct {
		actions         []Action
		notify, highlit bool
		returned        []Action
	}{
		{[]Action{}, false, false, []Action{}},
		{[]Action{ActionDontNotify}, false, false, []Action{}},
		{[]Action{ActionCoalesce, ActionNotify}, true, false, []Action{ActionNotify}},
		{[]Action{ActionNotify, HighlightTweak(true)}, true, true, []Action{ActionNotify, HighlightTweak(true)}},
		{[]Action{ActionNotify, `{"set_tweak":"highlight","value":true}`}, true, true, nil},
		{[]Action{ActionNotify, HighlightTweak(false)}, true, false, nil},
		{[]Action{ActionNotify, `{"set_tweak":"highlight","value":"yes"}`}, true, false, nil},
		{[]Action{ActionNotify, HighlightTweak(true), HighlightTweak(false)}, true, false, nil},
		// A highlight without notify counts for nothing.
		{[]Action{HighlightTweak(true)}, false, false, nil},
		{[]Action{ActionNotify, SoundTweak("x"), `{"org.example":1}`}, true, false, []Action{ActionNotify, SoundTweak("x"), `{"org.example":1}`}},
	}
	for _, tc := range cases {
		rs := Ruleset{Override: []Rule{override("a", tc.actions)}}
		notify, highlight, actions := Evaluate(rs, json.RawMessage(ev), aliceContext())
		if notify != tc.notify || highlight != tc.highlit {
			t.Errorf("%q: notify %v highlight %v, want %v %v", tc.actions, notify, highlight, tc.notify, tc.highlit)
		}
		if tc.returned != nil && !slices.Equal(actions, tc.returned) {
			t.Errorf("%q: returned %q, want %q", tc.actions, actions, tc.returned)
		}
		if actions == nil {
			t.Errorf("%q: matched rule returned nil actions", tc.actions)
		}
	}
}

// Kinds are tried in order override, content, room, sender, underride, and
// within a kind in list order; disabled rules are skipped.
func TestEvaluationOrder(t *testing.T) {
	notify := []Action{ActionNotify}
	mute := []Action{}
	rs := Ruleset{
		Override:  []Rule{override("o", mute, Condition{Kind: CondEventMatch, Key: "content.body", Pattern: "override"})},
		Content:   []Rule{{RuleID: "c", Enabled: true, Pattern: "content", Actions: notify}},
		Room:      []Rule{{RuleID: room, Enabled: true, Actions: mute}},
		Sender:    []Rule{{RuleID: carol, Enabled: true, Actions: notify}, {RuleID: bob, Enabled: false, Actions: mute}},
		Underride: []Rule{override("u1", notify, Condition{Kind: CondEventMatch, Key: "type", Pattern: "m.room.*"}), override("u2", mute)},
	}
	runEvalCases(t, rs, []evalCase{
		{"override first", message(carol, `{"body":"override content"}`), silent("o"), nil},
		{"content before room", message(carol, `{"body":"content"}`), notifies("c"), nil},
		{"room before sender", message(carol, `{"body":"x"}`), silent(room), nil},
	})
	rs.Room = nil
	runEvalCases(t, rs, []evalCase{
		{"sender", message(carol, `{"body":"x"}`), notifies(carol), nil},
		{"disabled sender rule skipped", message(bob, `{"body":"x"}`), notifies("u1"), nil},
		{"underride in order", event("org.example", bob, nil, `{}`), silent("u2"), nil},
	})
}

func TestCompileSkipsDisabledAndBroken(t *testing.T) {
	rs := Defaults(alice, "alice")
	for i := range rs.Underride {
		if rs.Underride[i].RuleID == ".m.rule.message" {
			rs.Underride[i].Enabled = false
		}
	}
	rs.Override = append(rs.Override[:1:1], append([]Rule{
		override("bad-value", []Action{ActionNotify}, Condition{Kind: CondEventPropertyIs, Key: "type", Value: json.RawMessage(`{"x":1}`)}),
		override("bad-count", []Action{ActionNotify}, Condition{Kind: CondRoomMemberCount, Is: "two"}),
	}, rs.Override[1:]...)...)
	runEvalCases(t, rs, []evalCase{
		{"message disabled", message(carol, `{"body":"hi"}`), noRule, nil},
		{"1:1 still notifies", message(carol, `{"body":"hi"}`), notifies(".m.rule.room_one_to_one"), members(2)},
	})
}

// A Compiled is shared by every /sync of its user: evaluation must not
// write to it. Run with -race.
func TestCompiledConcurrentUse(t *testing.T) {
	c := Compile(fuzzRules())
	events := []string{
		message(carol, `{"body":"alice: the cake is a lie"}`),
		message(bob, `{"body":"@room","m.mentions":{"room":true}}`),
		event("m.room.encrypted", carol, nil, `{"tags":[7]}`),
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				for _, ev := range events {
					c.Evaluate(json.RawMessage(ev), aliceContext())
				}
			}
		})
	}
	wg.Wait()
}
