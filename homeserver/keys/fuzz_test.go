package keys

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/salonhq/salon/internal/mxerr"
)

// FuzzUploadedKeys: a client's one-time, fallback and cross-signing keys
// (any JSON) are accepted in canonical form or refused with the client's
// Matrix error.
func FuzzUploadedKeys(f *testing.F) {
	pub := "l4VEEumwPfz6wrV1G9TKYSSuH3Ffo37JGYpcLvDSn5o"
	for _, s := range []string{
		`{"signed_curve25519:AAAA":{"key":"k","signatures":{"@a:x":{"ed25519:D":"s"}}},"curve25519:B":"k2"}`,
		`{"signed_curve25519:":{"key":"k"}}`, `{"x":1}`, `{"a:b":null}`, `{"a:b":"\ud800"}`, `{"a:b":{"key":1}}`,
	} {
		f.Add([]byte(s), []byte(`{"user_id":"@a:x","usage":["master"],"keys":{"ed25519:`+pub+`":"`+pub+`"},"unsigned":{"x":1}}`))
	}
	f.Add([]byte(`{}`), []byte(`{"user_id":"@a:x","usage":["master","self_signing"],"keys":{}}`))
	f.Add([]byte(`{}`), []byte(`{"user_id":"@a:x","usage":["master"],"keys":{"ed25519:x":"x"}}`))
	f.Add([]byte(`{}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, keyMap, crossKey []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(keyMap, &m) == nil {
			out, err := checkKeyMap("one_time_keys", m)
			mustClientErr(t, err)
			for _, k := range out {
				if !json.Valid(k.JSON) {
					t.Fatalf("stored %q", k.JSON)
				}
			}
		}
		c, err := checkCrossSigningKey("@a:x", "master", crossKey)
		mustClientErr(t, err)
		if err == nil && (c.keyID != "ed25519:"+c.pub || !json.Valid(c.canon)) {
			t.Fatalf("checked %+v", c)
		}
	})
}

func mustClientErr(t *testing.T, err error) {
	t.Helper()
	var me *mxerr.Error
	if err != nil && (!errors.As(err, &me) || me.Code == mxerr.Unknown) {
		t.Fatalf("not a client error: %v", err)
	}
}
