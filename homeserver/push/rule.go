package push

import (
	"bytes"
	"encoding/json"
	"slices"
)

// The kinds of rule, in the order in which they are evaluated.
const (
	KindOverride  = "override"
	KindContent   = "content"
	KindRoom      = "room"
	KindSender    = "sender"
	KindUnderride = "underride"
)

// Kinds returns the five kinds of rule in evaluation order.
func Kinds() []string {
	return []string{KindOverride, KindContent, KindRoom, KindSender, KindUnderride}
}

// The condition kinds the specification defines. Any other kind is kept and
// served back, but never matches an event, which disables its rule.
const (
	CondEventMatch                   = "event_match"
	CondEventPropertyIs              = "event_property_is"
	CondEventPropertyContains        = "event_property_contains"
	CondContainsDisplayName          = "contains_display_name"
	CondRoomMemberCount              = "room_member_count"
	CondSenderNotificationPermission = "sender_notification_permission"
)

// Rule is one push rule as the Client-Server API shows it. Conditions belong
// to override and underride rules, Pattern to content rules; room and sender
// rules match on their RuleID, which is the room ID or the user ID.
type Rule struct {
	RuleID  string `json:"rule_id"`
	Default bool   `json:"default"`
	Enabled bool   `json:"enabled"`
	// Conditions is omitted from JSON when nil; an empty, non-nil list is
	// written as [] (the master rule shows "conditions": []).
	Conditions []Condition `json:"conditions,omitzero"`
	Actions    []Action    `json:"actions"`
	Pattern    string      `json:"pattern,omitempty"`
}

// MarshalJSON writes nil Actions as [], never null.
func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	if r.Actions == nil {
		r.Actions = []Action{}
	}
	return json.Marshal(plain(r))
}

// Ruleset is a user's rules of every kind, each list most important first:
// the "global" object of GET /pushrules/ and the content of the m.push_rules
// account data event.
type Ruleset struct {
	Override  []Rule `json:"override"`
	Content   []Rule `json:"content"`
	Room      []Rule `json:"room"`
	Sender    []Rule `json:"sender"`
	Underride []Rule `json:"underride"`
}

// MarshalJSON writes every kind, an empty one as [] rather than null.
func (rs Ruleset) MarshalJSON() ([]byte, error) {
	type plain Ruleset
	for _, l := range rs.lists() {
		if *l == nil {
			*l = []Rule{}
		}
	}
	return json.Marshal(plain(rs))
}

// Rules returns the rules of one kind, most important first. The slice is
// the Ruleset's own. It fails with ErrInvalid for an unknown kind.
func (rs Ruleset) Rules(kind string) ([]Rule, error) {
	l := rs.list(kind)
	if l == nil {
		return nil, invalid("unknown rule kind %q", kind)
	}
	return *l, nil
}

// Get returns the rule ruleID of kind in rs (GET
// /pushrules/global/{kind}/{ruleID}, and its /enabled and /actions). It
// fails with ErrNotFound for a rule that does not exist, also in a kind
// this server does not know (a client probing for a newer kind, such as
// MSC4306's postcontent, learns the rule is not there; writes to an
// unknown kind still fail with ErrInvalid).
func Get(rs Ruleset, kind, ruleID string) (Rule, error) {
	rules, err := rs.Rules(kind)
	if err != nil {
		return Rule{}, notFound(kind, ruleID)
	}
	if i := indexOf(rules, ruleID); i >= 0 {
		return rules[i], nil
	}
	return Rule{}, notFound(kind, ruleID)
}

func indexOf(rules []Rule, ruleID string) int {
	return slices.IndexFunc(rules, func(r Rule) bool { return r.RuleID == ruleID })
}

// list returns the list of one kind, or nil for an unknown kind.
func (rs *Ruleset) list(kind string) *[]Rule {
	switch kind {
	case KindOverride:
		return &rs.Override
	case KindContent:
		return &rs.Content
	case KindRoom:
		return &rs.Room
	case KindSender:
		return &rs.Sender
	case KindUnderride:
		return &rs.Underride
	}
	return nil
}

// lists returns the five lists in evaluation order.
func (rs *Ruleset) lists() [5]*[]Rule {
	return [5]*[]Rule{&rs.Override, &rs.Content, &rs.Room, &rs.Sender, &rs.Underride}
}

