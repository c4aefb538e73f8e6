package events

import (
	"fmt"
)

// Redact applies room version v's redaction algorithm to the PDU and returns
// the redacted PDU as canonical JSON. "unsigned" is not a protected key and
// is dropped like any other.
//
// v1 to v5 follow rooms/fragments/v1-redactions.md, v6 and v7
// rooms/fragments/v6-redactions.md, v8 adds "allow" of
// m.room.join_rules (rooms/v8.md), v9 and v10 follow
// rooms/fragments/v9-redactions.md, v11 and v12 follow
// rooms/fragments/v11-redactions.md.
func Redact(v RoomVersion, pdu []byte) ([]byte, error) {
	if !v.Supported() {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	canon, err := CanonicalJSON(pdu)
	if err != nil {
		return nil, err
	}
	fields, err := objectFields(canon)
	if err != nil {
		return nil, err
	}
	red, err := redactFields(v, fields)
	if err != nil {
		return nil, err
	}
	return joinObject(make([]byte, 0, fieldsSize(red)), red), nil
}

// Redacted returns the event as the redaction algorithm leaves it. The event
// ID does not change: the reference hash is computed over the redacted form
// in the first place.
func (e *Event) Redacted() (*Event, error) {
	red, err := Redact(e.Version, e.JSON)
	if err != nil {
		return nil, err
	}
	r, _, err := eventFromJSON(e.Version, red)
	if err != nil {
		return nil, fmt.Errorf("redacted event: %w", err)
	}
	r.ID, r.RoomID = e.ID, e.RoomID
	return r, nil
}

// redactFields keeps the top-level keys room version v protects and strips
// content down to what the event type keeps. fields is not modified.
func redactFields(v RoomVersion, fields []field) ([]field, error) {
	var typ string
	if t, ok := lookup(fields, "type"); ok {
		typ, _ = stringValue(t)
	}
	out := make([]field, 0, len(fields))
	for _, f := range fields {
		if !keepTopLevel(v, f.key) {
			continue
		}
		if f.key == "content" {
			c, err := redactContent(v, typ, f.value)
			if err != nil {
				return nil, err
			}
			f.value = c
		}
		out = append(out, f)
	}
	return out, nil
}

// keepTopLevel reports whether the redaction algorithm keeps a top-level key.
func keepTopLevel(v RoomVersion, key string) bool {
	switch key {
	case "event_id", "type", "room_id", "sender", "state_key", "content",
		"hashes", "signatures", "depth", "prev_events", "auth_events",
		"origin_server_ts":
		return true
	case "origin", "membership", "prev_state":
		// No longer protected from v11 on (MSC2176, MSC3989).
		return v.rules().redaction < redactV11
	}
	return false
}

// keepContent reports whether the redaction algorithm keeps key in the
// content of an event of type typ. m.room.create and the
// third_party_invite of m.room.member from v11 on are handled by
// redactContent.
func keepContent(v RoomVersion, typ, key string) bool {
	alg := v.rules().redaction
	switch typ {
	case "m.room.member":
		// join_authorised_via_users_server from v9 (the v8 omission).
		return key == "membership" || (key == "join_authorised_via_users_server" && alg >= redactV9)
	case "m.room.create":
		return key == "creator"
	case "m.room.join_rules":
		// allow from v8 (MSC3083).
		return key == "join_rule" || (key == "allow" && alg >= redactV8)
	case "m.room.power_levels":
		switch key {
		case "ban", "events", "events_default", "kick", "redact",
			"state_default", "users", "users_default":
			return true
		case "invite":
			return alg >= redactV11
		}
	case "m.room.history_visibility":
		return key == "history_visibility"
	case "m.room.aliases":
		// Protected up to v5; v6 took all meaning from m.room.aliases.
		return key == "aliases" && alg == redactV1
	case "m.room.redaction":
		return key == "redacts" && alg >= redactV11
	}
	return false
}

// redactContent strips the canonical content object of an event of type
// typ. A content that is not an object is an error: no valid PDU has one.
func redactContent(v RoomVersion, typ string, content []byte) ([]byte, error) {
	v11 := v.rules().redaction >= redactV11
	if v11 && typ == "m.room.create" {
		// v11 keeps the whole content of m.room.create (MSC2176).
		if _, err := objectFields(content); err != nil {
			return nil, err
		}
		return content, nil
	}
	fields, err := objectFields(content)
	if err != nil {
		return nil, fmt.Errorf("%w: content is not an object", ErrBadEvent)
	}
	kept := fields[:0]
	for _, f := range fields {
		switch {
		case keepContent(v, typ, f.key):
			kept = append(kept, f)
		case v11 && typ == "m.room.member" && f.key == "third_party_invite":
			// v11 keeps third_party_invite.signed only (MSC3821). Like
			// Synapse, an object without "signed" becomes {} and a value
			// that is not an object is dropped.
			inner, err := objectFields(f.value)
			if err != nil {
				continue
			}
			signed, ok := lookup(inner, "signed")
			if ok {
				f.value = joinObject(nil, []field{{key: "signed", value: signed}})
			} else {
				f.value = []byte("{}")
			}
			kept = append(kept, f)
		}
	}
	return joinObject(make([]byte, 0, fieldsSize(kept)), kept), nil
}
