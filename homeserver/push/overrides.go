package push

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Overrides records one user's changes to the server-default rules: the rules
// the user added with PUT, per kind and most important first, each with its
// own enabled flag; and the enabled flags and actions the user set on
// server-default rules. A deleted user rule is simply no longer listed.
//
// Overrides is what a caller stores, as JSON, per user. It holds no
// server-default rule, so a later change of the defaults reaches every user
// who has not changed that rule. The effective rules are
// Apply(Defaults(userID, localpart), o).
//
// The methods check everything the API requires before changing anything:
// on error the record is left as it was.
type Overrides struct {
	// Rules holds the user-defined rules of each kind, most important first.
	Rules Ruleset `json:"rules"`
	// Defaults holds the changes made to server-default rules.
	Defaults []DefaultChange `json:"defaults,omitempty"`
}

// DefaultChange is the user's change to one server-default rule.
type DefaultChange struct {
	Kind   string `json:"kind"`
	RuleID string `json:"rule_id"`
	// Enabled is nil when the rule keeps its default enabled flag.
	Enabled *bool `json:"enabled,omitempty"`
	// Actions is nil when the rule keeps its default actions; an empty,
	// non-nil list means the user removed every action.
	Actions []Action `json:"actions,omitzero"`
}

// Put adds the user-defined rule ruleID of kind, or updates it if it exists
// (PUT /pushrules/global/{kind}/{ruleID}). rule carries the request body:
// Actions (required), Conditions for override and underride rules, Pattern
// for content rules; its RuleID, Default and Enabled are ignored. A new rule
// is enabled; an updated one keeps its enabled flag.
//
// before and after name a user-defined rule of the same kind; the rule is
// placed just above before, or else just below after (before wins when both
// are given). With neither, a new rule becomes the most important
// user-defined rule of its kind and an updated one keeps its place.
//
// It fails with ErrInvalid for an unknown kind, a rule ID starting with "."
// (reserved for server-default rules) or containing "/" or "\", a room rule
// whose ID is not a room ID, a sender rule whose ID is not a user ID, a
// content rule without a pattern, missing or malformed actions or
// conditions, and a before or after that names no user-defined rule.
func (o *Overrides) Put(kind, ruleID string, rule Rule, before, after string) error {
	l := o.Rules.list(kind)
	if l == nil {
		return invalid("unknown rule kind %q", kind)
	}
	if err := checkRuleID(kind, ruleID); err != nil {
		return err
	}
	r, err := userRule(kind, ruleID, rule)
	if err != nil {
		return err
	}

	anchor, below := before, false
	if anchor == "" && after != "" {
		anchor, below = after, true
	}
	if anchor != "" {
		switch {
		case strings.HasPrefix(anchor, "."):
			return invalid("cannot place a rule relative to the server-default rule %q", anchor)
		case anchor == ruleID:
			return invalid("cannot place rule %q relative to itself", ruleID)
		case indexOf(*l, anchor) < 0:
			return invalid("before/after rule not found: %s", anchor)
		}
	}

	i := indexOf(*l, ruleID)
	r.Enabled = true
	if i >= 0 {
		r.Enabled = (*l)[i].Enabled
		if anchor == "" {
			(*l)[i] = r
			return nil
		}
		*l = slices.Delete(*l, i, i+1)
	}
	at := 0
	if anchor != "" {
		at = indexOf(*l, anchor)
		if below {
			at++
		}
	}
	*l = slices.Insert(*l, at, r)
	return nil
}

// Delete removes the user-defined rule ruleID of kind
// (DELETE /pushrules/global/{kind}/{ruleID}). It fails with ErrDefaultRule
// for a server-default rule, ErrNotFound for a rule that does not exist and
// ErrInvalid for an unknown kind.
func (o *Overrides) Delete(kind, ruleID string) error {
	l := o.Rules.list(kind)
	if l == nil {
		return invalid("unknown rule kind %q", kind)
	}
	if strings.HasPrefix(ruleID, ".") {
		if _, ok := defaultRule(kind, ruleID); ok {
			return fmt.Errorf("%w: %s/%s", ErrDefaultRule, kind, ruleID)
		}
		return notFound(kind, ruleID)
	}
	i := indexOf(*l, ruleID)
	if i < 0 {
		return notFound(kind, ruleID)
	}
	*l = slices.Delete(*l, i, i+1)
	return nil
}

