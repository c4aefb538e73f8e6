package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestRedactPerVersion checks what each hosted version's redaction
// algorithm keeps where the algorithms differ: v6/v7
// (fragments/v6-redactions.md), v8 (rooms/v8.md), v9/v10
// (fragments/v9-redactions.md), v11/v12 (fragments/v11-redactions.md).
func TestRedactPerVersion(t *testing.T) {
	type want struct{ v1, v6, v8, v9, v11 string }
	tests := []struct {
		name, typ, content string
		want               want
	}{
		{"member", "m.room.member",
			`{"membership":"join","join_authorised_via_users_server":"@a:o.org","displayname":"U","third_party_invite":{"signed":{"token":"t"},"x":1}}`,
			want{
				`{"membership":"join"}`,
				`{"membership":"join"}`,
				`{"membership":"join"}`,
				`{"join_authorised_via_users_server":"@a:o.org","membership":"join"}`,
				`{"join_authorised_via_users_server":"@a:o.org","membership":"join","third_party_invite":{"signed":{"token":"t"}}}`,
			}},
		{"join rules", "m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!s:o.org"}]}`,
			want{
				`{"join_rule":"restricted"}`,
				`{"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
			}},
		{"power levels", "m.room.power_levels", `{"ban":50,"invite":50,"notifications":{"room":50}}`,
			want{`{"ban":50}`, `{"ban":50}`, `{"ban":50}`, `{"ban":50}`, `{"ban":50,"invite":50}`}},
		{"create", "m.room.create", `{"creator":"@u:o.org","room_version":"9","additional_creators":["@b:o.org"]}`,
			want{`{"creator":"@u:o.org"}`, `{"creator":"@u:o.org"}`, `{"creator":"@u:o.org"}`, `{"creator":"@u:o.org"}`,
				`{"additional_creators":["@b:o.org"],"creator":"@u:o.org","room_version":"9"}`}},
		{"redaction", "m.room.redaction", `{"redacts":"$target","reason":"r"}`,
			want{`{}`, `{}`, `{}`, `{}`, `{"redacts":"$target"}`}},
		{"aliases", "m.room.aliases", `{"aliases":["#a:o.org"],"x":1}`, want{`{"aliases":["#a:o.org"]}`, `{}`, `{}`, `{}`, `{}`}},
	}
	for _, v := range SupportedVersions() {
		for _, tt := range tests {
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				var content string
				switch v.rules().redaction {
				case redactV1:
					content = tt.want.v1
				case redactV6:
					content = tt.want.v6
				case redactV8:
					content = tt.want.v8
				case redactV9:
					content = tt.want.v9
				default:
					content = tt.want.v11
				}
				got, err := Redact(v, []byte(redactionInput(tt.typ, tt.content)))
				if err != nil {
					t.Fatal(err)
				}
				out := `{"auth_events":["$a"],"content":` + content + `,"depth":4,"event_id":"$legacy","hashes":{"sha256":"aGFzaA"},`
				if v.rules().legacyFields {
					out += `"membership":"join","origin":"o.org","origin_server_ts":10,"prev_events":["$p"],"prev_state":[],`
				} else {
					out += `"origin_server_ts":10,"prev_events":["$p"],`
				}
				out += `"room_id":"!r:o.org","sender":"@u:o.org","signatures":{"o.org":{"ed25519:1":"c2ln"}},"state_key":"","type":"` + tt.typ + `"}`
				if string(got) != out {
					t.Errorf("got  %s\nwant %s", got, out)
				}
			})
		}
	}
}

// forVersion fills in what version v needs beyond protoFor: the event ID
// of v1 and v2, with the reference hashes they cite, and the hash-form
// room ID of v12.
func forVersion(v RoomVersion, p Proto) Proto {
	if SenderChoosesEventID(v) {
		p.EventID = "$ev" + string(v) + ":example.org"
		p.RefHashes = map[string]string{}
		for _, id := range append(append([]string{}, p.PrevEvents...), p.AuthEvents...) {
			p.RefHashes[id] = "aGFzaA"
		}
	}
	if v.RoomIDFromCreateEvent() && p.RoomID != "" {
		p.RoomID = "!" + strings.Repeat("A", 43)
	}
	return p
}

