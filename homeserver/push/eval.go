package push

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/glob"
)

// EvalContext is what evaluation needs to know beyond the event: who the
// rules belong to and the room as it was when the event was sent.
type EvalContext struct {
	// UserID owns the rules. Events it sent never notify it.
	UserID string
	// DisplayName is the user's display name in the room, for
	// contains_display_name; empty never matches.
	DisplayName string
	// MemberCount is the number of joined members of the room, for
	// room_member_count.
	MemberCount int
	// PowerLevelOf returns a user's power level in the room. Nil counts
	// every sender as level 0.
	PowerLevelOf func(userID string) int64
	// NotificationLevel returns the level content.notifications[key] of
	// m.room.power_levels requires (50 when absent). Nil means 50 for
	// every key, the specification's default for "room".
	NotificationLevel func(key string) int64
}

// defaultNotificationLevel is the specification's default for
// notifications.room in m.room.power_levels.
const defaultNotificationLevel = 50

// Compiled is a Ruleset prepared for evaluation: patterns compiled, values
// parsed, the event paths the rules read gathered, room and sender rules
// indexed by ID, disabled rules left out. It is immutable and safe for
// concurrent use; compile once per change of a user's rules and keep it.
type Compiled struct {
	paths *pathTree
	// first holds the override then the content rules, in order.
	first  []compiledRule
	room   map[string]*compiledRule
	sender map[string]*compiledRule
	under  []compiledRule
	// Slots of the paths evaluation itself reads.
	senderSlot, roomSlot, bodySlot, mentionsSlot int
}

type compiledRule struct {
	id string
	// legacyMention marks the rules the specification deprecates in favour
	// of m.mentions: they do not apply to an event whose content has an
	// m.mentions property.
	legacyMention bool
	conds         []compiledCond
	// actions omits the historical dont_notify and coalesce.
	actions   []Action
	notify    bool
	highlight bool
}

type condOp uint8

const (
	opNever condOp = iota // unknown kind or malformed: never matches
	opEventMatch
	opPropertyIs
	opPropertyContains
	opDisplayName
	opMemberCount
	opSenderPermission
)

type compiledCond struct {
	op   condOp
	slot int
	// event_match
	glob  glob.Pattern
	words bool // the key is content.body: match at word boundaries
	// event_property_is, event_property_contains
	want value
	// room_member_count
	cmp   string
	count int64
	// sender_notification_permission
	key string
}

// Fixed paths evaluation reads whatever the rules are.
const (
	pathSender   = "sender"
	pathRoomID   = "room_id"
	pathBody     = "content.body"
	pathMentions = `content.m\.mentions`
)

// Compile prepares rs for evaluation. It never fails: a condition it cannot
// use (an unknown kind, a bad pattern or value) makes its rule never match,
// as the specification asks of unrecognised conditions.
func Compile(rs Ruleset) *Compiled {
	c := &Compiled{
		paths:  newPathTree(),
		room:   map[string]*compiledRule{},
		sender: map[string]*compiledRule{},
	}
	for _, key := range []string{pathSender, pathRoomID, pathBody, pathMentions} {
		c.paths.add(key)
	}
	for _, r := range rs.Override {
		c.addKeys(r)
	}
	for _, r := range rs.Underride {
		c.addKeys(r)
	}
	c.paths.number()
	c.senderSlot = c.paths.keys[pathSender]
	c.roomSlot = c.paths.keys[pathRoomID]
	c.bodySlot = c.paths.keys[pathBody]
	c.mentionsSlot = c.paths.keys[pathMentions]

	for _, r := range rs.Override {
		if r.Enabled {
			c.first = append(c.first, c.compileRule(r, r.Conditions))
		}
	}
	for _, r := range rs.Content {
		if r.Enabled {
			cond := Condition{Kind: CondEventMatch, Key: pathBody, Pattern: r.Pattern}
			c.first = append(c.first, c.compileRule(r, []Condition{cond}))
		}
	}
	for _, r := range rs.Room {
		if _, dup := c.room[r.RuleID]; r.Enabled && !dup {
			cr := c.compileRule(r, nil)
			c.room[r.RuleID] = &cr
		}
	}
	for _, r := range rs.Sender {
		if _, dup := c.sender[r.RuleID]; r.Enabled && !dup {
			cr := c.compileRule(r, nil)
			c.sender[r.RuleID] = &cr
		}
	}
	for _, r := range rs.Underride {
		if r.Enabled {
			c.under = append(c.under, c.compileRule(r, r.Conditions))
		}
	}
	return c
}

