package authrules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
)

// The top-level integer keys of m.room.power_levels content, in the order
// rule 9.5 lists them ("check if they were added, changed or removed").
const (
	keyUsersDefault  = "users_default"
	keyEventsDefault = "events_default"
	keyStateDefault  = "state_default"
	keyBan           = "ban"
	keyRedact        = "redact"
	keyKick          = "kick"
	keyInvite        = "invite"
)

var levelKeys = [...]string{
	keyUsersDefault, keyEventsDefault, keyStateDefault,
	keyBan, keyRedact, keyKick, keyInvite,
}

// defaultLevel is the value a top-level key takes when the content omits
// it, or when the room has no m.room.power_levels event at all. Since
// MSC1304 (spec r0.5.0) state_default is 50 in both cases; the older text
// saying it is 0 without an event was removed by matrix-spec#1479.
// https://spec.matrix.org/latest/client-server-api/#mroompower_levels
func defaultLevel(key string) int64 {
	switch key {
	case keyStateDefault, keyBan, keyRedact, keyKick:
		return 50
	default: // users_default, events_default, invite
		return 0
	}
}

// CreatorLevel is the power level of a room's creator while the room has no
// m.room.power_levels event; every other user then has 0.
const CreatorLevel = 100

// defaultNotificationLevel is the level for a notifications key the content
// omits. The spec defines only "room" (defaulting to 50); other keys get
// the same default.
const defaultNotificationLevel = 50

// maxSafeInteger bounds power levels to the canonical JSON integer range
// [-(2**53)+1, (2**53)-1].
const maxSafeInteger = 1<<53 - 1

// PowerLevels is parsed m.room.power_levels content, or the levels of a room
// that has no such event (NoPowerLevels). It remembers which top-level keys
// the content set, because rule 9 compares the keys as written, not their
// defaults. The zero value is content "{}": every level at its default.
type PowerLevels struct {
	top           map[string]int64 // only the levelKeys present in content
	users         map[string]int64
	events        map[string]int64
	notifications map[string]int64

	// noEvent marks levels of a room without an m.room.power_levels event,
	// where creator has CreatorLevel.
	noEvent bool
	creator string

	// creators have InfiniteLevel (v12, MSC4289).
	creators []string
}

// withCreators returns pl in which creators have InfiniteLevel.
func (pl PowerLevels) withCreators(creators []string) PowerLevels {
	pl.creators = creators
	return pl
}

// IsCreator reports whether userID is one of the creators that v12 gives
// infinite power; always false in earlier versions.
func (pl PowerLevels) IsCreator(userID string) bool {
	return slices.Contains(pl.creators, userID)
}

// NoPowerLevels returns the levels of a room that has no
// m.room.power_levels event: the creator has CreatorLevel, everybody else
// users_default (0), and every threshold its default.
func NoPowerLevels(creator string) PowerLevels {
	return PowerLevels{noEvent: true, creator: creator}
}

// ParsePowerLevels reads m.room.power_levels content under the rules of
// room version v. Rooms v10 and later require real JSON integers: strings
// ("50"), fractions (50.0) and exponents (5e1) are refused, as are values
// outside the canonical JSON integer range. Versions 6 to 9 also accept a
// string holding an integer ("100", " +0100 "), as
// fragments/v1-stringy-power-levels.md describes; Salon reads every level
// that way and refuses, in every key, what is neither, where those
// versions' rule 9.1 only looks at "users" (canonical JSON already rules
// out floats there). Keys of "users" must be user IDs. Unknown top-level
// keys are ignored. The error wraps ErrInvalidPowerLevels and lists every
// problem found, or wraps ErrUnsupportedRoomVersion.
func ParsePowerLevels(v events.RoomVersion, content json.RawMessage) (PowerLevels, error) {
	vr, err := rules(v)
	if err != nil {
		return PowerLevels{}, err
	}
	parseLevel := parseIntegerLevel
	switch {
	case vr.floatLevels:
		parseLevel = parseLegacyLevel
	case !vr.integerLevels:
		parseLevel = parseStringyLevel
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(content, &obj); err != nil || obj == nil {
		return PowerLevels{}, fmt.Errorf("%w: content is not a JSON object", ErrInvalidPowerLevels)
	}
	var problems []string
	pl := PowerLevels{top: make(map[string]int64, len(levelKeys))}
	for _, k := range levelKeys {
		raw, ok := obj[k]
		if !ok {
			continue
		}
		n, err := parseLevel(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %v", k, err))
			continue
		}
		pl.top[k] = n
	}
	pl.events = parseLevelMap(obj, "events", nil, parseLevel, &problems)
	pl.notifications = parseLevelMap(obj, "notifications", nil, parseLevel, &problems)
	pl.users = parseLevelMap(obj, "users", isUserID, parseLevel, &problems)
	if len(problems) > 0 {
		return PowerLevels{}, fmt.Errorf("%w: %s", ErrInvalidPowerLevels, strings.Join(problems, "; "))
	}
	return pl, nil
}

// ValidatePowerLevels checks content a local user asks to send as
// m.room.power_levels, so that the send path can refuse it as bad JSON,
// naming every problem, before the authorization rules reject it.
func ValidatePowerLevels(v events.RoomVersion, content json.RawMessage) error {
	_, err := ParsePowerLevels(v, content)
	return err
}

// parseLevelMap reads obj[name] as an object of integers. It returns nil
// when the key is absent and records problems for a non-object value, a
// non-integer entry, or a key keyOK refuses.
func parseLevelMap(obj map[string]json.RawMessage, name string, keyOK func(string) bool,
	parseLevel func(json.RawMessage) (int64, error), problems *[]string) map[string]int64 {
	raw, ok := obj[name]
	if !ok {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		*problems = append(*problems, name+" is not an object")
		return nil
	}
	out := make(map[string]int64, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // problems in a stable order
	for _, k := range keys {
		if keyOK != nil && !keyOK(k) {
			*problems = append(*problems, fmt.Sprintf("%s key %q is not a user ID", name, k))
			continue
		}
		n, err := parseLevel(m[k])
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("%s[%q] %v", name, k, err))
			continue
		}
		out[k] = n
	}
	return out
}

