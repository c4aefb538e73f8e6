package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestHashAndSignEventSpecVectors(t *testing.T) {
	// appendices.md, "Cryptographic Test Vectors", "Event Signing". The
	// vectors predate room version 11; the v10 redaction algorithm keeps
	// every key they rely on ("origin", "event_id").
	tests := []struct{ name, in, want string }{
		{"minimal event", `{
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {
        "age_ts": 1000000
    }
}`, `{
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {
        "sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {
        "age_ts": 1000000
    }
}`},
		{"redactable content", `{
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {
        "age_ts": 1000000
    }
}`, `{
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "hashes": {
        "sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {
        "age_ts": 1000000
    }
}`},
	}
	key := specKey(t)
	// Versions 6 to 10 share the redaction algorithm's top-level keys, so
	// the same signatures; v11 drops "origin" and gives others.
	for _, v := range []RoomVersion{RoomV6, RoomV7, RoomV8, RoomV9, RoomV10} {
		for _, tt := range tests {
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				specSignatureVector(t, v, key, tt.in, tt.want)
			})
		}
	}
}

// specSignatureVector checks one of the appendices' event signing vectors
// under room version v.
func specSignatureVector(t *testing.T, v RoomVersion, key SigningKey, in, wantJSON string) {
	got, err := HashAndSignEvent(v, []byte(in), specServerName, key)
	if err != nil {
		t.Fatalf("HashAndSignEvent: %v", err)
	}
	if want := mustCanonical(t, wantJSON); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Signature and hash check out through the Event API too.
	js, err := Redact(v, got) // any valid shape will do for VerifyEvent
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEvent(&Event{Version: v, JSON: js}, specServerName, specKeyID, key.Public()); err != nil {
		t.Errorf("VerifyEvent on redacted copy: %v", err)
	}
	full := &Event{Version: v, JSON: []byte(mustCanonical(t, string(got)))}
	if err := CheckContentHash(full); err != nil {
		t.Errorf("CheckContentHash: %v", err)
	}
}

// A real room version 5 m.room.create event (jki.re, 2019) and its event
// ID. Room versions 4 to 10 redact m.room.create alike and share the event
// ID format, so Parse(RoomV10) must find the same ID and content hash.
const jkiCreate = `{"auth_events": [], "prev_events": [], "type": "m.room.create", "room_id": "!uXDCzlYgCTHtiWCkEx:jki.re", "sender": "@erikj:jki.re", "content": {"room_version": "5", "predecessor": {"room_id": "!gdRMqOrTFdOCYHNwOo:half-shot.uk", "event_id": "$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI"}, "creator": "@erikj:jki.re"}, "depth": 1, "prev_state": [], "state_key": "", "origin": "jki.re", "origin_server_ts": 1560284621137, "hashes": {"sha256": "IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc"}, "signatures": {"jki.re": {"ed25519:auto": "O4IyFfF2PPtGp5uaDm8t57dZbdh8vc8Q64LgCwvzYRVItAMI0uisfiAFaxkVT7MRpzh6N2QNN5NMRXZKmgPYDA"}}, "unsigned": {"age": 1321650}}`

func TestParseRealEvent(t *testing.T) {
	e, err := Parse(RoomV10, []byte(jkiCreate))
	if err != nil {
		t.Fatal(err)
	}
	if want := "$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438"; e.ID != want {
		t.Errorf("ID = %s, want %s", e.ID, want)
	}
	if err := CheckContentHash(e); err != nil {
		t.Errorf("CheckContentHash: %v", err)
	}
	if bytes.Contains(e.JSON, []byte("unsigned")) {
		t.Errorf("JSON keeps unsigned: %s", e.JSON)
	}
	if e.Type != "m.room.create" || !e.StateKeyIs("") || e.Sender != "@erikj:jki.re" ||
		e.RoomID != "!uXDCzlYgCTHtiWCkEx:jki.re" || e.Depth != 1 || e.OriginServerTS != 1560284621137 ||
		len(e.PrevEvents) != 0 || len(e.AuthEvents) != 0 || e.PrevEvents == nil {
		t.Errorf("fields: %+v", e)
	}
	// Its own version, 5, and the others sharing the format name it alike;
	// v3 spells the same hash in the standard alphabet.
	for _, v := range []RoomVersion{RoomV4, RoomV5, RoomV6, RoomV7, RoomV8, RoomV9} {
		if ev, err := Parse(v, []byte(jkiCreate)); err != nil || ev.ID != e.ID {
			t.Errorf("Parse(v%s) = %v, %v", v, ev, err)
		}
	}
	if e3, err := Parse(RoomV3, []byte(jkiCreate)); err != nil || e3.ID != "$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438" {
		t.Errorf("Parse(v3) = %v, %v", e3, err)
	}
	// The v11 algorithm keeps all of m.room.create's content and drops
	// origin and prev_state, so the same JSON names another event there.
	e11, err := Parse(RoomV11, []byte(jkiCreate))
	if err != nil {
		t.Fatal(err)
	}
	if e11.ID == e.ID {
		t.Error("v10 and v11 reference hashes agree; the v11 redaction rules are not applied")
	}
}