func (c *Compiled) addKeys(r Rule) {
	if !r.Enabled {
		return
	}
	for _, cond := range r.Conditions {
		switch cond.Kind {
		case CondEventMatch, CondEventPropertyIs, CondEventPropertyContains:
			c.paths.add(cond.Key)
		}
	}
}

func (c *Compiled) compileRule(r Rule, conds []Condition) compiledRule {
	cr := compiledRule{
		id: r.RuleID,
		legacyMention: r.RuleID == RuleContainsDisplayName ||
			r.RuleID == RuleContainsUserName || r.RuleID == RuleRoomNotif,
	}
	for _, cond := range conds {
		cr.conds = append(cr.conds, c.compileCond(cond))
	}
	highlight := false
	for _, a := range r.Actions {
		switch a {
		case ActionDontNotify, ActionCoalesce:
			continue
		case ActionNotify:
			cr.notify = true
		}
		if name, v, ok := a.Tweak(); ok && name == TweakHighlight {
			// No value means true; a later tweak overrides an earlier one.
			highlight = v == nil || strings.TrimSpace(string(v)) == "true"
		}
		cr.actions = append(cr.actions, a)
	}
	cr.highlight = cr.notify && highlight
	// Non-nil, so that a match without actions differs from no match, and
	// full, so that appending to it cannot write into c.
	if cr.actions == nil {
		cr.actions = []Action{}
	}
	cr.actions = cr.actions[:len(cr.actions):len(cr.actions)]
	return cr
}

func (c *Compiled) compileCond(cond Condition) compiledCond {
	switch cond.Kind {
	case CondEventMatch:
		return compiledCond{
			op:    opEventMatch,
			slot:  c.paths.keys[cond.Key],
			glob:  glob.CompileFold(cond.Pattern),
			words: cond.Key == pathBody,
		}
	case CondEventPropertyIs, CondEventPropertyContains:
		want, ok := parseScalar(cond.Value)
		if !ok {
			break
		}
		op := opPropertyIs
		if cond.Kind == CondEventPropertyContains {
			op = opPropertyContains
		}
		return compiledCond{op: op, slot: c.paths.keys[cond.Key], want: want}
	case CondContainsDisplayName:
		return compiledCond{op: opDisplayName, slot: c.bodySlot}
	case CondRoomMemberCount:
		cmp, n, ok := parseMemberCount(cond.Is)
		if !ok {
			break
		}
		return compiledCond{op: opMemberCount, cmp: cmp, count: n}
	case CondSenderNotificationPermission:
		if cond.Key == "" {
			break
		}
		return compiledCond{op: opSenderPermission, key: cond.Key}
	}
	return compiledCond{op: opNever}
}

// parseMemberCount reads room_member_count's "is": a decimal integer
// optionally prefixed by ==, <, >, <= or >= (== when there is none).
func parseMemberCount(is string) (cmp string, n int64, ok bool) {
	cmp = "=="
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(is, p) {
			cmp, is = p, is[len(p):]
			break
		}
	}
	if is == "" || strings.Trim(is, "0123456789") != "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(is, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return cmp, n, true
}

