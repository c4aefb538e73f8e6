// Package events owns Matrix PDUs: canonical JSON, content and reference
// hashes, event IDs, ed25519 signing and verification, and the redaction
// algorithm, for the room versions Salon supports. Everything here is a pure
// function of its inputs: no I/O, no clock, no project imports.
package events

import (
	"encoding/json"
)

// RoomVersion names a room version ("10", "11"); see versions.go.
type RoomVersion string

// MaxEventBytes is the spec's limit on a PDU's canonical JSON size.
const MaxEventBytes = 65536

// Proto is what a local sender asks for: the fields chosen by the client or
// by the server before hashes, signatures and the event ID are added.
type Proto struct {
	RoomID         string // "" for the m.room.create event of a v12 room
	Sender         string
	Type           string
	StateKey       *string
	Content        json.RawMessage
	Redacts        string // up to v10: top-level "redacts"; from v11: content.redacts only (MSC2174)
	OriginServerTS int64
	PrevEvents     []string
	AuthEvents     []string
	Depth          int64

	// EventID is the event's ID in versions 1 and 2, where the sender
	// chooses it ("$opaque:origin", SenderChoosesEventID); unused after.
	EventID string
	// RefHashes holds, in versions 1 and 2, the reference hash (unpadded
	// base64, Event.ReferenceHash) of every event PrevEvents and
	// AuthEvents name, which those versions cite with their IDs.
	RefHashes map[string]string
}

// Event is a signed, hashed PDU and the fields parsed out of it. Fields are
// read-only once built; JSON is the full PDU without "unsigned", exactly as
// hashed and signed.
type Event struct {
	Version RoomVersion
	ID      string
	// RoomID is the PDU's room_id; for the create event of a v12 room,
	// which has none, the room ID it names (RoomIDForCreateEvent).
	RoomID         string
	Sender         string
	Type           string
	StateKey       *string
	Content        json.RawMessage
	Redacts        string // an m.room.redaction's target (to v10: top level, from v11: content); else ""
	OriginServerTS int64
	PrevEvents     []string
	AuthEvents     []string
	Depth          int64
	JSON           []byte

	eventIDField string // the PDU's event_id, read in v1 and v2
}

// IsState reports whether the event has a state_key.
func (e *Event) IsState() bool { return e.StateKey != nil }

// StateKeyIs reports whether the event is a state event with key k.
func (e *Event) StateKeyIs(k string) bool { return e.StateKey != nil && *e.StateKey == k }

// StateKeyOrEmpty is the state key, or "" for a message event.
func (e *Event) StateKeyOrEmpty() string {
	if e.StateKey == nil {
		return ""
	}
	return *e.StateKey
}

// Membership is content.membership of an m.room.member event, or "".
func (e *Event) Membership() string {
	var c struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(e.Content, &c)
	return c.Membership
}

// StateTuple identifies one piece of room state.
type StateTuple struct {
	Type     string
	StateKey string
}

// Tuple is the event's state tuple; meaningful only for state events.
func (e *Event) Tuple() StateTuple { return StateTuple{e.Type, e.StateKeyOrEmpty()} }