// testKey is a fixed key for the test server "example.org".
func testKey(t testing.TB) SigningKey {
	t.Helper()
	k, err := SigningKeyFromSeed("ed25519:test", bytes.Repeat([]byte{42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func strp(s string) *string { return &s }

const testEventID = "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func protoFor(typ string, stateKey *string, content string) Proto {
	return Proto{
		RoomID:         "!room:example.org",
		Sender:         "@alice:example.org",
		Type:           typ,
		StateKey:       stateKey,
		Content:        json.RawMessage(content),
		OriginServerTS: 1700000000000,
		PrevEvents:     []string{testEventID},
		AuthEvents:     []string{testEventID, "$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"},
		Depth:          7,
	}
}

func TestBuildParseVerify(t *testing.T) {
	key := testKey(t)
	redaction := protoFor("m.room.redaction", nil, `{"reason":"spam"}`)
	redaction.Redacts = testEventID
	tests := []struct {
		name string
		p    Proto
	}{
		{"message", protoFor("m.room.message", nil, `{"msgtype":"m.text","body":"hé <b>\u2028"}`)},
		{"state", protoFor("m.room.topic", strp(""), `{"topic":"x"}`)},
		{"member", protoFor("m.room.member", strp("@alice:example.org"), `{"membership":"join","displayname":"A"}`)},
		{"redaction", redaction},
		{"nil content", protoFor("m.room.message", nil, ``)},
		{"no prev events", Proto{RoomID: "!r:example.org", Sender: "@alice:example.org", Type: "m.room.create", StateKey: strp(""), Content: json.RawMessage(`{}`)}},
	}
	for _, v := range []RoomVersion{RoomV10, RoomV11} {
		for _, tt := range tests {
			t.Run(string(v)+"/"+tt.name, func(t *testing.T) {
				e, err := Build(tt.p, v, "example.org", key)
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if !ValidEventID(e.ID) || len(e.ID) != 44 || strings.ContainsAny(e.ID, "+/=") {
					t.Errorf("ID %q is not a v4 event ID", e.ID)
				}
				canon, err := CanonicalJSON(e.JSON)
				if err != nil || !bytes.Equal(canon, e.JSON) {
					t.Errorf("JSON is not canonical: %s", e.JSON)
				}
				p, err := Parse(v, e.JSON)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p.ID != e.ID || !bytes.Equal(p.JSON, e.JSON) {
					t.Errorf("Parse gives %s, Build gave %s", p.ID, e.ID)
				}
				if p.Type != tt.p.Type || p.Sender != tt.p.Sender || p.RoomID != tt.p.RoomID ||
					p.Depth != tt.p.Depth || p.OriginServerTS != tt.p.OriginServerTS ||
					p.IsState() != (tt.p.StateKey != nil) || p.Redacts != tt.p.Redacts ||
					len(p.PrevEvents) != len(tt.p.PrevEvents) || len(p.AuthEvents) != len(tt.p.AuthEvents) {
					t.Errorf("parsed fields differ: %+v", p)
				}
				if !json.Valid(p.Content) || p.Content[0] != '{' {
					t.Errorf("content %s", p.Content)
				}
				if err := VerifyEvent(p, "example.org", key.ID, key.Public()); err != nil {
					t.Errorf("VerifyEvent: %v", err)
				}
				if err := CheckContentHash(p); err != nil {
					t.Errorf("CheckContentHash: %v", err)
				}
				checkIndependentReferenceHash(t, v, e)
			})
		}
	}
}

// checkIndependentReferenceHash recomputes the event ID with encoding/json
// and maps instead of this package's canonical JSON: for events whose
// strings need no escaping, Go's sorted-map encoding with HTML escaping off
// is the canonical form.
func checkIndependentReferenceHash(t *testing.T, v RoomVersion, e *Event) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(e.JSON))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{"event_id": true, "type": true, "room_id": true, "sender": true,
		"state_key": true, "content": true, "hashes": true, "depth": true,
		"prev_events": true, "auth_events": true, "origin_server_ts": true}
	if v == RoomV10 {
		keep["origin"], keep["membership"], keep["prev_state"] = true, true, true
	}
	for k := range m {
		if !keep[k] {
			delete(m, k)
		}
	}
	content := m["content"].(map[string]any)
	for k := range content {
		ok := false
		switch m["type"] {
		case "m.room.member":
			ok = k == "membership" || k == "join_authorised_via_users_server"
		case "m.room.create":
			ok = v == RoomV11 || k == "creator"
		case "m.room.redaction":
			ok = v == RoomV11 && k == "redacts"
		}
		if !ok {
			delete(content, k)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if want := "$" + base64.RawURLEncoding.EncodeToString(sum[:]); e.ID != want {
		t.Errorf("event ID %s, independent computation %s over %s", e.ID, want, buf.Bytes())
	}
}

func TestBuildFormatPerVersion(t *testing.T) {
	key := testKey(t)
	p := protoFor("m.room.redaction", nil, `{"reason":"r"}`)
	p.Redacts = testEventID

	e10, err := Build(p, RoomV10, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	f10 := mustFields(t, e10.JSON)
	if o, _ := lookup(f10, "origin"); string(o) != `"example.org"` {
		t.Errorf("v10 origin = %s", o)
	}
	if r, _ := lookup(f10, "redacts"); string(r) != `"`+testEventID+`"` {
		t.Errorf("v10 top-level redacts = %s", r)
	}
	if c, _ := lookup(f10, "content"); string(c) != `{"reason":"r"}` {
		t.Errorf("v10 content = %s", c)
	}

	e11, err := Build(p, RoomV11, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	f11 := mustFields(t, e11.JSON)
	for _, k := range []string{"origin", "redacts"} {
		if _, ok := lookup(f11, k); ok {
			t.Errorf("v11 PDU has top-level %q: %s", k, e11.JSON)
		}
	}
	if c, _ := lookup(f11, "content"); string(c) != `{"reason":"r","redacts":"`+testEventID+`"}` {
		t.Errorf("v11 content = %s", c)
	}
	if e11.Redacts != testEventID {
		t.Errorf("v11 Redacts = %q", e11.Redacts)
	}

	// v11: redacts given only in content.
	p2 := protoFor("m.room.redaction", nil, `{"redacts":"`+testEventID+`"}`)
	e, err := Build(p2, RoomV11, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	if e.Redacts != testEventID {
		t.Errorf("Redacts from content = %q", e.Redacts)
	}

	// A signature from another server can be added without touching the
	// hash, and both verify.
	other, err := SigningKeyFromSeed("ed25519:o", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := SignEvent(RoomV11, e.JSON, "resident.example", other)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := Parse(RoomV11, cosigned)
	if err != nil {
		t.Fatal(err)
	}
	if ce.ID != e.ID {
		t.Error("adding a signature changed the event ID")
	}
	if err := VerifyEvent(ce, "example.org", key.ID, key.Public()); err != nil {
		t.Error(err)
	}
	if err := VerifyEvent(ce, "resident.example", other.ID, other.Public()); err != nil {
		t.Error(err)
	}
	if err := CheckContentHash(ce); err != nil {
		t.Error(err)
	}
}

func TestBuildErrors(t *testing.T) {
	key := testKey(t)
	ok := protoFor("m.room.message", nil, `{"body":"x"}`)
	with := func(f func(p *Proto)) Proto {
		p := ok
		f(&p)
		return p
	}
	big := `{"body":"` + strings.Repeat("x", MaxEventBytes) + `"}`
	tests := []struct {
		name   string
		p      Proto
		v      RoomVersion
		origin string
		key    SigningKey
		want   error
	}{
		{"unsupported version", ok, "13", "example.org", key, ErrUnsupportedVersion},
		{"bad key", ok, RoomV10, "example.org", SigningKey{ID: "ed25519:x"}, ErrBadKey},
		{"bad origin", ok, RoomV10, "exa mple", key, ErrBadEvent},
		{"sender elsewhere", ok, RoomV10, "other.org", key, ErrBadEvent},
		{"bad sender", with(func(p *Proto) { p.Sender = "alice" }), RoomV10, "example.org", key, ErrBadEvent},
		{"bad room", with(func(p *Proto) { p.RoomID = "room" }), RoomV10, "example.org", key, ErrBadEvent},
		{"float content", with(func(p *Proto) { p.Content = json.RawMessage(`{"a":1.5}`) }), RoomV10, "example.org", key, ErrBadJSON},
		{"exponent content", with(func(p *Proto) { p.Content = json.RawMessage(`{"a":1e3}`) }), RoomV10, "example.org", key, ErrBadJSON},
		{"content not JSON", with(func(p *Proto) { p.Content = json.RawMessage(`{`) }), RoomV10, "example.org", key, ErrBadJSON},
		{"content not object", with(func(p *Proto) { p.Content = json.RawMessage(`[]`) }), RoomV10, "example.org", key, ErrBadJSON},
		{"too large", with(func(p *Proto) { p.Content = json.RawMessage(big) }), RoomV11, "example.org", key, ErrTooLarge},
		{"long type", with(func(p *Proto) { p.Type = strings.Repeat("t", 256) }), RoomV10, "example.org", key, ErrTooLarge},
		{"long state key", with(func(p *Proto) { p.StateKey = strp(strings.Repeat("k", 256)) }), RoomV10, "example.org", key, ErrTooLarge},
		{"invalid UTF-8 type", with(func(p *Proto) { p.Type = "\xff" }), RoomV10, "example.org", key, ErrBadEvent},
		{"negative depth", with(func(p *Proto) { p.Depth = -1 }), RoomV10, "example.org", key, ErrBadEvent},
		{"depth too big", with(func(p *Proto) { p.Depth = 1 << 53 }), RoomV10, "example.org", key, ErrBadEvent},
		{"ts too big", with(func(p *Proto) { p.OriginServerTS = 1 << 53 }), RoomV10, "example.org", key, ErrBadEvent},
		{"bad prev event", with(func(p *Proto) { p.PrevEvents = []string{"x"} }), RoomV10, "example.org", key, ErrBadEvent},
		{"too many prev events", with(func(p *Proto) { p.PrevEvents = make([]string, 21) }), RoomV10, "example.org", key, ErrBadEvent},
		{"too many auth events", with(func(p *Proto) { p.AuthEvents = make([]string, 11) }), RoomV10, "example.org", key, ErrBadEvent},
		{"redacts on message", with(func(p *Proto) { p.Redacts = testEventID }), RoomV10, "example.org", key, ErrBadEvent},
		{"redaction without target v10", with(func(p *Proto) { p.Type = "m.room.redaction" }), RoomV10, "example.org", key, ErrBadEvent},
		{"redaction without target v11", with(func(p *Proto) { p.Type = "m.room.redaction" }), RoomV11, "example.org", key, ErrBadEvent},
		{"v11 redacts disagree", with(func(p *Proto) {
			p.Type, p.Redacts, p.Content = "m.room.redaction", testEventID, json.RawMessage(`{"redacts":"$other"}`)
		}), RoomV11, "example.org", key, ErrBadEvent},
		{"v11 redacts not string", with(func(p *Proto) {
			p.Type, p.Content = "m.room.redaction", json.RawMessage(`{"redacts":1}`)
		}), RoomV11, "example.org", key, ErrBadEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Build(tt.p, tt.v, tt.origin, tt.key)
			if !errors.Is(err, tt.want) {
				t.Errorf("Build error = %v, want %v (event %v)", err, tt.want, e)
			}
		})
	}
}

func TestBuildSizeBoundary(t *testing.T) {
	key := testKey(t)
	p := protoFor("m.room.message", nil, `{"body":""}`)
	e, err := Build(p, RoomV10, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	room := MaxEventBytes - len(e.JSON)
	p.Content = json.RawMessage(`{"body":"` + strings.Repeat("x", room) + `"}`)
	e, err = Build(p, RoomV10, "example.org", key)
	if err != nil {
		t.Fatalf("event of exactly %d bytes: %v", MaxEventBytes, err)
	}
	if len(e.JSON) != MaxEventBytes {
		t.Fatalf("built %d bytes, want %d", len(e.JSON), MaxEventBytes)
	}
	if _, err := Parse(RoomV10, e.JSON); err != nil {
		t.Errorf("Parse at the limit: %v", err)
	}
	p.Content = json.RawMessage(`{"body":"` + strings.Repeat("x", room+1) + `"}`)
	if _, err := Build(p, RoomV10, "example.org", key); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over: %v", err)
	}
}

func TestParseIgnoresUnsigned(t *testing.T) {
	e, err := Build(protoFor("m.room.message", nil, `{"body":"x"}`), RoomV10, "example.org", testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	withUnsigned := strings.Replace(string(e.JSON), `{"auth_events"`, `{"unsigned":{"age":5,"transaction_id":"t"}, "auth_events"`, 1)
	p, err := Parse(RoomV10, []byte(withUnsigned))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != e.ID || !bytes.Equal(p.JSON, e.JSON) {
		t.Errorf("unsigned changed the event: %s", p.JSON)
	}
}

func TestParseErrors(t *testing.T) {
	e, err := Build(protoFor("m.room.message", nil, `{"body":"x"}`), RoomV10, "example.org", testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	base := string(e.JSON)
	fields := mustFields(t, e.JSON)
	withField := func(kv ...string) string {
		f := append([]field(nil), fields...)
		for i := 0; i < len(kv); i += 2 {
			f = set(f, kv[i], []byte(kv[i+1]))
		}
		return string(joinObject(nil, f))
	}
	withoutField := func(key string) string { return string(joinObject(nil, without(fields, key))) }

	tests := []struct {
		name string
		v    RoomVersion
		js   string
		want error
	}{
		{"unsupported version", "org.example.1", base, ErrUnsupportedVersion},
		{"not JSON", RoomV10, `{"type":`, ErrBadJSON},
		{"array", RoomV10, `[]`, ErrBadEvent},
		{"float anywhere", RoomV10, withField("content", `{"a":0.5}`), ErrBadJSON},
		{"integer-valued float", RoomV10, withField("content", `{"a":1.0}`), ErrBadJSON},
		{"int out of range", RoomV10, withField("depth", `9007199254740992`), ErrBadJSON},
		{"duplicate key", RoomV10, strings.Replace(base, `{"auth_events"`, `{"type":"x","auth_events"`, 1), ErrBadJSON},
		{"missing type", RoomV10, withoutField("type"), ErrBadEvent},
		{"missing room_id", RoomV10, withoutField("room_id"), ErrBadEvent},
		{"missing sender", RoomV10, withoutField("sender"), ErrBadEvent},
		{"missing content", RoomV10, withoutField("content"), ErrBadEvent},
		{"missing depth", RoomV10, withoutField("depth"), ErrBadEvent},
		{"missing origin_server_ts", RoomV10, withoutField("origin_server_ts"), ErrBadEvent},
		{"missing prev_events", RoomV10, withoutField("prev_events"), ErrBadEvent},
		{"missing auth_events", RoomV10, withoutField("auth_events"), ErrBadEvent},
		{"missing hashes", RoomV10, withoutField("hashes"), ErrBadEvent},
		{"missing signatures", RoomV10, withoutField("signatures"), ErrBadEvent},
		{"type not string", RoomV10, withField("type", `1`), ErrBadEvent},
		{"state_key not string", RoomV10, withField("state_key", `null`), ErrBadEvent},
		{"content not object", RoomV10, withField("content", `"x"`), ErrBadEvent},
		{"depth negative", RoomV10, withField("depth", `-1`), ErrBadEvent},
		{"depth string", RoomV10, withField("depth", `"1"`), ErrBadEvent},
		{"ts string", RoomV10, withField("origin_server_ts", `"1"`), ErrBadEvent},
		{"prev_events null", RoomV10, withField("prev_events", `null`), ErrBadEvent},
		{"prev_events pairs (v1 format)", RoomV10, withField("prev_events", `[["$a:b",{"sha256":"x"}]]`), ErrBadEvent},
		{"auth_events bad ID", RoomV10, withField("auth_events", `["nope"]`), ErrBadEvent},
		{"hashes not object", RoomV10, withField("hashes", `[]`), ErrBadEvent},
		{"signatures not object", RoomV10, withField("signatures", `"x"`), ErrBadEvent},
		{"bad sender", RoomV10, withField("sender", `"alice"`), ErrBadEvent},
		{"bad room", RoomV10, withField("room_id", `"!nodomain"`), ErrBadEvent},
		{"v10 redacts not string", RoomV10, withField("redacts", `1`), ErrBadEvent},
		{"v11 redaction content.redacts not string", RoomV11, withField("type", `"m.room.redaction"`, "content", `{"redacts":1}`), ErrBadEvent},
		{"long type", RoomV10, withField("type", `"`+strings.Repeat("t", 256)+`"`), ErrTooLarge},
		{"long state key", RoomV10, withField("state_key", `"`+strings.Repeat("k", 256)+`"`), ErrTooLarge},
		{"long sender", RoomV10, withField("sender", `"@`+strings.Repeat("a", 250)+`:example.org"`), ErrTooLarge},
		{"too large", RoomV10, withField("content", `{"b":"`+strings.Repeat("x", MaxEventBytes)+`"}`), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.v, []byte(tt.js))
			if !errors.Is(err, tt.want) {
				t.Errorf("Parse error = %v, want %v (event %+v)", err, tt.want, e)
			}
		})
	}
}

func TestParseAcceptsUnknownAndHistoricalFields(t *testing.T) {
	e, err := Build(protoFor("m.room.message", nil, `{"body":"x"}`), RoomV11, "example.org", testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	fields := mustFields(t, e.JSON)
	// Unknown top-level keys, a v11 top-level "redacts" (just another
	// unknown key there), and a historical sender.
	fields = set(fields, "com.example.extra", []byte(`{"x":[1,2]}`))
	fields = set(fields, "redacts", []byte(`5`))
	fields = set(fields, "sender", []byte(`"@Ünïcode Üser:example.org"`))
	p, err := Parse(RoomV11, joinObject(nil, fields))
	if err != nil {
		t.Fatal(err)
	}
	if p.Sender != "@Ünïcode Üser:example.org" || p.Redacts != "" {
		t.Errorf("parsed %+v", p)
	}
	// The unknown key is covered by the content hash, not by the ID.
	if err := CheckContentHash(p); !errors.Is(err, ErrBadHash) {
		t.Errorf("CheckContentHash = %v, want ErrBadHash", err)
	}
}

func TestTampering(t *testing.T) {
	key := testKey(t)
	e, err := Build(protoFor("m.room.message", nil, `{"body":"original"}`), RoomV10, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}

	// Content is outside the signature but inside the hash: the signature
	// still verifies, the hash does not, and the ID is unchanged.
	changed, err := Parse(RoomV10, bytes.Replace(e.JSON, []byte("original"), []byte("forged!!"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEvent(changed, "example.org", key.ID, key.Public()); err != nil {
		t.Errorf("VerifyEvent after content change: %v", err)
	}
	if err := CheckContentHash(changed); !errors.Is(err, ErrBadHash) {
		t.Errorf("CheckContentHash after content change = %v, want ErrBadHash", err)
	}
	if changed.ID != e.ID {
		t.Error("content change altered the ID")
	}

	// Essential keys are signed: changing one breaks the signature and the ID.
	moved, err := Parse(RoomV10, bytes.Replace(e.JSON, []byte(`"depth":7`), []byte(`"depth":8`), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEvent(moved, "example.org", key.ID, key.Public()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyEvent after depth change = %v, want ErrBadSignature", err)
	}
	if moved.ID == e.ID {
		t.Error("depth change kept the ID")
	}

	// No signature from a server that did not sign.
	if err := VerifyEvent(e, "other.org", key.ID, key.Public()); !errors.Is(err, ErrMissingSignature) {
		t.Errorf("VerifyEvent for another server = %v", err)
	}

	// A bad hashes object.
	for _, h := range []string{`{}`, `{"sha256":1}`, `{"sha256":"!!"}`} {
		f := set(mustFields(t, e.JSON), "hashes", []byte(h))
		bad, err := Parse(RoomV10, joinObject(nil, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckContentHash(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("hashes %s: CheckContentHash = %v", h, err)
		}
	}
}

func TestClientJSON(t *testing.T) {
	key := testKey(t)
	msg, err := Build(protoFor("m.room.message", nil, `{"body":"x"}`), RoomV10, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	state, err := Build(protoFor("m.room.name", strp(""), `{"name":"n"}`), RoomV11, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	red := protoFor("m.room.redaction", nil, `{}`)
	red.Redacts = testEventID
	red10, err := Build(red, RoomV10, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	red11, err := Build(red, RoomV11, "example.org", key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		e        *Event
		unsigned map[string]any
		want     string
	}{
		{"message with unsigned", msg, map[string]any{"age": 5, "transaction_id": "tx"},
			`{"content":{"body":"x"},"event_id":"` + msg.ID + `","origin_server_ts":1700000000000,"room_id":"!room:example.org","sender":"@alice:example.org","type":"m.room.message","unsigned":{"age":5,"transaction_id":"tx"}}`},
		{"state without unsigned", state, nil,
			`{"content":{"name":"n"},"event_id":"` + state.ID + `","origin_server_ts":1700000000000,"room_id":"!room:example.org","sender":"@alice:example.org","state_key":"","type":"m.room.name"}`},
		{"v10 redaction gains content.redacts", red10, map[string]any{},
			`{"content":{"redacts":"` + testEventID + `"},"event_id":"` + red10.ID + `","origin_server_ts":1700000000000,"redacts":"` + testEventID + `","room_id":"!room:example.org","sender":"@alice:example.org","type":"m.room.redaction"}`},
		{"v11 redaction gains top-level redacts", red11, nil,
			`{"content":{"redacts":"` + testEventID + `"},"event_id":"` + red11.ID + `","origin_server_ts":1700000000000,"redacts":"` + testEventID + `","room_id":"!room:example.org","sender":"@alice:example.org","type":"m.room.redaction"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.ClientJSON(tt.unsigned)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := msg.ClientJSON(map[string]any{"bad": make(chan int)}); err == nil {
		t.Error("unencodable unsigned: want error")
	}
}

// TestEscapedKeys runs keys and values that need escaping through every
// path that splits and re-joins objects.
func TestEscapedKeys(t *testing.T) {
	key := testKey(t)
	content := `{"q\"uote":"\u0001\\","new\nline":{"t\tab":"\/"},"\u006dembership":"join","é":"😀"}`
	for _, v := range []RoomVersion{RoomV10, RoomV11} {
		e, err := Build(protoFor("m.room.member", strp("@alice:example.org"), content), v, "example.org", key)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"membership":"join","new\nline":{"t\tab":"/"},"q\"uote":"\u0001\\","é":"😀"}`
		if string(e.Content) != want {
			t.Errorf("content %s, want %s", e.Content, want)
		}
		if e.Membership() != "join" {
			t.Errorf("membership %q", e.Membership())
		}
		var m map[string]any
		if err := json.Unmarshal(e.Content, &m); err != nil || m["q\"uote"] != "\x01\\" || m["new\nline"] == nil {
			t.Errorf("content decodes to %v, %v", m, err)
		}
		p, err := Parse(v, e.JSON)
		if err != nil || p.ID != e.ID {
			t.Fatalf("Parse: %v", err)
		}
		if err := CheckContentHash(p); err != nil {
			t.Error(err)
		}
		r, err := p.Redacted()
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Content) != `{"membership":"join"}` {
			t.Errorf("redacted content %s", r.Content)
		}
		if _, err := p.ClientJSON(map[string]any{"k\"": "<&>"}); err != nil {
			t.Error(err)
		}
	}

	signed, err := SignJSON([]byte(`{"sig\\natures":1,"un\"signed":{"\u0000":2}}`), "ser\"ver", key)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"signatures":{"ser\"ver":{"ed25519:test":`; !strings.HasPrefix(string(signed), `{"sig\\natures":1,`+want[1:]) {
		t.Errorf("signed %s", signed)
	}
	if err := VerifyJSON(signed, "ser\"ver", key.ID, key.Public()); err != nil {
		t.Error(err)
	}
	if key.PublicBase64() != EncodeBase64(key.Public()) || len(key.PublicBase64()) != 43 {
		t.Errorf("PublicBase64 %q", key.PublicBase64())
	}
}