// parseIntegerLevel reads one power level as v10+ demands: a JSON integer
// literal, no fraction or exponent, within the canonical JSON range.
func parseIntegerLevel(raw json.RawMessage) (int64, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return 0, fmt.Errorf("is empty")
	}
	switch {
	case b[0] == '"':
		return 0, fmt.Errorf("is a string, not an integer")
	case b[0] != '-' && (b[0] < '0' || b[0] > '9'):
		return 0, fmt.Errorf("is not an integer")
	case bytes.ContainsAny(b, ".eE"):
		return 0, fmt.Errorf("is not an integer (fraction or exponent)")
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
		return 0, fmt.Errorf("is outside the integer range ±(2^53-1)")
	}
	return n, nil
}

// parseStringyLevel reads one power level of versions 6 to 9: a JSON
// integer, or a string holding one in the format of
// fragments/v1-stringy-power-levels.md: leading and trailing whitespace,
// one optional sign, base-10 digits with any leading zeroes. Values
// outside the canonical JSON integer range are refused.
func parseStringyLevel(raw json.RawMessage) (int64, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '"' {
		return parseIntegerLevel(raw)
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return 0, fmt.Errorf("is not a string")
	}
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, fmt.Errorf("is a string without an integer")
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("is a string without an integer")
		}
		n = n*10 + int64(c-'0')
		if n > maxSafeInteger {
			return 0, fmt.Errorf("is outside the integer range ±(2^53-1)")
		}
	}
	if neg {
		n = -n
	}
	return n, nil
}

// parseLegacyLevel reads one power level of versions 1 to 5: what
// parseStringyLevel reads, or a JSON number with a fraction or exponent,
// truncated towards zero (fragments/v1-floaty-power-levels.md); numbers
// beyond the canonical JSON integer range are refused.
func parseLegacyLevel(raw json.RawMessage) (int64, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] == '"' || !bytes.ContainsAny(b, ".eE") {
		return parseStringyLevel(raw)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("is not a number")
	}
	f = math.Trunc(f)
	if f > maxSafeInteger || f < -maxSafeInteger {
		return 0, fmt.Errorf("is outside the integer range ±(2^53-1)")
	}
	return int64(f), nil
}

// isUserID is the check rule 9.3 makes of the keys of "users": the '@'
// sigil, a localpart, a ':' and a non-empty server name. It is deliberately
// no stricter than that (no length or character checks), so that Salon does
// not refuse power levels that other servers accept.
func isUserID(s string) bool {
	if !strings.HasPrefix(s, "@") {
		return false
	}
	i := strings.IndexByte(s, ':')
	return i > 0 && i < len(s)-1
}

func (pl PowerLevels) level(key string) int64 {
	if n, ok := pl.top[key]; ok {
		return n
	}
	return defaultLevel(key)
}

// UserLevel is the power level of userID: InfiniteLevel for a v12 room's
// creators, else its entry in "users", else the creator's CreatorLevel in
// a room without power levels, else users_default.
func (pl PowerLevels) UserLevel(userID string) int64 {
	if pl.IsCreator(userID) {
		return InfiniteLevel
	}
	if n, ok := pl.users[userID]; ok {
		return n
	}
	if pl.noEvent && userID != "" && userID == pl.creator {
		return CreatorLevel
	}
	return pl.level(keyUsersDefault)
}

