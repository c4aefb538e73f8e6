package clientapi

import (
	"errors"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// FuzzDecodeJSON: any body decodes or yields M_NOT_JSON / M_BAD_JSON /
// M_TOO_LARGE, never a panic or another error.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"a"},"password":"x"}`,
		`[]`, `{"password":1}`, `{"identifier":"x"}`, "", "\x00", `{"a":"\ud800"}`, `{"device_id":null}`, `1e999`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req loginRequest
		err := decodeJSON(body, &req, false)
		if err == nil {
			return
		}
		var me *mxerr.Error
		if !errors.As(err, &me) {
			t.Fatalf("non-Matrix error %v", err)
		}
		switch me.Code {
		case mxerr.NotJSON, mxerr.BadJSON:
		default:
			t.Fatalf("unexpected code %s", me.Code)
		}
		var reg registerRequest
		_ = decodeJSON(body, &reg, true)
	})
}

func TestDecodeJSON(t *testing.T) {
	var v struct {
		N int    `json:"n"`
		S string `json:"s"`
	}
	for body, want := range map[string]mxerr.Code{
		``: mxerr.NotJSON, `{`: mxerr.NotJSON, `"x"`: mxerr.BadJSON, `{"n":"1"}`: mxerr.BadJSON,
		`{"s":1}`: mxerr.BadJSON, `{"n":1.5}`: mxerr.BadJSON,
	} {
		err := decodeJSON([]byte(body), &v, false)
		var me *mxerr.Error
		if !errors.As(err, &me) || me.Code != want {
			t.Errorf("decode %q: %v, want %s", body, err, want)
		}
	}
	if err := decodeJSON(nil, &v, true); err != nil {
		t.Errorf("empty body allowed: %v", err)
	}
}

func TestHasNULEscape(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":"\u0000"}`: true, `{"\u0000":1}`: true, `{"a":"x\\\u0000"}`: true,
		`{"a":"\\u0000"}`: false, `{"a":"\u00001"}`: true, `{"a":"\u0001"}`: false, `{"a":"\\\\u0000"}`: false, `\`: false, `\u000`: false,
	} {
		if got := hasNULEscape([]byte(in)); got != want {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
}