// Condition is one condition of an override or underride rule. Which fields
// apply depends on Kind: event_match uses Key and Pattern,
// event_property_is and event_property_contains use Key and Value,
// room_member_count uses Is, sender_notification_permission uses Key, and
// contains_display_name takes none. A condition of an unknown kind keeps
// only these fields.
type Condition struct {
	Kind    string `json:"kind"`
	Key     string `json:"key,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	// Value is the raw JSON value of event_property_is and
	// event_property_contains: a string, an integer, a boolean or null.
	// A JSON null is kept as the four bytes "null"; nil means absent.
	Value json.RawMessage `json:"value,omitzero"`
	Is    string          `json:"is,omitempty"`
}

// MarshalJSON writes the pattern of an event_match condition even when it is
// empty, as .m.rule.tombstone's "state_key" condition needs.
func (c Condition) MarshalJSON() ([]byte, error) {
	type plain Condition
	if c.Kind != CondEventMatch {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		Kind    string `json:"kind"`
		Key     string `json:"key"`
		Pattern string `json:"pattern"`
	}{c.Kind, c.Key, c.Pattern})
}

// Action is one element of a rule's actions array, kept as its compact JSON
// text so that every action, tweak and tweak value round-trips unchanged:
// `"notify"`, `{"set_tweak":"sound","value":"default"}`. Note the quotes: the
// string action notify is the Action `"notify"`, written ActionNotify.
type Action string

// The string actions. "dont_notify" and "coalesce" are historical: they are
// stored and served back, but evaluation ignores them as the specification
// requires.
const (
	ActionNotify     Action = `"notify"`
	ActionDontNotify Action = `"dont_notify"`
	ActionCoalesce   Action = `"coalesce"`
)

// The tweaks the specification defines.
const (
	TweakSound     = "sound"
	TweakHighlight = "highlight"
)

// SetTweak returns the action {"set_tweak": name, "value": value}, or
// {"set_tweak": name} when value is nil. value must be valid JSON; an
// Action built from invalid JSON is refused by Overrides and by MarshalJSON.
func SetTweak(name string, value json.RawMessage) Action {
	n, _ := json.Marshal(name) // a string always marshals
	if value == nil {
		return Action(`{"set_tweak":` + string(n) + `}`)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, value); err != nil {
		b.Reset()
		b.Write(value)
	}
	return Action(`{"set_tweak":` + string(n) + `,"value":` + b.String() + `}`)
}

// SoundTweak returns {"set_tweak":"sound","value": sound}.
func SoundTweak(sound string) Action {
	v, _ := json.Marshal(sound)
	return SetTweak(TweakSound, v)
}

// HighlightTweak returns {"set_tweak":"highlight"} for true, the form the
// default rules use, and {"set_tweak":"highlight","value":false} for false.
func HighlightTweak(on bool) Action {
	if on {
		return SetTweak(TweakHighlight, nil)
	}
	return SetTweak(TweakHighlight, json.RawMessage(`false`))
}

// Tweak reports the tweak an object action sets and its raw value (nil when
// the action has no "value"). ok is false for string actions, for objects
// without a string "set_tweak", and for invalid JSON.
func (a Action) Tweak() (name string, value json.RawMessage, ok bool) {
	if len(a) == 0 || a[0] != '{' {
		return "", nil, false
	}
	var obj struct {
		SetTweak *string         `json:"set_tweak"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(a), &obj); err != nil || obj.SetTweak == nil {
		return "", nil, false
	}
	return *obj.SetTweak, obj.Value, true
}

// valid reports whether a is JSON text of a string or an object, the two
// forms the specification allows.
func (a Action) valid() bool {
	return len(a) > 0 && (a[0] == '"' || a[0] == '{') && json.Valid([]byte(a))
}

// MarshalJSON writes the action's JSON text as it is.
func (a Action) MarshalJSON() ([]byte, error) {
	if !a.valid() {
		return nil, invalid("action %q is not a JSON string or object", string(a))
	}
	return []byte(a), nil
}

// UnmarshalJSON keeps the compact JSON text of a string or object and
// refuses any other JSON value.
func (a *Action) UnmarshalJSON(data []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return err
	}
	if b.Len() == 0 || (b.Bytes()[0] != '"' && b.Bytes()[0] != '{') {
		return invalid("action %s is not a string or an object", b.String())
	}
	*a = Action(b.String())
	return nil
}
