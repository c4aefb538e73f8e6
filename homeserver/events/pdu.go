package events

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// Limits from the Client-Server API's "Size limits" and the PDU schema.
const (
	maxKeyBytes   = 255 // sender, room_id, type, state_key, event IDs
	maxPrevEvents = 20
	maxAuthEvents = 10
)

const (
	typeRedaction = "m.room.redaction"
	typeCreate    = "m.room.create"
)

// Build makes a signed, hashed PDU of room version v from p, as server
// origin (which must be the sender's server) signing with key.
//
// Up to v10 the PDU carries "origin" and, for m.room.redaction, a
// top-level "redacts". From v11 "origin" is gone and "redacts" lives in
// content only (MSC2174): p.Redacts is added to the content if the content
// lacks it and must agree with it otherwise. In v12 the create event has no
// room_id (p.RoomID must be ""): the room ID is derived from its event ID
// (MSC4291) and set on the returned Event.
//
// The content must be a JSON object that canonical JSON can represent with
// integer syntax only (ErrBadJSON otherwise). A PDU over MaxEventBytes, or a
// sender, room_id, type or state_key over 255 bytes, gives ErrTooLarge.
func Build(p Proto, v RoomVersion, origin string, key SigningKey) (*Event, error) {
	if !v.Supported() {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	if !ValidServerName(origin) {
		return nil, fmt.Errorf("%w: origin %q is not a server name", ErrBadEvent, origin)
	}
	if !ValidUserID(p.Sender) || ServerOf(p.Sender) != origin {
		return nil, fmt.Errorf("%w: sender %q is not a user of %s", ErrBadEvent, p.Sender, origin)
	}
	if len(p.PrevEvents) > maxPrevEvents || len(p.AuthEvents) > maxAuthEvents {
		return nil, fmt.Errorf("%w: %d prev_events and %d auth_events, limits are %d and %d",
			ErrBadEvent, len(p.PrevEvents), len(p.AuthEvents), maxPrevEvents, maxAuthEvents)
	}
	if p.OriginServerTS < -maxSafeInt || p.OriginServerTS > maxSafeInt {
		return nil, fmt.Errorf("%w: origin_server_ts out of range", ErrBadEvent)
	}
	if p.Depth < 0 || p.Depth > maxSafeInt {
		return nil, fmt.Errorf("%w: depth out of range", ErrBadEvent)
	}
	stateKey := ""
	if p.StateKey != nil {
		stateKey = *p.StateKey
	}
	for _, s := range []string{p.RoomID, p.Type, stateKey} {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: string field is not UTF-8", ErrBadEvent)
		}
	}
	rules := v.rules()
	for _, ids := range [][]string{p.PrevEvents, p.AuthEvents} {
		for _, id := range ids {
			if !ValidEventID(id) {
				return nil, fmt.Errorf("%w: event ID %q", ErrBadEvent, id)
			}
			if _, ok := p.RefHashes[id]; rules.hashedRefs && !ok {
				return nil, fmt.Errorf("%w: no reference hash for %s", ErrBadEvent, id)
			}
		}
	}
	if rules.eventID == idOpaque {
		if _, ok := splitID(p.EventID, '$'); !ok || ServerOf(p.EventID) != origin {
			return nil, fmt.Errorf("%w: event_id %q is not an event ID of %s", ErrBadEvent, p.EventID, origin)
		}
	}

	content := p.Content
	if len(bytes.TrimSpace(content)) == 0 {
		content = []byte("{}")
	}
	content, err := canonicalize(content, true)
	if err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	if content[0] != '{' {
		return nil, fmt.Errorf("%w: content is not an object", ErrBadJSON)
	}
	redacts := p.Redacts
	if p.Type == typeRedaction {
		if v.RedactsInContent() {
			if content, redacts, err = redactsInContent(content, redacts); err != nil {
				return nil, err
			}
		}
		if !ValidEventID(redacts) {
			return nil, fmt.Errorf("%w: redaction of %q", ErrBadEvent, redacts)
		}
	} else if redacts != "" {
		return nil, fmt.Errorf("%w: redacts on a %s event", ErrBadEvent, p.Type)
	}

	hashCreate := v.RoomIDFromCreateEvent() && p.Type == typeCreate
	if hashCreate && p.RoomID != "" {
		return nil, fmt.Errorf("%w: a version %s m.room.create event has no room_id", ErrBadEvent, v)
	}
	refs := func(ids []string) []byte {
		if rules.hashedRefs {
			return appendHashedRefs(nil, ids, p.RefHashes)
		}
		return appendStringArray(nil, ids)
	}
	fields := make([]field, 0, 15)
	fields = append(fields,
		field{"auth_events", refs(p.AuthEvents)},
		field{"content", content},
		field{"depth", jsonInt(p.Depth)},
	)
	if rules.eventID == idOpaque {
		fields = append(fields, field{"event_id", jsonString(p.EventID)})
	}
	fields = append(fields,
		field{"origin_server_ts", jsonInt(p.OriginServerTS)},
		field{"prev_events", refs(p.PrevEvents)},
	)
	if !hashCreate {
		fields = append(fields, field{"room_id", jsonString(p.RoomID)})
	}
	fields = append(fields,
		field{"sender", jsonString(p.Sender)},
		field{"type", jsonString(p.Type)},
	)
	if p.StateKey != nil {
		fields = append(fields, field{"state_key", jsonString(*p.StateKey)})
	}
	if v.rules().legacyFields {
		fields = append(fields, field{"origin", jsonString(origin)})
		if p.Type == typeRedaction {
			fields = append(fields, field{"redacts", jsonString(redacts)})
		}
	}
	pdu, ref, err := hashAndSign(v, fields, origin, key)
	if err != nil {
		return nil, err
	}
	if len(pdu) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event is %d bytes, limit %d", ErrTooLarge, len(pdu), MaxEventBytes)
	}
	e, _, err := eventFromJSON(v, pdu)
	if err != nil {
		return nil, err
	}
	e.setID(eventIDFor(v, ref, p.EventID))
	return e, nil
}