// SetEnabled enables or disables a rule, user-defined or server-default
// (PUT /pushrules/global/{kind}/{ruleID}/enabled). It fails with ErrNotFound
// for a rule that does not exist and ErrInvalid for an unknown kind.
func (o *Overrides) SetEnabled(kind, ruleID string, enabled bool) error {
	l := o.Rules.list(kind)
	if l == nil {
		return invalid("unknown rule kind %q", kind)
	}
	if i := indexOf(*l, ruleID); i >= 0 && !strings.HasPrefix(ruleID, ".") {
		(*l)[i].Enabled = enabled
		return nil
	}
	def, ok := defaultRule(kind, ruleID)
	if !ok {
		return notFound(kind, ruleID)
	}
	c := o.change(kind, ruleID)
	c.Enabled = nil
	if enabled != def.Enabled {
		c.Enabled = &enabled
	}
	o.prune()
	return nil
}

// SetActions replaces the actions of a rule, user-defined or server-default
// (PUT /pushrules/global/{kind}/{ruleID}/actions). It fails with ErrInvalid
// for nil actions (the body's "actions" is required), an action that is not
// a JSON string or object, or an unknown kind, and with ErrNotFound for a
// rule that does not exist.
func (o *Overrides) SetActions(kind, ruleID string, actions []Action) error {
	l := o.Rules.list(kind)
	if l == nil {
		return invalid("unknown rule kind %q", kind)
	}
	if err := checkActions(actions); err != nil {
		return err
	}
	actions = slices.Clone(actions)
	if i := indexOf(*l, ruleID); i >= 0 && !strings.HasPrefix(ruleID, ".") {
		(*l)[i].Actions = actions
		return nil
	}
	def, ok := defaultRule(kind, ruleID)
	if !ok {
		return notFound(kind, ruleID)
	}
	c := o.change(kind, ruleID)
	c.Actions = nil
	if !slices.Equal(actions, def.Actions) {
		c.Actions = actions
	}
	o.prune()
	return nil
}

// change returns the record of changes to the default rule kind/ruleID,
// adding an empty one if there is none.
func (o *Overrides) change(kind, ruleID string) *DefaultChange {
	for i := range o.Defaults {
		if o.Defaults[i].Kind == kind && o.Defaults[i].RuleID == ruleID {
			return &o.Defaults[i]
		}
	}
	o.Defaults = append(o.Defaults, DefaultChange{Kind: kind, RuleID: ruleID})
	return &o.Defaults[len(o.Defaults)-1]
}

// prune drops the records that no longer change anything, so that a rule
// set back to its default follows the server's defaults again.
func (o *Overrides) prune() {
	o.Defaults = slices.DeleteFunc(o.Defaults, func(c DefaultChange) bool {
		return c.Enabled == nil && c.Actions == nil
	})
	if len(o.Defaults) == 0 {
		o.Defaults = nil
	}
}

// Apply returns the effective rules of a user: defaults (from Defaults) with
// the user's rules and changes of o. Within each kind the user's rules come
// before the server-default ones, except .m.rule.master, which stays the
// first rule of all. The result shares no memory with defaults or o.
//
// Apply trusts o to have been built by its methods; of a record read from
// storage it only drops user rules with reserved IDs and changes that name
// no default rule.
func Apply(defaults Ruleset, o Overrides) Ruleset {
	var out Ruleset
	outLists, defLists, userLists := out.lists(), defaults.lists(), o.Rules.lists()
	for k, kind := range Kinds() {
		dst := make([]Rule, 0, len(*defLists[k])+len(*userLists[k]))
		var later []Rule
		for _, r := range *defLists[k] {
			r = cloneRule(r)
			for _, c := range o.Defaults {
				if c.Kind != kind || c.RuleID != r.RuleID {
					continue
				}
				if c.Enabled != nil {
					r.Enabled = *c.Enabled
				}
				if c.Actions != nil {
					r.Actions = slices.Clone(c.Actions)
				}
			}
			if kind == KindOverride && r.RuleID == RuleMaster {
				dst = append(dst, r)
			} else {
				later = append(later, r)
			}
		}
		for _, r := range *userLists[k] {
			if strings.HasPrefix(r.RuleID, ".") {
				continue
			}
			r = cloneRule(r)
			r.Default = false
			if r.Actions == nil {
				r.Actions = []Action{}
			}
			if (kind == KindOverride || kind == KindUnderride) && r.Conditions == nil {
				r.Conditions = []Condition{}
			}
			dst = append(dst, r)
		}
		*outLists[k] = append(dst, later...)
	}
	return out
}

