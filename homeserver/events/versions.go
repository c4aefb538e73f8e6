package events

import (
	"crypto/sha256"
	"encoding/base64"
)

// The room versions Salon hosts: every stable version of the spec. Each
// one's rules are in the matching page, https://spec.matrix.org/latest/rooms/v{N}/.
const (
	RoomV1  RoomVersion = "1"
	RoomV2  RoomVersion = "2"
	RoomV3  RoomVersion = "3"
	RoomV4  RoomVersion = "4"
	RoomV5  RoomVersion = "5"
	RoomV6  RoomVersion = "6"
	RoomV7  RoomVersion = "7"
	RoomV8  RoomVersion = "8"
	RoomV9  RoomVersion = "9"
	RoomV10 RoomVersion = "10"
	RoomV11 RoomVersion = "11"
	RoomV12 RoomVersion = "12"

	// DefaultRoomVersion is the version new rooms are created at when the
	// request names none: 11, what Synapse creates since 1.157 (MSC4239).
	// The spec recommends 12, which Salon hosts too; it is not the default
	// yet because clients that do not know creators' infinite power
	// (MSC4289) show a v12 room's creator as an ordinary member.
	DefaultRoomVersion = RoomV11
)

// redactionAlgorithm names the redaction algorithms of the versions Salon
// hosts, by the version that introduced each.
type redactionAlgorithm uint8

const (
	redactV1  redactionAlgorithm = iota + 1 // rooms/fragments/v1-redactions.md (v1 to v5): keeps m.room.aliases' aliases
	redactV6                                // rooms/fragments/v6-redactions.md (v6, v7)
	redactV8                                // v8: m.room.join_rules keeps "allow"
	redactV9                                // rooms/fragments/v9-redactions.md (v9, v10)
	redactV11                               // rooms/fragments/v11-redactions.md (v11, v12)
)

// eventIDForm is how a room version names events.
type eventIDForm uint8

const (
	// idOpaque: "$opaque:origin", chosen by the sender and carried in the
	// PDU's event_id (v1, v2; fragments/v1-event-ids.md).
	idOpaque eventIDForm = iota + 1
	// idStdHash: "$" + unpadded standard base64 of the reference hash (v3).
	idStdHash
	// idURLHash: "$" + unpadded URL-safe base64 of the reference hash (v4
	// on; fragments/v4-event-ids.md).
	idURLHash
)

// formatRules are the parts of a room version the events package applies:
// the PDU format and the redaction algorithm. The authorization rules are
// in homeserver/authrules.
type formatRules struct {
	redaction redactionAlgorithm
	eventID   eventIDForm
	// hashedRefs: prev_events and auth_events are [event_id, {"sha256":
	// reference hash}] pairs (v1, v2); from v3 plain event IDs.
	hashedRefs bool
	// legacyFields: the PDU carries "origin", and m.room.redaction a
	// top-level "redacts" (v6 to v10). From v11 (MSC2174, MSC2176)
	// "origin" is gone and "redacts" lives in content.
	legacyFields bool
	// roomIDFromCreate: the room ID is the create event's reference hash
	// with the "!" sigil, and the create event has no room_id (v12,
	// MSC4291).
	roomIDFromCreate bool
}

var versions = map[RoomVersion]formatRules{
	RoomV1:  {redaction: redactV1, eventID: idOpaque, hashedRefs: true, legacyFields: true},
	RoomV2:  {redaction: redactV1, eventID: idOpaque, hashedRefs: true, legacyFields: true},
	RoomV3:  {redaction: redactV1, eventID: idStdHash, legacyFields: true},
	RoomV4:  {redaction: redactV1, eventID: idURLHash, legacyFields: true},
	RoomV5:  {redaction: redactV1, eventID: idURLHash, legacyFields: true},
	RoomV6:  {redaction: redactV6, eventID: idURLHash, legacyFields: true},
	RoomV7:  {redaction: redactV6, eventID: idURLHash, legacyFields: true},
	RoomV8:  {redaction: redactV8, eventID: idURLHash, legacyFields: true},
	RoomV9:  {redaction: redactV9, eventID: idURLHash, legacyFields: true},
	RoomV10: {redaction: redactV9, eventID: idURLHash, legacyFields: true},
	RoomV11: {redaction: redactV11, eventID: idURLHash},
	RoomV12: {redaction: redactV11, eventID: idURLHash, roomIDFromCreate: true},
}

// SupportedVersions lists the room versions Salon hosts, oldest first.
// Every one is stable in the spec.
func SupportedVersions() []RoomVersion {
	return []RoomVersion{RoomV1, RoomV2, RoomV3, RoomV4, RoomV5, RoomV6, RoomV7, RoomV8, RoomV9, RoomV10, RoomV11, RoomV12}
}

// SenderChoosesEventID reports whether events of version v carry an
// event_id their sender chose, "$opaque:origin" (v1 and v2), rather than
// being named by their reference hash. Proto.EventID must then be set.
func SenderChoosesEventID(v RoomVersion) bool { return v.rules().eventID == idOpaque }

// Supported reports whether Salon can create and host rooms of version v.
func (v RoomVersion) Supported() bool {
	_, ok := versions[v]
	return ok
}

func (v RoomVersion) rules() formatRules { return versions[v] }

// RedactsInContent reports whether an m.room.redaction of version v names
// its target in content.redacts (v11 and later) rather than in a top-level
// "redacts".
func (v RoomVersion) RedactsInContent() bool {
	r, ok := versions[v]
	return ok && !r.legacyFields
}

// RoomIDFromCreateEvent reports whether a room of version v is named by its
// create event ("!" and the create event's reference hash, MSC4291), so
// that its create event carries no room_id (v12 and later).
func (v RoomVersion) RoomIDFromCreateEvent() bool { return v.rules().roomIDFromCreate }

// CreatorInContent reports whether m.room.create of version v must name
// the creator in content.creator (up to v10); later versions take the
// create event's sender.
func (v RoomVersion) CreatorInContent() bool {
	r, ok := versions[v]
	return ok && r.redaction != redactV11
}

// RoomIDForCreateEvent is the room ID of a room named by its create event:
// the event ID with the "!" sigil in place of "$".
func RoomIDForCreateEvent(createEventID string) string {
	if len(createEventID) < 2 || createEventID[0] != '$' {
		return ""
	}
	return "!" + createEventID[1:]
}

// hashRoomIDLen is the length of "!" and the unpadded URL-safe base64 of a
// sha256 hash.
var hashRoomIDLen = 1 + base64.RawURLEncoding.EncodedLen(sha256.Size)

// isHashRoomID reports whether s has the form of a v12 room ID: "!" then 43
// characters of unpadded URL-safe base64.
func isHashRoomID(s string) bool {
	if len(s) != hashRoomIDLen || s[0] != '!' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !isAlpha(c) && c != '-' && c != '_' {
			return false
		}
	}
	// The last character carries 4 bits of padding that must be zero, as
	// in any canonical encoding of 32 bytes.
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[1:])
	return err == nil
}
