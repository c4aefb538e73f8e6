package push_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/salonhq/salon/homeserver/push"
)

// The /pushrules handlers edit a user's Overrides and store them as JSON;
// /sync rebuilds the rules, compiles them once, and counts the unread
// events that notify and highlight.
func Example() {
	const alice = "@alice:example.org"

	// PUT /pushrules/global/room/!noisy:example.org with {"actions":[]}.
	var o push.Overrides
	var body push.Rule
	if err := json.Unmarshal([]byte(`{"actions":[]}`), &body); err != nil {
		panic(err)
	}
	if err := o.Put(push.KindRoom, "!noisy:example.org", body, "", ""); err != nil {
		panic(err) // errors.Is(err, push.ErrInvalid): 400
	}
	// DELETE /pushrules/global/override/.m.rule.master is refused.
	err := o.Delete(push.KindOverride, push.RuleMaster)
	fmt.Println(errors.Is(err, push.ErrDefaultRule))

	stored, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(stored))

	// /sync: the effective rules, compiled once for all of alice's rooms.
	var loaded push.Overrides
	if err := json.Unmarshal(stored, &loaded); err != nil {
		panic(err)
	}
	rules := push.Compile(push.Apply(push.Defaults(alice, "alice"), loaded))

	unread := []string{
		`{"type":"m.room.message","sender":"@bob:example.org","room_id":"!team:example.org","content":{"body":"lunch?","m.mentions":{}}}`,
		`{"type":"m.room.message","sender":"@bob:example.org","room_id":"!team:example.org","content":{"body":"@alice?","m.mentions":{"user_ids":["@alice:example.org"]}}}`,
		`{"type":"m.reaction","sender":"@bob:example.org","room_id":"!team:example.org","content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$x","key":"👍"}}}`,
		`{"type":"m.room.message","sender":"@alice:example.org","room_id":"!team:example.org","content":{"body":"on my way"}}`,
		`{"type":"m.room.message","sender":"@bob:example.org","room_id":"!noisy:example.org","content":{"body":"spam"}}`,
	}
	ec := push.EvalContext{
		UserID:            alice,
		DisplayName:       "Alice",
		MemberCount:       3,
		PowerLevelOf:      func(string) int64 { return 0 },
		NotificationLevel: func(string) int64 { return 50 },
	}
	var notifications, highlights int
	for _, ev := range unread {
		notify, highlight, _ := rules.Evaluate(json.RawMessage(ev), ec)
		if notify {
			notifications++
		}
		if highlight {
			highlights++
		}
	}
	fmt.Println("notification_count", notifications, "highlight_count", highlights)
	// Output:
	// true
	// {"rules":{"override":[],"content":[],"room":[{"rule_id":"!noisy:example.org","default":false,"enabled":true,"actions":[]}],"sender":[],"underride":[]}}
	// notification_count 2 highlight_count 1
}
