package push

import (
	"encoding/json"
	"testing"
)

// fuzzRules are the defaults with user rules of every kind, so that every
// condition and matcher is reached.
func fuzzRules() Ruleset {
	rs := Defaults(alice, "alice")
	rs.Override = append(rs.Override, override("beer", []Action{ActionNotify, SoundTweak("beer")},
		Condition{Kind: CondEventMatch, Key: "content.body", Pattern: "b*r?"},
		Condition{Kind: CondRoomMemberCount, Is: "<=10"}),
		override("flag", []Action{ActionNotify},
			Condition{Kind: CondEventPropertyIs, Key: `content.org\.example\.flag`, Value: json.RawMessage(`null`)}),
		override("tags", []Action{ActionNotify, HighlightTweak(true)},
			Condition{Kind: CondEventPropertyContains, Key: "content.tags", Value: json.RawMessage(`7`)}),
		override("weird", []Action{ActionNotify}, Condition{Kind: "org.example.weird"}))
	rs.Content = append([]Rule{{RuleID: "cake", Enabled: true, Pattern: "cake*lie", Actions: []Action{ActionNotify}}}, rs.Content...)
	rs.Room = []Rule{{RuleID: room, Enabled: true, Actions: []Action{}}}
	rs.Sender = []Rule{{RuleID: carol, Enabled: true, Actions: []Action{ActionNotify, HighlightTweak(true)}}}
	return rs
}

// FuzzEvaluate: evaluation never panics on any input, a highlight always
// comes with a notification, and the user's own events never notify.
func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{
		message(carol, `{"body":"alice: the cake is a lie","m.mentions":{"user_ids":["@alice:example.org"],"room":true}}`),
		message(bob, `{"body":"@room beer!","msgtype":"m.notice"}`),
		state("m.room.member", bob, alice, `{"membership":"invite"}`),
		event("m.room.encrypted", carol, nil, `{"tags":[1,7,"x"],"org.example.flag":null}`),
		`{"type":"m.room.message","sender":"@alice:example.org","content":{"body":"alice"}}`,
		`{"type":"m.room.message","content":{"body":"Wonderland Girl","m.relates_to":{"rel_type":"m.replace"}},"content":1}`,
		`{"type":1,"sender":[],"room_id":{},"content":"x"}`,
		`{"content":{"body":"\u00e9\ud83d\ude00\\"}}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed), 2, "Wonderland Girl")
	}
	c := Compile(fuzzRules())
	f.Fuzz(func(t *testing.T, event []byte, memberCount int, displayName string) {
		ec := aliceContext()
		ec.MemberCount, ec.DisplayName = memberCount, displayName
		notify, highlight, actions := c.Evaluate(event, ec)
		if highlight && !notify {
			t.Fatalf("highlight without notify for %q", event)
		}
		if notify && actions == nil {
			t.Fatalf("notify without actions for %q", event)
		}
		var ev struct {
			Sender any `json:"sender"`
		}
		if json.Unmarshal(event, &ev) == nil && ev.Sender == alice && notify {
			t.Fatalf("the user's own event notified: %q", event)
		}
	})
}
