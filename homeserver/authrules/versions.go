package authrules

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/salonhq/salon/homeserver/events"
)

// versionRules are the points where the authorization rules of the hosted
// room versions differ. Everything else is common to v6 through v12.
type versionRules struct {
	// aliasesRule: m.room.aliases events are allowed when their state key
	// is the sender's server, member or not (rule 4, v1 to v5).
	aliasesRule bool
	// redactionRule: m.room.redaction needs the redact level or an
	// event_id on the redacted event's server (rule 11, v1 and v2).
	redactionRule bool
	// notificationLevels: rules 9.4 and 9.5 compare "notifications" as
	// well as "events" (v6).
	notificationLevels bool
	// floatLevels: power levels may be JSON numbers with a fraction or
	// exponent, truncated (fragments/v1-floaty-power-levels.md, v1 to
	// v5).
	floatLevels bool
	// knock: the knock membership and join rule exist (v7, MSC2403).
	knock bool
	// restricted: the restricted join rule and
	// join_authorised_via_users_server (v8, MSC3083).
	restricted bool
	// knockRestricted: the knock_restricted join rule (v10, MSC3787).
	knockRestricted bool
	// integerLevels: power levels must be JSON integers and rule 9.1 to
	// 9.3 validate every level (v10, MSC3667). Before, levels may also be
	// strings holding an integer (fragments/v1-stringy-power-levels.md)
	// and the rules validate only "users".
	integerLevels bool
	// creatorInContent: m.room.create must carry content.creator, which
	// names the creator (up to v10); from v11 the sender is the creator.
	creatorInContent bool
	// privilegedCreators: the creators (the create event's sender and
	// content.additional_creators) have infinite power and may not appear
	// in power levels' "users" (v12, MSC4289); the room ID is the create
	// event's hash and auth_events do not cite it (MSC4291).
	privilegedCreators bool
}

var rulesOf = map[events.RoomVersion]versionRules{
	events.RoomV1:  {aliasesRule: true, redactionRule: true, floatLevels: true, creatorInContent: true},
	events.RoomV2:  {aliasesRule: true, redactionRule: true, floatLevels: true, creatorInContent: true},
	events.RoomV3:  {aliasesRule: true, floatLevels: true, creatorInContent: true},
	events.RoomV4:  {aliasesRule: true, floatLevels: true, creatorInContent: true},
	events.RoomV5:  {aliasesRule: true, floatLevels: true, creatorInContent: true},
	events.RoomV6:  {notificationLevels: true, creatorInContent: true},
	events.RoomV7:  {notificationLevels: true, knock: true, creatorInContent: true},
	events.RoomV8:  {notificationLevels: true, knock: true, restricted: true, creatorInContent: true},
	events.RoomV9:  {notificationLevels: true, knock: true, restricted: true, creatorInContent: true},
	events.RoomV10: {notificationLevels: true, knock: true, restricted: true, knockRestricted: true, integerLevels: true, creatorInContent: true},
	events.RoomV11: {notificationLevels: true, knock: true, restricted: true, knockRestricted: true, integerLevels: true},
	events.RoomV12: {notificationLevels: true, knock: true, restricted: true, knockRestricted: true, integerLevels: true, privilegedCreators: true},
}

// rules returns v's rules, or ErrUnsupportedRoomVersion.
func rules(v events.RoomVersion) (versionRules, error) {
	r, ok := rulesOf[v]
	if !ok || !v.Supported() {
		return versionRules{}, fmt.Errorf("%w: %q", ErrUnsupportedRoomVersion, v)
	}
	return r, nil
}

// InfiniteLevel is the power level of a v12 room's creators (MSC4289):
// above any level power levels can state (at most 2^53-1), so a creator
// passes every threshold and outranks every other user, and two creators
// cannot act on each other where the rules ask for a strictly higher
// level.
const InfiniteLevel int64 = 1<<63 - 1

// HasPrivilegedCreators reports whether rooms of version v give their
// creators infinite power and keep them out of power levels (v12).
func HasPrivilegedCreators(v events.RoomVersion) bool {
	return rulesOf[v].privilegedCreators
}

// Creators lists the room's creators as room version v defines them:
// content.creator up to v10; the create event's sender in v11; in v12 the
// sender followed by content.additional_creators (MSC4289), each once. Entries of
// additional_creators that are not user IDs are skipped: an event that has
// them does not pass rule 1.4.
func Creators(v events.RoomVersion, create *events.Event) []string {
	if create == nil {
		return nil
	}
	c := creatorOf(v, create)
	out := []string{}
	if c != "" {
		out = append(out, c)
	}
	if !rulesOf[v].privilegedCreators {
		return out
	}
	extra, _ := additionalCreators(create.Content)
	for _, u := range extra {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// additionalCreators reads content.additional_creators of a v12 create
// event; ok is false when the key is present but not an array of user IDs
// (rule 1.4, the same user ID validation as the sender's).
func additionalCreators(content json.RawMessage) (users []string, ok bool) {
	var c map[string]json.RawMessage
	if json.Unmarshal(content, &c) != nil {
		return nil, false
	}
	raw, present := c["additional_creators"]
	if !present {
		return nil, true
	}
	return userIDList(raw)
}

// userIDList reads a JSON array of user IDs; ok is false if raw is not an
// array or holds anything but user IDs (those are skipped).
func userIDList(raw json.RawMessage) (users []string, ok bool) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, false
	}
	ok = true
	for _, item := range list {
		var u string
		if json.Unmarshal(item, &u) != nil || item[0] != '"' || !events.ValidUserID(u) {
			ok = false
			continue
		}
		users = append(users, u)
	}
	return users, ok
}

// ValidateAdditionalCreators checks a list a client asks to make additional
// creators of a v12 room (creation_content.additional_creators, or the
// additional_creators of /upgrade): an array of user IDs as rule 1.4
// accepts them. The error wraps ErrInvalidCreators.
func ValidateAdditionalCreators(raw json.RawMessage) ([]string, error) {
	users, ok := userIDList(raw)
	if !ok {
		return nil, fmt.Errorf("%w: additional_creators must be an array of user IDs", ErrInvalidCreators)
	}
	return users, nil
}
