package events

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestCanonicalJSONSpecExamples(t *testing.T) {
	// appendices.md, "Canonical JSON", "Examples".
	tests := []struct {
		name, in, want string
	}{
		{"empty object", `{}`, `{}`},
		{"two members", "{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
		{"reversed keys pretty", "{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", `{"a":"1","b":"2"}`},
		{"reversed keys compact", `{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
		{"nested", `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`, `{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
		{"utf-8 value", `{"a": "日本語"}`, `{"a":"日本語"}`},
		{"utf-8 keys sorted by code point", `{"本": 2, "日": 1}`, `{"日":1,"本":2}`},
		{"unicode escape unescaped", `{"a": "\u65E5"}`, `{"a":"日"}`},
		{"null", `{"a": null}`, `{"a":null}`},
		{"negative zero and exponent", `{"a": -0, "b": 1e10}`, `{"a":0,"b":10000000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"scalar string", `"x"`, `"x"`},
		{"scalar int", ` 42 `, `42`},
		{"true false null", `[true,false,null]`, `[true,false,null]`},
		{"whitespace everywhere", " {\t\"a\" :\r\n [ 1 , 2 ] } ", `{"a":[1,2]}`},
		{"empty array and object", `[ [ ] , { } ]`, `[[],{}]`},
		{"short escapes kept", `"\" \\ \b \f \n \r \t"`, `"\" \\ \b \f \n \r \t"`},
		{"u escapes of short forms", `"\u0022\u005c\u0008\u000C\u000a\u000D\u0009"`, `"\"\\\b\f\n\r\t"`},
		{"control chars lower-case hex", `"\u0000\u0001\u001F\u001b"`, `"\u0000\u0001\u001f\u001b"`},
		{"solidus unescaped", `"a\/b"`, `"a/b"`},
		{"DEL and U+2028 raw", `"\u007f\u2028<>&"`, "\"\x7f\u2028<>&\""},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"raw astral", `"😀"`, `"😀"`},
		{"sort by code point not UTF-16", `{"😀":1,"\uffff":2}`, "{\"\uffff\":2,\"😀\":1}"},
		{"escaped key sorts by decoded value", `{"b":1,"\u0061":2}`, `{"a":2,"b":1}`},
		{"control char key sorts first", `{"a":1,"\n":2}`, `{"\n":2,"a":1}`},
		{"nested unsorted", `{"z":{"y":1,"x":[{"b":1,"a":2}]},"a":0}`, `{"a":0,"z":{"x":[{"a":2,"b":1}],"y":1}}`},
		{"prefix keys", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
		{"max int", `9007199254740991`, `9007199254740991`},
		{"min int", `-9007199254740991`, `-9007199254740991`},
		{"integer-valued fraction", `2.000`, `2`},
		{"exponent with fraction", `1.5e1`, `15`},
		{"capital E and plus", `-12E+2`, `-1200`},
		{"negative exponent integer", `1200e-2`, `12`},
		{"zero with exponent", `0e999999999999`, `0`},
		{"negative zero fraction", `-0.0`, `0`},
		{"max via exponent", `9.007199254740991e15`, `9007199254740991`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalJSON(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			again, err := CanonicalJSON(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %s, %v", again, err)
			}
		})
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"only space", `  `},
		{"float", `1.5`},
		{"small float", `1e-1`},
		{"too big", `9007199254740992`},
		{"too small", `-9007199254740992`},
		{"too big via exponent", `1e16`},
		{"huge exponent", `1e999999999999999999999`},
		{"long digits", `123456789012345678901234567890`},
		{"leading zero", `01`},
		{"plus sign", `+1`},
		{"bare minus", `-`},
		{"dot without digits", `1.`},
		{"exponent without digits", `1e`},
		{"NaN", `NaN`},
		{"Infinity", `Infinity`},
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key unsorted", `{"b":1,"a":1,"b":2}`},
		{"duplicate key via escape", `{"a":1,"\u0061":2}`},
		{"trailing comma object", `{"a":1,}`},
		{"trailing comma array", `[1,]`},
		{"trailing data", `{} {}`},
		{"unterminated string", `"abc`},
		{"unterminated object", `{"a":1`},
		{"unterminated array", `[1`},
		{"raw control char", "\"a\x01b\""},
		{"raw newline", "\"a\nb\""},
		{"invalid utf-8", "\"\xff\""},
		{"overlong utf-8", "\"\xc0\xaf\""},
		{"utf-8 surrogate", "\"\xed\xa0\x80\""},
		{"lone high surrogate", `"\ud800"`},
		{"lone low surrogate", `"\udc00"`},
		{"high then non-low", `"\ud800\u0041"`},
		{"bad escape", `"\x"`},
		{"short u escape", `"\u12"`},
		{"single quotes", `{'a':1}`},
		{"non-string key", `{1:2}`},
		{"missing colon", `{"a" 1}`},
		{"bad literal", `tru`},
		{"capital literal", `True`},
		{"BOM", "\xef\xbb\xbf{}"},
		{"comment", `{} // x`},
		{"too deep", strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("CanonicalJSON(%q) = %s, want error", tt.in, got)
			}
			if !errors.Is(err, ErrBadJSON) {
				t.Errorf("error %v does not wrap ErrBadJSON", err)
			}
		})
	}
}

func TestCanonicalJSONNesting(t *testing.T) {
	deep := strings.Repeat(`{"a":[`, maxNesting/2) + strings.Repeat(`]}`, maxNesting/2)
	got, err := CanonicalJSON([]byte(deep))
	if err != nil {
		t.Fatalf("depth %d rejected: %v", maxNesting, err)
	}
	if string(got) != deep {
		t.Errorf("deep value changed")
	}
}

func TestCanonicalizeStrictNumbers(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`{"a":1}`, `{"a":1}`, true},
		{`{"a":-0}`, `{"a":0}`, true},
		{`{"a":1.0}`, ``, false},
		{`{"a":1e2}`, ``, false},
		{`{"a":9007199254740992}`, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := canonicalize([]byte(tt.in), true)
			if tt.ok != (err == nil) {
				t.Fatalf("canonicalize strict(%s) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCanonicalJSONConcurrent guards the recycled scratch buffers: calls
// running at once, some failing half-way, must not see each other's state.
func TestCanonicalJSONConcurrent(t *testing.T) {
	inputs := []struct{ in, want string }{
		{`{"b":{"d":1,"c":2},"a":[3]}`, `{"a":[3],"b":{"c":2,"d":1}}`},
		{`{"z":"\u00e9","y":{"x":{"w":null}}}`, `{"y":{"x":{"w":null}},"z":"é"}`},
		{`{"b":1,"a":{"d":1,"c":`, ``}, // fails with members pending
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tc := inputs[(g+i)%len(inputs)]
				got, err := CanonicalJSON([]byte(tc.in))
				if (err == nil) != (tc.want != "") || string(got) != tc.want {
					errs <- fmt.Sprintf("CanonicalJSON(%s) = %s, %v", tc.in, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