// EventLevel is the level required to send an event of type evType: its
// entry in "events", else state_default for a state event and
// events_default for a message event.
func (pl PowerLevels) EventLevel(evType string, isState bool) int64 {
	if n, ok := pl.events[evType]; ok {
		return n
	}
	if isState {
		return pl.level(keyStateDefault)
	}
	return pl.level(keyEventsDefault)
}

// Notification is the level required to trigger the notification key
// ("room" for @room), 50 unless the content sets it.
func (pl PowerLevels) Notification(key string) int64 {
	if n, ok := pl.notifications[key]; ok {
		return n
	}
	return defaultNotificationLevel
}

// Ban is the level required to ban a user (and, with Kick, to unban).
func (pl PowerLevels) Ban() int64 { return pl.level(keyBan) }

// Kick is the level required to kick a user.
func (pl PowerLevels) Kick() int64 { return pl.level(keyKick) }

// Invite is the level required to invite a user.
func (pl PowerLevels) Invite() int64 { return pl.level(keyInvite) }

// Redact is the level required to redact another user's event.
func (pl PowerLevels) Redact() int64 { return pl.level(keyRedact) }

// UsersDefault is the level of users without an entry in "users".
func (pl PowerLevels) UsersDefault() int64 { return pl.level(keyUsersDefault) }

// EventsDefault is the level for message events without an entry in "events".
func (pl PowerLevels) EventsDefault() int64 { return pl.level(keyEventsDefault) }

// StateDefault is the level for state events without an entry in "events".
func (pl PowerLevels) StateDefault() int64 { return pl.level(keyStateDefault) }

// checkPowerLevelsChange applies rules 9.5 to 9.9: what a sender at
// senderLevel may change between the current content and the new one.
func checkPowerLevelsChange(sender string, senderLevel int64, cur, next PowerLevels, notifications bool) error {
	// 9.5: a top-level key added, changed or removed may not be above the
	// sender's level, before or after. An absent key is compared as absent,
	// not as its default.
	for _, k := range levelKeys {
		o, oldOK := cur.top[k]
		n, newOK := next.top[k]
		if oldOK == newOK && (!oldOK || o == n) {
			continue
		}
		if oldOK && o > senderLevel {
			return forbid("sender's power level %d is below the current %s level %d", senderLevel, k, o)
		}
		if newOK && n > senderLevel {
			return forbid("sender's power level %d is below the new %s level %d", senderLevel, k, n)
		}
	}
	// 9.6 and 9.7 for "events" and, from v6, "notifications".
	maps := []struct {
		name      string
		cur, next map[string]int64
	}{{"events", cur.events, next.events}}
	if notifications {
		maps = append(maps, struct {
			name      string
			cur, next map[string]int64
		}{"notifications", cur.notifications, next.notifications})
	}
	for _, m := range maps {
		if err := checkLevelMapChange(m.name, m.cur, m.next, senderLevel); err != nil {
			return err
		}
	}
	// 9.8: nobody but the sender may be changed or removed if they are at or
	// above the sender's level. 9.9: nobody may be raised above it.
	for _, u := range sortedUnion(cur.users, next.users) {
		o, oldOK := cur.users[u]
		n, newOK := next.users[u]
		if oldOK == newOK && (!oldOK || o == n) {
			continue
		}
		if oldOK && u != sender && o >= senderLevel {
			return forbid("sender's power level %d does not exceed %s's level %d, which it would change", senderLevel, u, o)
		}
		if newOK && n > senderLevel {
			return forbid("sender's power level %d is below the level %d it would give %s", senderLevel, n, u)
		}
	}
	return nil
}

// checkLevelMapChange applies rules 9.6 and 9.7 to one of the "events" or
// "notifications" maps.
func checkLevelMapChange(name string, cur, next map[string]int64, senderLevel int64) error {
	for _, k := range sortedUnion(cur, next) {
		o, oldOK := cur[k]
		n, newOK := next[k]
		if oldOK == newOK && (!oldOK || o == n) {
			continue
		}
		if oldOK && o > senderLevel {
			return forbid("sender's power level %d is below the current %s[%q] level %d", senderLevel, name, k, o)
		}
		if newOK && n > senderLevel {
			return forbid("sender's power level %d is below the new %s[%q] level %d", senderLevel, name, k, n)
		}
	}
	return nil
}

// sortedUnion lists the keys of a and b once each, sorted, so that the
// first failing entry, and so the error text, is deterministic.
func sortedUnion(a, b map[string]int64) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
