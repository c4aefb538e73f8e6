package events

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"one": 1, "two": "Two"}`, `{"b":"2","a":"1"}`,
		`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
		`{"a": "日本語"}`, `{"本": 2, "日": 1}`, `{"a": "\u65E5"}`, `{"a": null}`, `{"a": -0, "b": 1e10}`,
		`"\ud83d\ude00\u0000\u001f\/"`, `[1.5e1, -12E+2, 0.0, 9007199254740991]`,
		`{"b":{"d":1,"c":[{"f":1,"e":2}]},"a":[]}`, `{"a":1,"a":2}`, `1e-1`, "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		if err != nil {
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("error %v does not wrap ErrBadJSON", err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if !json.Valid(out) {
			t.Fatalf("produced invalid JSON %q from %q", out, in)
		}
		again, err := CanonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		if strict, err := canonicalize(out, true); err != nil || !bytes.Equal(strict, out) {
			t.Fatalf("canonical output %q fails the strict rules: %v", out, err)
		}
		a, b := decodeNumbers(t, in), decodeNumbers(t, out)
		if !sameJSON(a, b) {
			t.Fatalf("value changed: %q -> %q", in, out)
		}
	})
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("encoding/json cannot decode %q: %v", b, err)
	}
	return v
}

// sameJSON compares decoded JSON values, numbers by value.
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !sameJSON(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameNumber(a, b)
	default:
		return a == b
	}
}

// sameNumber reports whether the canonical integer out has the value of the
// JSON number in.
func sameNumber(in, out json.Number) bool {
	o, err := strconv.ParseInt(string(out), 10, 64)
	if err != nil || o > maxSafeInt || o < -maxSafeInt {
		return false
	}
	f, err := strconv.ParseFloat(string(in), 64)
	if err != nil || f != float64(o) {
		return false
	}
	// Exact decimal comparison, when the exponent is small enough for
	// math/big to be quick about it.
	s := strings.ToLower(string(in))
	if i := strings.IndexByte(s, 'e'); i < 0 || len(s)-i < 6 {
		r, ok := new(big.Rat).SetString(s)
		return ok && r.Cmp(new(big.Rat).SetInt64(o)) == 0
	}
	return true
}

// fuzzSeedEvents are valid PDUs of every hosted version.
func fuzzSeedEvents(tb testing.TB) [][]byte {
	key := testKey(tb)
	red := protoFor("m.room.redaction", nil, `{"reason":"r"}`)
	red.Redacts = testEventID
	var out [][]byte
	for _, v := range SupportedVersions() {
		room := "!room:example.org"
		if v.RoomIDFromCreateEvent() {
			room = "!" + strings.Repeat("A", 43)
		}
		create := protoFor("m.room.create", strp(""), `{"creator":"@alice:example.org"}`)
		if v.RoomIDFromCreateEvent() {
			create.RoomID = ""
		}
		for _, p := range []Proto{
			protoFor("m.room.message", nil, `{"body":"hi","n":[1,-2,{"x":null}]}`),
			protoFor("m.room.member", strp("@alice:example.org"), `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@a:b"}}}`),
			protoFor("m.room.power_levels", strp(""), `{"users":{"@alice:example.org":100},"invite":0}`),
			create,
			red,
		} {
			if p.RoomID != "" {
				p.RoomID = room
			}
			p = forVersion(v, p)
			e, err := Build(p, v, "example.org", key)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, e.JSON)
		}
	}
	return append(out, []byte(jkiCreate))
}

func FuzzParse(f *testing.F) {
	versions := SupportedVersions()
	for _, js := range fuzzSeedEvents(f) {
		for i := range versions {
			f.Add(js, uint8(i))
		}
	}
	pub := testKey(f).Public()
	f.Fuzz(func(t *testing.T, in []byte, vi uint8) {
		v := versions[int(vi)%len(versions)]
		e, err := Parse(v, in)
		if err != nil {
			return
		}
		again, err := Parse(v, e.JSON)
		if err != nil || again.ID != e.ID || !bytes.Equal(again.JSON, e.JSON) {
			t.Fatalf("Parse(e.JSON) differs: %v", err)
		}
		r, err := e.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		pr, err := Parse(v, r.JSON)
		if err != nil || pr.ID != e.ID || pr.RoomID != e.RoomID {
			t.Fatalf("redacted event has another ID or does not parse: %v", err)
		}
		if js, err := e.ClientJSON(map[string]any{"age": 1}); err != nil || !json.Valid(js) {
			t.Fatalf("ClientJSON: %q, %v", js, err)
		}
		_ = VerifyEvent(e, "example.org", "ed25519:test", pub)
		_ = VerifyEvent(e, "example.org", "ed25519:test", ed25519.PublicKey(nil))
		_ = CheckContentHash(e)
		_ = e.Membership()
	})
}