// TestEventIDsPerVersion: v1 and v2 events carry the event_id their sender
// chose; v3 names events by the standard unpadded base64 of the reference
// hash, v4 and later by its URL-safe form; origin and a top-level redacts
// are there up to v10.
func TestEventIDsPerVersion(t *testing.T) {
	key := testKey(t)
	for _, v := range SupportedVersions() {
		t.Run(string(v), func(t *testing.T) {
			p := protoFor("m.room.redaction", nil, `{"reason":"r"}`)
			p.Redacts = testEventID
			p = forVersion(v, p)
			e, err := Build(p, v, "example.org", key)
			if err != nil {
				t.Fatal(err)
			}
			enc := base64.RawURLEncoding.Strict()
			switch v {
			case RoomV1, RoomV2:
				if e.ID != p.EventID || !strings.Contains(string(e.JSON), `"event_id":"`+p.EventID+`"`) ||
					!strings.Contains(string(e.JSON), `"prev_events":[["`+testEventID+`",{"sha256":"aGFzaA"}]]`) {
					t.Fatalf("v%s event %s: %s", v, e.ID, e.JSON)
				}
				enc = nil
			case RoomV3:
				enc = base64.RawStdEncoding.Strict()
			}
			if enc != nil {
				if _, err := enc.DecodeString(e.ID[1:]); err != nil || len(e.ID) != 44 || e.ID[0] != '$' {
					t.Errorf("event ID %q is not the reference hash in the version's base64: %v", e.ID, err)
				}
				if strings.Contains(string(e.JSON), `"event_id"`) {
					t.Errorf("event_id in a v%s PDU", v)
				}
			}
			if v == RoomV3 {
				// The hash is the same as v4's: only the alphabet differs.
				e4, err := Build(p, RoomV4, "example.org", key)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := base64.RawStdEncoding.DecodeString(e.ID[1:])
				if "$"+base64.RawURLEncoding.EncodeToString(raw) != e4.ID {
					t.Errorf("v3 ID %s and v4 ID %s name different hashes", e.ID, e4.ID)
				}
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(e.JSON, &top); err != nil {
				t.Fatal(err)
			}
			_, hasOrigin := top["origin"]
			_, hasRedacts := top["redacts"]
			if hasOrigin != v.rules().legacyFields || hasRedacts != v.rules().legacyFields {
				t.Errorf("origin %v, top-level redacts %v in version %s", hasOrigin, hasRedacts, v)
			}
			if v.RedactsInContent() != strings.Contains(string(e.Content), `"redacts"`) {
				t.Errorf("content %s", e.Content)
			}
			back, err := Parse(v, e.JSON)
			if err != nil || back.ID != e.ID || back.Redacts != testEventID || !slices.Equal(back.PrevEvents, p.PrevEvents) ||
				!slices.Equal(back.AuthEvents, p.AuthEvents) {
				t.Fatalf("Parse = %+v, %v", back, err)
			}
		})
	}
}

// TestV12RoomIDIsCreateEventHash follows MSC4291: the create event has no
// room_id, the room ID is its event ID with "!" for "$", and every other
// event of the room carries that hash-form room ID.
func TestV12RoomIDIsCreateEventHash(t *testing.T) {
	key := testKey(t)
	create := Proto{Sender: "@alice:example.org", Type: "m.room.create", StateKey: strp(""),
		Content: json.RawMessage(`{"room_version":"12","additional_creators":["@bob:example.org"]}`), Depth: 1}
	e, err := Build(create, RoomV12, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.JSON), `"room_id"`) {
		t.Errorf("v12 create event has a room_id: %s", e.JSON)
	}
	if want := "!" + e.ID[1:]; e.RoomID != want || RoomIDForCreateEvent(e.ID) != want {
		t.Errorf("RoomID %q, want %q", e.RoomID, want)
	}
	if !ValidRoomID(e.RoomID) || strings.Contains(e.RoomID, ":") {
		t.Errorf("room ID %q", e.RoomID)
	}
	back, err := Parse(RoomV12, e.JSON)
	if err != nil || back.ID != e.ID || back.RoomID != e.RoomID {
		t.Fatalf("Parse = %+v, %v", back, err)
	}
	red, err := e.Redacted()
	if err != nil || red.RoomID != e.RoomID || string(red.Content) != string(e.Content) {
		t.Fatalf("Redacted = %+v, %v", red, err)
	}
	client, err := e.ClientJSON(nil)
	if err != nil || !strings.Contains(string(client), `"room_id":"`+e.RoomID+`"`) {
		t.Errorf("client format %s, %v (clients get room_id back)", client, err)
	}

	msg := protoFor("m.room.message", nil, `{"body":"x"}`)
	msg.RoomID = e.RoomID
	m, err := Build(msg, RoomV12, "example.org", key)
	if err != nil || m.RoomID != e.RoomID {
		t.Fatalf("message: %+v, %v", m, err)
	}

	bad := []struct {
		name string
		p    Proto
		v    RoomVersion
	}{
		{"v12 create with a room_id", func() Proto { p := create; p.RoomID = "!r:example.org"; return p }(), RoomV12},
		{"v12 event with a server-form room_id", protoFor("m.room.message", nil, `{}`), RoomV12},
		{"v11 event with a hash-form room_id", func() Proto { p := protoFor("m.room.message", nil, `{}`); p.RoomID = e.RoomID; return p }(), RoomV11},
		{"v11 create without a room_id", create, RoomV11},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.p, tt.v, "example.org", key); !errors.Is(err, ErrBadEvent) {
				t.Errorf("Build error %v, want ErrBadEvent", err)
			}
		})
	}
	// A received v12 create event carrying a room_id is not a valid PDU.
	withRoom := strings.Replace(string(e.JSON), `"prev_events"`, `"room_id":"`+e.RoomID+`","prev_events"`, 1)
	if _, err := Parse(RoomV12, []byte(withRoom)); !errors.Is(err, ErrBadEvent) {
		t.Errorf("Parse of a v12 create with room_id: %v", err)
	}
}

