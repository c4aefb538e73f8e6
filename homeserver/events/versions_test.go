package events

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRedactPerVersion checks what each hosted version's redaction
// algorithm keeps where the algorithms differ: v6/v7
// (fragments/v6-redactions.md), v8 (rooms/v8.md), v9/v10
// (fragments/v9-redactions.md), v11/v12 (fragments/v11-redactions.md).
func TestRedactPerVersion(t *testing.T) {
	type want struct{ v6, v8, v9, v11 string }
	tests := []struct {
		name, typ, content string
		want               want
	}{
		{"member", "m.room.member",
			`{"membership":"join","join_authorised_via_users_server":"@a:o.org","displayname":"U","third_party_invite":{"signed":{"token":"t"},"x":1}}`,
			want{
				`{"membership":"join"}`,
				`{"membership":"join"}`,
				`{"join_authorised_via_users_server":"@a:o.org","membership":"join"}`,
				`{"join_authorised_via_users_server":"@a:o.org","membership":"join","third_party_invite":{"signed":{"token":"t"}}}`,
			}},
		{"join rules", "m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!s:o.org"}]}`,
			want{
				`{"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
			}},
		{"power levels", "m.room.power_levels", `{"ban":50,"invite":50,"notifications":{"room":50}}`,
			want{`{"ban":50}`, `{"ban":50}`, `{"ban":50}`, `{"ban":50,"invite":50}`}},
		{"create", "m.room.create", `{"creator":"@u:o.org","room_version":"9","additional_creators":["@b:o.org"]}`,
			want{`{"creator":"@u:o.org"}`, `{"creator":"@u:o.org"}`, `{"creator":"@u:o.org"}`,
				`{"additional_creators":["@b:o.org"],"creator":"@u:o.org","room_version":"9"}`}},
		{"redaction", "m.room.redaction", `{"redacts":"$target","reason":"r"}`,
			want{`{}`, `{}`, `{}`, `{"redacts":"$target"}`}},
		{"aliases", "m.room.aliases", `{"aliases":["#a:o.org"]}`, want{`{}`, `{}`, `{}`, `{}`}},
	}
	for _, v := range SupportedVersions() {
		for _, tt := range tests {
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				var content string
				switch v.rules().redaction {
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

// TestEventIDsPerVersion: every hosted version names events by the
// URL-safe unpadded base64 of the reference hash (v4+), never the v3
// standard alphabet, and keeps the version's own format for origin and
// redacts.
func TestEventIDsPerVersion(t *testing.T) {
	key := testKey(t)
	for _, v := range SupportedVersions() {
		t.Run(string(v), func(t *testing.T) {
			p := protoFor("m.room.redaction", nil, `{"reason":"r"}`)
			p.Redacts = testEventID
			if v.RoomIDFromCreateEvent() {
				p.RoomID = "!" + strings.Repeat("A", 43)
			}
			e, err := Build(p, v, "example.org", key)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.ID) != 44 || e.ID[0] != '$' {
				t.Fatalf("event ID %q", e.ID)
			}
			if _, err := base64.RawURLEncoding.Strict().DecodeString(e.ID[1:]); err != nil {
				t.Errorf("event ID %q is not URL-safe unpadded base64: %v", e.ID, err)
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
			if err != nil || back.ID != e.ID || back.Redacts != testEventID {
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