// eventIDFor is the ID of an event of version v with reference hash ref:
// the sender's event_id in v1 and v2 (fields come from eventFromJSON,
// which checked it), the hash in standard (v3) or URL-safe (v4 on)
// unpadded base64 after.
func eventIDFor(v RoomVersion, ref [sha256.Size]byte, eventIDField string) string {
	switch v.rules().eventID {
	case idOpaque:
		return eventIDField
	case idStdHash:
		return "$" + base64.RawStdEncoding.EncodeToString(ref[:])
	}
	return eventIDFromHash(ref)
}

// ReferenceHash is the event's reference hash in unpadded base64: what
// events of versions 1 and 2 cite next to its ID (Proto.RefHashes).
func (e *Event) ReferenceHash() (string, error) {
	fields, err := objectFields(e.JSON)
	if err != nil {
		return "", err
	}
	ref, err := referenceHash(e.Version, fields)
	if err != nil {
		return "", err
	}
	return EncodeBase64(ref[:]), nil
}

// setID sets the event ID and, for a create event that names its room
// (v12), the room ID derived from it.
func (e *Event) setID(id string) {
	e.ID = id
	if e.Type == typeCreate && e.Version.RoomIDFromCreateEvent() {
		e.RoomID = RoomIDForCreateEvent(id)
	}
}

// redactsInContent reconciles a v11 redaction's content.redacts with the
// requested target and returns the content to use and the target.
func redactsInContent(content []byte, want string) ([]byte, string, error) {
	fields, err := objectFields(content)
	if err != nil {
		return nil, "", err
	}
	if v, ok := lookup(fields, "redacts"); ok {
		got, ok := stringValue(v)
		if !ok {
			return nil, "", fmt.Errorf("%w: content.redacts is not a string", ErrBadEvent)
		}
		if want != "" && got != want {
			return nil, "", fmt.Errorf("%w: content.redacts %q disagrees with %q", ErrBadEvent, got, want)
		}
		return content, got, nil
	}
	if want == "" {
		return content, "", nil
	}
	fields = append(fields, field{"redacts", jsonString(want)})
	return joinObject(nil, fields), want, nil
}

// hashAndSign follows the server-server API's "Adding hashes and signatures
// to outgoing events": it sets hashes.sha256 to the content hash, signs the
// redacted event, and returns the full event with the signature merged in,
// plus the reference hash (the redacted event without signatures, which is
// exactly what was signed).
func hashAndSign(v RoomVersion, fields []field, serverName string, key SigningKey) ([]byte, [sha256.Size]byte, error) {
	var ref [sha256.Size]byte
	hash := contentHash(fields)
	hashes := append(append([]byte(`{"sha256":"`), EncodeBase64(hash[:])...), `"}`...)
	fields = set(append([]field(nil), fields...), "hashes", hashes)
	red, err := redactFields(v, fields)
	if err != nil {
		return nil, ref, err
	}
	payload := joinObject(nil, without(red, "signatures", "unsigned"))
	ref = sha256.Sum256(payload)
	out, err := signPayload(payload, fields, serverName, key)
	return out, ref, err
}