func cloneRule(r Rule) Rule {
	r.Actions = slices.Clone(r.Actions)
	if r.Conditions != nil {
		conds := make([]Condition, len(r.Conditions))
		for i, c := range r.Conditions {
			c.Value = bytes.Clone(c.Value)
			conds[i] = c
		}
		r.Conditions = conds
	}
	return r
}

// checkRuleID applies the API's limits on the ID of a user-defined rule.
func checkRuleID(kind, ruleID string) error {
	switch {
	case ruleID == "":
		return invalid("empty rule ID")
	case strings.HasPrefix(ruleID, "."):
		return invalid("rule ID %q: IDs starting with '.' are reserved for server-default rules", ruleID)
	case strings.ContainsAny(ruleID, `/\`):
		return invalid(`rule ID %q contains '/' or '\'`, ruleID)
	case kind == KindRoom && (len(ruleID) < 2 || ruleID[0] != '!'):
		return invalid("room rule ID %q is not a room ID", ruleID)
	case kind == KindSender && (len(ruleID) < 2 || ruleID[0] != '@'):
		return invalid("sender rule ID %q is not a user ID", ruleID)
	}
	return nil
}

// userRule builds the stored form of a user-defined rule from a request
// body, keeping only the fields its kind uses.
func userRule(kind, ruleID string, body Rule) (Rule, error) {
	if err := checkActions(body.Actions); err != nil {
		return Rule{}, err
	}
	r := Rule{RuleID: ruleID, Actions: slices.Clone(body.Actions)}
	switch kind {
	case KindContent:
		if body.Pattern == "" {
			return Rule{}, invalid("content rule %q needs a pattern", ruleID)
		}
		r.Pattern = body.Pattern
	case KindOverride, KindUnderride:
		r.Conditions = []Condition{}
		for i, c := range body.Conditions {
			if err := checkCondition(c); err != nil {
				return Rule{}, fmt.Errorf("condition %d: %w", i, err)
			}
			c.Value = bytes.Clone(c.Value)
			r.Conditions = append(r.Conditions, c)
		}
	}
	return r, nil
}

func checkActions(actions []Action) error {
	if actions == nil {
		return invalid("actions is required")
	}
	for _, a := range actions {
		if !a.valid() {
			return invalid("action %q is not a JSON string or object", string(a))
		}
	}
	return nil
}

// checkCondition refuses a condition of a known kind that lacks the
// parameters its kind needs. Unknown kinds are accepted: they never match.
func checkCondition(c Condition) error {
	switch c.Kind {
	case "":
		return invalid("condition without a kind")
	case CondEventMatch:
		if c.Key == "" {
			return invalid("event_match needs a key")
		}
	case CondEventPropertyIs, CondEventPropertyContains:
		if c.Key == "" {
			return invalid("%s needs a key", c.Kind)
		}
		if _, ok := parseScalar(c.Value); !ok {
			return invalid("%s value %s is not a string, an integer, a boolean or null", c.Kind, c.Value)
		}
	case CondRoomMemberCount:
		if _, _, ok := parseMemberCount(c.Is); !ok {
			return invalid("room_member_count is %q is not [==|<|>|<=|>=]integer", c.Is)
		}
	case CondSenderNotificationPermission:
		if c.Key == "" {
			return invalid("sender_notification_permission needs a key")
		}
	}
	return nil
}
