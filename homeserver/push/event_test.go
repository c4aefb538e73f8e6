package push

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestSplitPath(t *testing.T) {
	cases := map[string][]string{
		"content.body":                    {"content", "body"},
		`content.m\.relates_to.rel_type`:  {"content", "m.relates_to", "rel_type"},
		`content.m\\foo`:                  {"content", `m\foo`},
		`content.m\x`:                     {"content", `m\x`}, // other escapes are literal
		`a\\.b`:                           {`a\`, "b"},
		`a\\\.b`:                          {`a\.b`},
		`trailing\`:                       {`trailing\`},
		"type":                            {"type"},
		"":                                {""},
		"a..b":                            {"a", "", "b"},
		`content.m\.mentions.user_ids`:    {"content", "m.mentions", "user_ids"},
		`content.org\.example\.x.y\.z\.w`: {"content", "org.example.x", "y.z.w"},
	}
	for key, want := range cases {
		if got := splitPath(key); !slices.Equal(got, want) {
			t.Errorf("splitPath(%q) = %q, want %q", key, got, want)
		}
	}
}

// testKeys are the paths the event tests read: the ones the default rules
// use, and awkward ones.
var testKeys = []string{
	"type", "sender", "room_id", "state_key", "content",
	"content.body", "content.msgtype", `content.m\.mentions`, `content.m\.mentions.user_ids`,
	`content.m\.mentions.room`, `content.m\.relates_to.rel_type`, "content.n", "content.a.b.c",
	`content.x\\y`, "content.", "unsigned.age",
}

func readKeys(t testing.TB, event string) (map[string]value, bool) {
	tree := newPathTree()
	for _, k := range testKeys {
		tree.add(k)
	}
	tree.number()
	slots := make([]value, tree.slots)
	if !readEvent([]byte(event), &tree.root, slots) {
		return nil, false
	}
	got := map[string]value{}
	for _, k := range testKeys {
		got[k] = slots[tree.keys[k]]
	}
	return got, true
}

func TestReadEvent(t *testing.T) {
	ev := `{
		"type": "m.room.message",
		"sender": "@bob:example.org",
		"room_id": "!r:example.org",
		"content": {
			"body": "caf\u00e9 \"quoted\"",
			"msgtype": "m.text",
			"n": -42,
			"m.mentions": {"user_ids": ["@alice:example.org", 3, null], "room": true},
			"m.relates_to": {"rel_type": "m.replace"},
			"a": {"b": {"c": 1.5}},
			"x\\y": false,
			"": "empty name"
		},
		"unsigned": {"age": 9007199254740992}
	}`
	got, ok := readKeys(t, ev)
	if !ok {
		t.Fatal("valid event refused")
	}
	str := func(s string) value { return value{kind: kindString, str: []byte(s)} }
	want := map[string]value{
		"type":                           str("m.room.message"),
		"sender":                         str("@bob:example.org"),
		"room_id":                        str("!r:example.org"),
		"state_key":                      {},
		"content":                        {kind: kindObject},
		"content.body":                   str(`café "quoted"`),
		"content.msgtype":                str("m.text"),
		`content.m\.mentions`:            {kind: kindObject},
		`content.m\.mentions.room`:       {kind: kindBool, b: true},
		`content.m\.relates_to.rel_type`: str("m.replace"),
		"content.n":                      {kind: kindInt, num: -42},
		"content.a.b.c":                  {kind: kindOtherNumber},
		`content.x\\y`:                   {kind: kindBool},
		"content.":                       str("empty name"),
		"unsigned.age":                   {kind: kindOtherNumber},
	}
	for k, w := range want {
		if g := got[k]; !sameValue(g, w) {
			t.Errorf("%s = %+v, want %+v", k, g, w)
		}
	}
	ids := got[`content.m\.mentions.user_ids`]
	if ids.kind != kindArray {
		t.Fatalf("user_ids = %+v, want an array", ids)
	}
	for _, tc := range []struct {
		want value
		in   bool
	}{
		{str("@alice:example.org"), true},
		{value{kind: kindInt, num: 3}, true},
		{value{kind: kindNull}, true},
		{str("@ALICE:example.org"), false},
		{str("@alice"), false},
		{value{kind: kindBool, b: true}, false},
	} {
		if got := arrayContains(ids.str, tc.want); got != tc.in {
			t.Errorf("user_ids contains %+v = %v, want %v", tc.want, got, tc.in)
		}
	}
}

func TestReadEventDuplicateMembers(t *testing.T) {
	// encoding/json keeps the last of repeated members, replacing objects
	// whole; so does readEvent.
	got, ok := readKeys(t, `{"content":{"body":"first","msgtype":"m.text"},"content":{"body":"second"}}`)
	if !ok {
		t.Fatal("refused")
	}
	if b := got["content.body"]; string(b.str) != "second" {
		t.Errorf("body = %q", b.str)
	}
	if m := got["content.msgtype"]; m.kind != kindAbsent {
		t.Errorf("msgtype survived its object's replacement: %+v", m)
	}
	got, _ = readKeys(t, `{"content":{"body":"x"},"content":null}`)
	if got["content"].kind != kindNull || got["content.body"].kind != kindAbsent {
		t.Errorf("content replaced by null: %+v, body %+v", got["content"], got["content.body"])
	}
}

func TestReadEventInvalid(t *testing.T) {
	for _, ev := range []string{
		``, `{`, `{"type":}`, `{"type":"x",}`, `{"type":"x"} x`, `{"a":tru}`,
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		"{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a" "b"}`, `{1:2}`, `[`, `"`,
	} {
		if _, ok := readKeys(t, ev); ok {
			t.Errorf("accepted %q", ev)
		}
		if json.Valid([]byte(ev)) {
			t.Errorf("test case %q is valid JSON", ev)
		}
	}
	deep := bytes.Repeat([]byte("["), maxDepth+1)
	if _, ok := readKeys(t, string(deep)); ok {
		t.Error("accepted nesting beyond maxDepth")
	}
}

func TestNumberValue(t *testing.T) {
	for tok, want := range map[string]value{
		"0":                       {kind: kindInt},
		"-0":                      {kind: kindInt},
		"7":                       {kind: kindInt, num: 7},
		"-7":                      {kind: kindInt, num: -7},
		"9007199254740991":        {kind: kindInt, num: maxSafeInteger},
		"-9007199254740991":       {kind: kindInt, num: -maxSafeInteger},
		"9007199254740992":        {kind: kindOtherNumber},
		"1.0":                     {kind: kindOtherNumber},
		"1e2":                     {kind: kindOtherNumber},
		"99999999999999999999999": {kind: kindOtherNumber},
	} {
		if got := numberValue([]byte(tok)); !sameValue(got, want) {
			t.Errorf("numberValue(%s) = %+v, want %+v", tok, got, want)
		}
	}
}

func TestParseScalar(t *testing.T) {
	for raw, ok := range map[string]bool{
		`"x"`: true, `1`: true, `-3`: true, `true`: true, `false`: true, `null`: true, ` "x" `: true,
		`1.5`: false, `1e3`: false, `9007199254740992`: false, `{}`: false, `[]`: false,
		``: false, `"x" 1`: false, `nul`: false,
	} {
		if _, got := parseScalar(json.RawMessage(raw)); got != ok {
			t.Errorf("parseScalar(%q) ok = %v, want %v", raw, got, ok)
		}
	}
}

func sameValue(a, b value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindString, kindArray:
		return bytes.Equal(a.str, b.str)
	case kindInt:
		return a.num == b.num
	case kindBool:
		return a.b == b.b
	}
	return true
}

// referenceValue is what encoding/json finds at key, translated to a value.
func referenceValue(doc any, key string) value {
	cur := doc
	for _, name := range splitPath(key) {
		obj, ok := cur.(map[string]any)
		if !ok {
			return value{}
		}
		if cur, ok = obj[name]; !ok {
			return value{}
		}
	}
	switch v := cur.(type) {
	case string:
		return value{kind: kindString, str: []byte(v)}
	case json.Number:
		return numberValue([]byte(v))
	case bool:
		return value{kind: kindBool, b: v}
	case nil:
		return value{kind: kindNull}
	case map[string]any:
		return value{kind: kindObject}
	case []any:
		return value{kind: kindArray}
	}
	panic("unexpected JSON value")
}

func scalarOf(v any) (value, bool) {
	switch v := v.(type) {
	case string:
		return value{kind: kindString, str: []byte(v)}, true
	case json.Number:
		return numberValue([]byte(v)), true
	case bool:
		return value{kind: kindBool, b: v}, true
	case nil:
		return value{kind: kindNull}, true
	}
	return value{}, false
}

// FuzzReadEvent checks the single-pass reader against encoding/json: the
// same documents are accepted, and every wanted path reads the same value.
func FuzzReadEvent(f *testing.F) {
	for _, seed := range []string{
		`{"type":"m.room.message","content":{"body":"hi","m.mentions":{"user_ids":["@a:b",1,null,true,[],{}]}}}`,
		`{"content":{"body":"a\ud83d\ude00b\u00e9\/","n":1e5,"a":{"b":{"c":[-0]}}}}`,
		`{"content":{"x\\y":1,"":2},"content":{"n":3}}`,
		"{\"content\":{\"body\":\"\xff\xfe\"}}",
		`{"unsigned":{"age":123}, "type" : "x" }`,
		`[1,{"a":2}]`, `"s"`, `{"a":"\ud800"}`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		got, ok := readKeys(t, string(event))
		if ok != json.Valid(event) {
			t.Fatalf("readEvent ok = %v, json.Valid = %v for %q", ok, !ok, event)
		}
		if !ok {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(event))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		for _, k := range testKeys {
			want := referenceValue(doc, k)
			g := got[k]
			if want.kind == kindArray && g.kind == kindArray {
				cur := doc
				for _, name := range splitPath(k) {
					cur = cur.(map[string]any)[name]
				}
				for _, el := range cur.([]any) {
					if s, isScalar := scalarOf(el); isScalar && !arrayContains(g.str, s) {
						t.Errorf("%s: array %s does not contain its element %v", k, g.str, el)
					}
				}
				continue
			}
			if !sameValue(g, want) {
				t.Errorf("%s = %+v (%q), encoding/json reads %+v (%q)", k, g, g.str, want, want.str)
			}
		}
	})
}