// contentHash is the server-server API's content hash: sha256 of the
// canonical event without "unsigned", "signatures" and "hashes".
func contentHash(fields []field) [sha256.Size]byte {
	return sha256.Sum256(joinObject(nil, without(fields, "unsigned", "signatures", "hashes")))
}

// referenceHash is the server-server API's reference hash: sha256 of the
// redacted canonical event without "signatures" and "unsigned".
func referenceHash(v RoomVersion, fields []field) ([sha256.Size]byte, error) {
	red, err := redactFields(v, fields)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(joinObject(nil, without(red, "signatures", "unsigned"))), nil
}

// eventIDFromHash is the v4+ event ID: "$" + URL-safe unpadded base64 of the
// reference hash (rooms/fragments/v4-event-ids.md).
func eventIDFromHash(ref [sha256.Size]byte) string {
	return "$" + base64.RawURLEncoding.EncodeToString(ref[:])
}

// HashAndSignEvent sets the content hash of a PDU built elsewhere (a
// make_join template filled in, say) and adds serverName's signature. The
// result is canonical JSON; "unsigned" is kept as it was.
func HashAndSignEvent(v RoomVersion, pdu []byte, serverName string, key SigningKey) ([]byte, error) {
	if !v.Supported() {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	fields, err := pduFields(pdu)
	if err != nil {
		return nil, err
	}
	out, _, err := hashAndSign(v, fields, serverName, key)
	return out, err
}

// SignEvent adds serverName's signature to a PDU that is already hashed and
// signed by its origin, leaving the hashes as they are: what a resident
// server does to a send_join event, for instance.
func SignEvent(v RoomVersion, pdu []byte, serverName string, key SigningKey) ([]byte, error) {
	if !v.Supported() {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	fields, err := pduFields(pdu)
	if err != nil {
		return nil, err
	}
	red, err := redactFields(v, fields)
	if err != nil {
		return nil, err
	}
	return signFields(red, fields, serverName, key)
}

// pduFields canonicalises a PDU with the strict number rules of room
// versions 6 and later and splits it into fields.
func pduFields(pdu []byte) ([]field, error) {
	canon, err := canonicalize(pdu, true)
	if err != nil {
		return nil, err
	}
	return objectFields(canon)
}

// Parse reads a PDU of room version v as received over federation or read
// from storage. "unsigned" is ignored; Event.JSON is the rest in canonical
// form and Event.ID is computed from it. Signatures and the content hash are
// not checked here: see VerifyEvent and CheckContentHash.
func Parse(v RoomVersion, pduJSON []byte) (*Event, error) {
	if !v.Supported() {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedVersion, v)
	}
	canon, err := canonicalize(pduJSON, true)
	if err != nil {
		return nil, err
	}
	fields, err := objectFields(canon)
	if err != nil {
		return nil, err
	}
	if _, ok := lookup(fields, "unsigned"); ok {
		fields = without(fields, "unsigned")
		canon = joinObject(make([]byte, 0, fieldsSize(fields)), fields)
	}
	if len(canon) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event is %d bytes, limit %d", ErrTooLarge, len(canon), MaxEventBytes)
	}
	e, fields, err := eventFromJSON(v, canon)
	if err != nil {
		return nil, err
	}
	ref, err := referenceHash(v, fields)
	if err != nil {
		return nil, err
	}
	e.setID(eventIDFor(v, ref, e.eventIDField))
	return e, nil
}

