package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// redactionInput is a PDU carrying every top-level key either version
// treats specially, plus keys no version keeps.
func redactionInput(typ, content string) string {
	return `{
		"auth_events": ["$a"], "content": ` + content + `, "depth": 4,
		"event_id": "$legacy", "hashes": {"sha256": "aGFzaA"}, "membership": "join",
		"origin": "o.org", "origin_server_ts": 10, "prev_events": ["$p"], "prev_state": [],
		"redacts": "$target", "room_id": "!r:o.org", "sender": "@u:o.org",
		"signatures": {"o.org": {"ed25519:1": "c2ln"}}, "state_key": "", "type": "` + typ + `",
		"unsigned": {"age": 1}, "com.example.extra": {"x": 1}
	}`
}

// redactionOutput is what the algorithm leaves of redactionInput.
func redactionOutput(v RoomVersion, typ, content string) string {
	out := `{"auth_events":["$a"],"content":` + content + `,"depth":4,"event_id":"$legacy","hashes":{"sha256":"aGFzaA"},`
	if v == RoomV10 {
		out += `"membership":"join","origin":"o.org",`
	}
	out += `"origin_server_ts":10,"prev_events":["$p"],`
	if v == RoomV10 {
		out += `"prev_state":[],`
	}
	return out + `"room_id":"!r:o.org","sender":"@u:o.org","signatures":{"o.org":{"ed25519:1":"c2ln"}},"state_key":"","type":"` + typ + `"}`
}

func TestRedact(t *testing.T) {
	const (
		member = `{"membership":"join","displayname":"U","avatar_url":"mxc://o.org/a",
			"join_authorised_via_users_server":"@a:o.org","reason":"hi",
			"third_party_invite":{"display_name":"d","signed":{"mxid":"@u:o.org","token":"t","signatures":{}}}}`
		create = `{"creator":"@u:o.org","room_version":"10","m.federate":false,
			"predecessor":{"room_id":"!old:o.org","event_id":"$e"},"type":"m.space"}`
		powerLevels = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":50,"kick":50,
			"redact":50,"state_default":50,"users":{"@u:o.org":100},"users_default":0,
			"notifications":{"room":50},"historical":100}`
	)
	tests := []struct {
		name, typ, content string
		want10, want11     string
	}{
		{"message", "m.room.message", `{"msgtype":"m.text","body":"secret"}`, `{}`, `{}`},
		{"member", "m.room.member", member,
			`{"join_authorised_via_users_server":"@a:o.org","membership":"join"}`,
			`{"join_authorised_via_users_server":"@a:o.org","membership":"join","third_party_invite":{"signed":{"mxid":"@u:o.org","signatures":{},"token":"t"}}}`},
		{"member third_party_invite without signed", "m.room.member", `{"membership":"invite","third_party_invite":{"display_name":"d"}}`,
			`{"membership":"invite"}`, `{"membership":"invite","third_party_invite":{}}`},
		{"member third_party_invite not an object", "m.room.member", `{"membership":"invite","third_party_invite":"x"}`,
			`{"membership":"invite"}`, `{"membership":"invite"}`},
		{"member signed not an object is kept as is", "m.room.member", `{"membership":"invite","third_party_invite":{"signed":5}}`,
			`{"membership":"invite"}`, `{"membership":"invite","third_party_invite":{"signed":5}}`},
		{"create", "m.room.create", create,
			`{"creator":"@u:o.org"}`,
			`{"creator":"@u:o.org","m.federate":false,"predecessor":{"event_id":"$e","room_id":"!old:o.org"},"room_version":"10","type":"m.space"}`},
		{"join rules", "m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!s:o.org"}],"x":1}`,
			`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`,
			`{"allow":[{"room_id":"!s:o.org","type":"m.room_membership"}],"join_rule":"restricted"}`},
		{"power levels", "m.room.power_levels", powerLevels,
			`{"ban":50,"events":{"m.room.name":50},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@u:o.org":100},"users_default":0}`,
			`{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":50,"kick":50,"redact":50,"state_default":50,"users":{"@u:o.org":100},"users_default":0}`},
		{"history visibility", "m.room.history_visibility", `{"history_visibility":"joined","x":1}`,
			`{"history_visibility":"joined"}`, `{"history_visibility":"joined"}`},
		{"redaction", "m.room.redaction", `{"redacts":"$target","reason":"spam"}`,
			`{}`, `{"redacts":"$target"}`},
		{"aliases (protected only before v6)", "m.room.aliases", `{"aliases":["#a:o.org"]}`, `{}`, `{}`},
		{"server ACL (protected only from v12)", "m.room.server_acl", `{"allow":["*"],"deny":[]}`, `{}`, `{}`},
		{"encryption", "m.room.encryption", `{"algorithm":"m.megolm.v1.aes-sha2"}`, `{}`, `{}`},
		{"topic", "m.room.topic", `{"topic":"t"}`, `{}`, `{}`},
		{"custom type with protected-looking keys", "com.example", `{"membership":"join","creator":"x"}`, `{}`, `{}`},
	}
	for _, tt := range tests {
		for _, v := range []RoomVersion{RoomV10, RoomV11} {
			want := tt.want10
			if v == RoomV11 {
				want = tt.want11
			}
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				got, err := Redact(v, []byte(redactionInput(tt.typ, tt.content)))
				if err != nil {
					t.Fatalf("Redact: %v", err)
				}
				if want := redactionOutput(v, tt.typ, want); string(got) != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
				again, err := Redact(v, got)
				if err != nil || string(again) != string(got) {
					t.Errorf("redaction is not idempotent: %s, %v", again, err)
				}
			})
		}
	}
}

