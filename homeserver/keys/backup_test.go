package keys

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

func code(err error) mxerr.Code {
	var me *mxerr.Error
	if errors.As(err, &me) {
		return me.Code
	}
	return ""
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1", 1}, {"42", 42}, {"999999999999999999", 999999999999999999},
		{"", 0}, {"0", 0}, {"01", 0}, {"-1", 0}, {"+1", 0}, {"1.0", 0}, {"abc", 0}, {" 1", 0},
		{"1000000000000000000", 0}, {"99999999999999999999", 0},
	} {
		v, err := parseVersion(tc.in)
		if tc.want == 0 {
			if code(err) != mxerr.NotFound {
				t.Errorf("parseVersion(%q) = %d, %v; want M_NOT_FOUND", tc.in, v, err)
			}
			continue
		}
		if err != nil || v != tc.want {
			t.Errorf("parseVersion(%q) = %d, %v; want %d", tc.in, v, err, tc.want)
		}
	}
}

func TestSessionKeyValidation(t *testing.T) {
	i := func(n int64) *int64 { return &n }
	yes := true
	good := KeyData{FirstMessageIndex: i(0), ForwardedCount: i(0), IsVerified: &yes, SessionData: json.RawMessage(` {"a": "b"} `)}
	with := func(edit func(*KeyData)) KeyData { k := good; edit(&k); return k }
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		name, room, session string
		key                 KeyData
		want                mxerr.Code
	}{
		{"valid", "!r:test", "s", good, ""},
		{"room version 12 room ID", "!abcdefABCDEF0123456789", "s", good, ""},
		{"room ID without !", "#r:test", "s", good, mxerr.InvalidParam},
		{"empty session ID", "!r:test", "", good, mxerr.InvalidParam},
		{"session ID too long", "!r:test", long, good, mxerr.InvalidParam},
		{"room ID too long", "!" + long, "s", good, mxerr.InvalidParam},
		{"missing first_message_index", "!r:test", "s", with(func(k *KeyData) { k.FirstMessageIndex = nil }), mxerr.BadJSON},
		{"missing forwarded_count", "!r:test", "s", with(func(k *KeyData) { k.ForwardedCount = nil }), mxerr.BadJSON},
		{"missing is_verified", "!r:test", "s", with(func(k *KeyData) { k.IsVerified = nil }), mxerr.BadJSON},
		{"negative first_message_index", "!r:test", "s", with(func(k *KeyData) { k.FirstMessageIndex = i(-1) }), mxerr.InvalidParam},
		{"negative forwarded_count", "!r:test", "s", with(func(k *KeyData) { k.ForwardedCount = i(-3) }), mxerr.InvalidParam},
		{"missing session_data", "!r:test", "s", with(func(k *KeyData) { k.SessionData = nil }), mxerr.BadJSON},
		{"session_data null", "!r:test", "s", with(func(k *KeyData) { k.SessionData = json.RawMessage(`null`) }), mxerr.BadJSON},
		{"session_data a string", "!r:test", "s", with(func(k *KeyData) { k.SessionData = json.RawMessage(`"abc"`) }), mxerr.BadJSON},
		{"session_data an array", "!r:test", "s", with(func(k *KeyData) { k.SessionData = json.RawMessage(`[1]`) }), mxerr.BadJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row, err := sessionKey(tc.room, tc.session, tc.key)
			if got := code(err); got != tc.want || (tc.want == "" && err != nil) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.want == "" && string(row.SessionData) != `{"a":"b"}` {
				t.Fatalf("session_data stored as %s, want it compacted", row.SessionData)
			}
		})
	}
}