func TestValidRoomIDForms(t *testing.T) {
	hash := "!" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"!abc:example.org", true},
		{hash, true},
		{hash[:len(hash)-1], false},                  // 42 characters
		{hash + "A", false},                          // 44 characters
		{"!" + strings.Repeat("A", 42) + "B", false}, // non-zero padding bits
		{"!" + strings.Repeat("+", 43), false},       // standard alphabet
		{"!" + strings.Repeat("A", 42) + ":", false}, // a colon with no server
		{"$" + hash[1:], false},
	} {
		if got := ValidRoomID(tt.id); got != tt.want {
			t.Errorf("ValidRoomID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestV1EventFormat: in v1 and v2 the PDU carries its event_id, and
// prev_events and auth_events are [event_id, {"sha256": hash}] pairs.
func TestV1EventFormat(t *testing.T) {
	key := testKey(t)
	p := forVersion(RoomV2, protoFor("m.room.message", nil, `{"body":"x"}`))
	e, err := Build(p, RoomV2, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := e.ReferenceHash(); err != nil || len(h) != 43 {
		t.Fatalf("ReferenceHash = %q, %v", h, err)
	}
	for _, tt := range []struct {
		name string
		edit func(string) string
	}{
		{"no event_id", func(s string) string { return strings.Replace(s, `"event_id":"$ev2:example.org",`, "", 1) }},
		{"event_id not an ID", func(s string) string { return strings.Replace(s, `"$ev2:example.org"`, `"ev2"`, 1) }},
		{"plain prev_events", func(s string) string {
			return strings.Replace(s, `"prev_events":[["`+testEventID+`",{"sha256":"aGFzaA"}]]`, `"prev_events":["`+testEventID+`"]`, 1)
		}},
		{"pair of one", func(s string) string {
			return strings.Replace(s, `"prev_events":[["`+testEventID+`",{"sha256":"aGFzaA"}]]`, `"prev_events":[["`+testEventID+`"]]`, 1)
		}},
		{"hash not an object", func(s string) string {
			return strings.Replace(s, `"prev_events":[["`+testEventID+`",{"sha256":"aGFzaA"}]]`, `"prev_events":[["`+testEventID+`","aGFzaA"]]`, 1)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(RoomV2, []byte(tt.edit(string(e.JSON)))); !errors.Is(err, ErrBadEvent) {
				t.Errorf("Parse: %v, want ErrBadEvent", err)
			}
		})
	}
	bad := p
	bad.EventID = "$ev2:elsewhere.org"
	if _, err := Build(bad, RoomV2, "example.org", key); !errors.Is(err, ErrBadEvent) {
		t.Errorf("event ID of another server: %v", err)
	}
	bad = p
	bad.RefHashes = nil
	if _, err := Build(bad, RoomV1, "example.org", key); !errors.Is(err, ErrBadEvent) {
		t.Errorf("no reference hashes: %v", err)
	}
}