// eventFromJSON fills an Event (all but ID) from canonical PDU JSON without
// "unsigned", checking the type and limits of every field it reads.
func eventFromJSON(v RoomVersion, js []byte) (*Event, []field, error) {
	fields, err := objectFields(js)
	if err != nil {
		return nil, nil, err
	}
	e := &Event{Version: v, JSON: js}
	rules := v.rules()
	bad := func(key, why string) error { return fmt.Errorf("%w: %s %s", ErrBadEvent, key, why) }
	var (
		seen       = map[string]bool{}
		topRedacts string
	)
	for _, f := range fields {
		var ok bool
		switch f.key {
		case "type":
			e.Type, ok = stringValue(f.value)
		case "room_id":
			e.RoomID, ok = stringValue(f.value)
		case "sender":
			e.Sender, ok = stringValue(f.value)
		case "state_key":
			var s string
			s, ok = stringValue(f.value)
			e.StateKey = &s
		case "content":
			e.Content, ok = f.value, f.value[0] == '{'
		case "origin_server_ts":
			e.OriginServerTS, ok = intValue(f.value)
		case "depth":
			e.Depth, ok = intValue(f.value)
			ok = ok && e.Depth >= 0
		case "prev_events":
			if rules.hashedRefs {
				e.PrevEvents, ok = hashedRefArray(f.value)
			} else {
				e.PrevEvents, ok = stringArray(f.value)
			}
		case "auth_events":
			if rules.hashedRefs {
				e.AuthEvents, ok = hashedRefArray(f.value)
			} else {
				e.AuthEvents, ok = stringArray(f.value)
			}
		case "event_id":
			if rules.eventID != idOpaque {
				continue // not part of the format from v3; an unknown key
			}
			e.eventIDField, ok = stringValue(f.value)
			_, valid := splitID(e.eventIDField, '$')
			ok = ok && valid
		case "hashes", "signatures":
			ok = f.value[0] == '{'
		case "redacts":
			if !v.rules().legacyFields {
				continue // not part of the v11 format; an unknown key
			}
			topRedacts, ok = stringValue(f.value)
		default:
			continue
		}
		if !ok {
			return nil, nil, bad(f.key, "has the wrong type")
		}
		seen[f.key] = true
	}
	for _, k := range []string{"type", "sender", "content", "origin_server_ts",
		"depth", "prev_events", "auth_events", "hashes", "signatures"} {
		if !seen[k] {
			return nil, nil, bad(k, "is missing")
		}
	}
	if rules.eventID == idOpaque && !seen["event_id"] {
		return nil, nil, bad("event_id", "is missing")
	}
	hashCreate := v.RoomIDFromCreateEvent() && e.Type == typeCreate
	switch {
	case hashCreate && seen["room_id"]:
		return nil, nil, bad("room_id", "is not allowed on a version "+string(v)+" m.room.create event")
	case !hashCreate && !seen["room_id"]:
		return nil, nil, bad("room_id", "is missing")
	}
	if len(e.Sender) > maxKeyBytes || len(e.RoomID) > maxKeyBytes ||
		len(e.Type) > maxKeyBytes || len(e.StateKeyOrEmpty()) > maxKeyBytes {
		return nil, nil, fmt.Errorf("%w: sender, room_id, type or state_key over %d bytes", ErrTooLarge, maxKeyBytes)
	}
	if !ValidUserID(e.Sender) {
		return nil, nil, bad("sender", "is not a user ID")
	}
	if !hashCreate && !validRoomIDFor(v, e.RoomID) {
		return nil, nil, bad("room_id", "is not a room ID of version "+string(v))
	}
	for _, ids := range [][]string{e.PrevEvents, e.AuthEvents} {
		for _, id := range ids {
			if !ValidEventID(id) {
				return nil, nil, bad("prev_events/auth_events", "holds an invalid event ID")
			}
		}
	}
	if e.Type == typeRedaction {
		if v.rules().legacyFields {
			e.Redacts = topRedacts
		} else {
			cf, err := objectFields(e.Content)
			if err != nil {
				return nil, nil, err
			}
			if r, ok := lookup(cf, "redacts"); ok {
				if e.Redacts, ok = stringValue(r); !ok {
					return nil, nil, bad("content.redacts", "is not a string")
				}
			}
		}
	}
	return e, fields, nil
}

// VerifyEvent checks serverName's signature with key keyID on the event, as
// the server-server API's "Validating hashes and signatures on received
// events" describes: the signature covers the redacted event, so it holds
// for redacted copies too.
func VerifyEvent(e *Event, serverName, keyID string, pub ed25519.PublicKey) error {
	fields, err := objectFields(e.JSON)
	if err != nil {
		return err
	}
	red, err := redactFields(e.Version, fields)
	if err != nil {
		return err
	}
	return verifyFields(red, red, serverName, keyID, pub)
}

// CheckContentHash compares the event's hashes.sha256 with its content
// hash. A mismatch (ErrBadHash) means the event must be kept only in its
// redacted form.
func CheckContentHash(e *Event) error {
	fields, err := objectFields(e.JSON)
	if err != nil {
		return err
	}
	hv, _ := lookup(fields, "hashes")
	hashes, err := objectFields(hv)
	if err != nil {
		return fmt.Errorf("%w: hashes is not an object", ErrBadHash)
	}
	sv, ok := lookup(hashes, "sha256")
	if !ok {
		return fmt.Errorf("%w: no sha256 hash", ErrBadHash)
	}
	s, ok := stringValue(sv)
	if !ok {
		return fmt.Errorf("%w: sha256 hash is not a string", ErrBadHash)
	}
	got, err := DecodeBase64(s)
	if err != nil {
		return fmt.Errorf("%w: sha256 hash is not base64", ErrBadHash)
	}
	want := contentHash(fields)
	if !bytes.Equal(got, want[:]) {
		return fmt.Errorf("%w: event %s", ErrBadHash, e.ID)
	}
	return nil
}