func TestRedactErrors(t *testing.T) {
	tests := []struct {
		name string
		v    RoomVersion
		in   string
		want error
	}{
		{"unsupported version", "13", `{}`, ErrUnsupportedVersion},
		{"not JSON", RoomV10, `{`, ErrBadJSON},
		{"not an object", RoomV10, `[]`, ErrBadEvent},
		{"content not an object", RoomV10, `{"type":"m.room.member","content":[]}`, ErrBadEvent},
		{"v11 create content not an object", RoomV11, `{"type":"m.room.create","content":"x"}`, ErrBadEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Redact(tt.v, []byte(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("Redact error = %v, want %v", err, tt.want)
			}
		})
	}
	// Events without a type or content are redacted without complaint.
	got, err := Redact(RoomV11, []byte(`{"x":1,"depth":2}`))
	if err != nil || string(got) != `{"depth":2}` {
		t.Errorf("Redact = %s, %v", got, err)
	}
}

func TestRedactedKeepsIDAndSignature(t *testing.T) {
	key := testKey(t)
	redaction := protoFor("m.room.redaction", nil, `{"reason":"r"}`)
	redaction.Redacts = testEventID
	tests := []struct {
		name             string
		p                Proto
		want10, want11   string
		redacts10, red11 string
	}{
		{"message", protoFor("m.room.message", nil, `{"body":"secret"}`), `{}`, `{}`, "", ""},
		{"member", protoFor("m.room.member", strp("@alice:example.org"), `{"membership":"join","displayname":"A"}`),
			`{"membership":"join"}`, `{"membership":"join"}`, "", ""},
		{"create", protoFor("m.room.create", strp(""), `{"creator":"@alice:example.org","room_version":"10"}`),
			`{"creator":"@alice:example.org"}`, `{"creator":"@alice:example.org","room_version":"10"}`, "", ""},
		{"redaction", redaction, `{}`, `{"redacts":"` + testEventID + `"}`, "", testEventID},
	}
	for _, tt := range tests {
		for _, v := range []RoomVersion{RoomV10, RoomV11} {
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				e, err := Build(tt.p, v, "example.org", key)
				if err != nil {
					t.Fatal(err)
				}
				r, err := e.Redacted()
				if err != nil {
					t.Fatal(err)
				}
				if r.ID != e.ID {
					t.Errorf("Redacted ID %s, original %s", r.ID, e.ID)
				}
				p, err := Parse(v, r.JSON)
				if err != nil {
					t.Fatalf("Parse(redacted): %v", err)
				}
				if p.ID != e.ID {
					t.Errorf("Parse(redacted) ID %s, original %s", p.ID, e.ID)
				}
				if err := VerifyEvent(r, "example.org", key.ID, key.Public()); err != nil {
					t.Errorf("VerifyEvent(redacted): %v", err)
				}
				want, wantRedacts := tt.want10, tt.redacts10
				if v == RoomV11 {
					want, wantRedacts = tt.want11, tt.red11
				}
				if string(r.Content) != want {
					t.Errorf("redacted content %s, want %s", r.Content, want)
				}
				if r.Redacts != wantRedacts {
					t.Errorf("redacted Redacts %q, want %q", r.Redacts, wantRedacts)
				}
				if r.Type != e.Type || r.Sender != e.Sender || r.StateKeyOrEmpty() != e.StateKeyOrEmpty() || r.Depth != e.Depth {
					t.Errorf("redaction changed essential fields: %+v", r)
				}
				// The content hash still covers the original content.
				if string(r.Content) != string(e.Content) {
					if err := CheckContentHash(r); !errors.Is(err, ErrBadHash) {
						t.Errorf("CheckContentHash(redacted) = %v, want ErrBadHash", err)
					}
				}
				if _, err := r.ClientJSON(map[string]any{"redacted_because": json.RawMessage(`{}`)}); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func TestMembershipHelper(t *testing.T) {
	e, err := Build(protoFor("m.room.member", strp("@alice:example.org"), `{"membership":"leave"}`), RoomV10, "example.org", testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if e.Membership() != "leave" || !e.StateKeyIs("@alice:example.org") ||
		e.Tuple() != (StateTuple{"m.room.member", "@alice:example.org"}) {
		t.Errorf("helpers on %+v", e)
	}
	if !strings.HasPrefix(e.ID, "$") {
		t.Error(e.ID)
	}
}