// Evaluate runs the compiled rules against event, a client-format event
// (type, sender, content, state_key, room_id), for the user ec describes.
// The event must carry room_id, which /sync's timeline format leaves out:
// without it no room rule applies.
// It returns whether the event notifies the user, whether it highlights
// (a notifying rule whose highlight tweak is true or has no value), and the
// actions of the rule that matched, without the historical dont_notify and
// coalesce: nil when no rule matched, empty when the rule that matched
// has no actions.
//
// Evaluate itself excludes the user's own events, as the specification
// requires: an event whose sender is ec.UserID never matches. Invalid JSON
// never matches either. The returned actions belong to c and must not be
// modified.
func (c *Compiled) Evaluate(event json.RawMessage, ec EvalContext) (notify, highlight bool, actions []Action) {
	r := c.evaluate(event, &ec)
	if r == nil {
		return false, false, nil
	}
	return r.notify, r.highlight, r.actions
}

// evaluate returns the rule that matches event, or nil.
func (c *Compiled) evaluate(event []byte, ec *EvalContext) *compiledRule {
	var buf [16]value
	var slots []value
	if c.paths.slots <= len(buf) {
		slots = buf[:c.paths.slots]
	} else {
		slots = make([]value, c.paths.slots)
	}
	if !readEvent(event, &c.paths.root, slots) {
		return nil
	}
	sender := slots[c.senderSlot]
	if ec.UserID != "" && sender.kind == kindString && string(sender.str) == ec.UserID {
		return nil
	}
	return c.match(slots, ec)
}

// match returns the first rule, in evaluation order, that matches.
func (c *Compiled) match(slots []value, ec *EvalContext) *compiledRule {
	mentions := slots[c.mentionsSlot].kind != kindAbsent
	for i := range c.first {
		if r := &c.first[i]; r.matches(c, slots, ec, mentions) {
			return r
		}
	}
	if room := slots[c.roomSlot]; room.kind == kindString && len(c.room) > 0 {
		if r := c.room[string(room.str)]; r != nil {
			return r
		}
	}
	if sender := slots[c.senderSlot]; sender.kind == kindString && len(c.sender) > 0 {
		if r := c.sender[string(sender.str)]; r != nil {
			return r
		}
	}
	for i := range c.under {
		if r := &c.under[i]; r.matches(c, slots, ec, mentions) {
			return r
		}
	}
	return nil
}

func (r *compiledRule) matches(c *Compiled, slots []value, ec *EvalContext, mentions bool) bool {
	if r.legacyMention && mentions {
		return false
	}
	for i := range r.conds {
		if !r.conds[i].holds(c, slots, ec) {
			return false
		}
	}
	return true
}

func (cd *compiledCond) holds(c *Compiled, slots []value, ec *EvalContext) bool {
	switch cd.op {
	case opEventMatch:
		v := slots[cd.slot]
		if v.kind != kindString {
			return false
		}
		if cd.words {
			return cd.glob.MatchWords(v.str)
		}
		return cd.glob.Match(v.str)
	case opPropertyIs:
		return slots[cd.slot].equal(cd.want)
	case opPropertyContains:
		v := slots[cd.slot]
		return v.kind == kindArray && arrayContains(v.str, cd.want)
	case opDisplayName:
		body := slots[cd.slot]
		return ec.DisplayName != "" && body.kind == kindString && glob.ContainsWord(body.str, ec.DisplayName)
	case opMemberCount:
		n := int64(ec.MemberCount)
		switch cd.cmp {
		case "==":
			return n == cd.count
		case "<":
			return n < cd.count
		case ">":
			return n > cd.count
		case "<=":
			return n <= cd.count
		case ">=":
			return n >= cd.count
		}
	case opSenderPermission:
		sender := slots[c.senderSlot]
		if sender.kind != kindString {
			return false
		}
		var level int64
		if ec.PowerLevelOf != nil {
			level = ec.PowerLevelOf(string(sender.str))
		}
		need := int64(defaultNotificationLevel)
		if ec.NotificationLevel != nil {
			need = ec.NotificationLevel(cd.key)
		}
		return level >= need
	}
	return false
}

// Evaluate compiles rs and evaluates event once; see (*Compiled).Evaluate.
// Callers evaluating many events against the same rules, as /sync does,
// should Compile once instead.
func Evaluate(rs Ruleset, event json.RawMessage, ec EvalContext) (notify, highlight bool, actions []Action) {
	return Compile(rs).Evaluate(event, ec)
}
