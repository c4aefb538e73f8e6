package signaling

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// The test vector of matrix-js-sdk's computeRtcIdentityRaw, which clients
// use to find a member's LiveKit participant.
func TestLiveKitIdentityVector(t *testing.T) {
	if got, want := LiveKitIdentity("@alice:example.com", "DEVICE123", "memberABC"), "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"; got != want {
		t.Errorf("LiveKitIdentity = %q, want %q", got, want)
	}
	if got, want := LiveKitRoomAlias("!call:salon.test", "m.call#ROOM"), sha256JSONArray("!call:salon.test", "m.call#ROOM"); got != want {
		t.Errorf("LiveKitRoomAlias = %q, want %q", got, want)
	}
	// Canonical JSON escapes quotes, backslashes and control characters,
	// and leaves the rest raw.
	if got, want := hashStrings("a\"b\\c\nd\x01é<"), sha256JSONArray(`a\"b\\c\nd\u0001é<`); got != want {
		t.Errorf("escaping: %q, want %q", got, want)
	}
}

func TestLegacyLiveKitIdentity(t *testing.T) {
	if got := LegacyLiveKitIdentity("@a:b", "DEV"); got != "@a:b:DEV" {
		t.Errorf("%q", got)
	}
}

// sha256JSONArray is the documented derivation written out by hand, apart
// from the code under test: unpadded base64 of SHA-256 of the JSON array
// (for plain ASCII IDs, canonical JSON is just quotes and commas).
func sha256JSONArray(parts ...string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = `"` + p + `"`
	}
	sum := sha256.Sum256([]byte("[" + strings.Join(quoted, ",") + "]"))
	return strings.TrimRight(base64.StdEncoding.EncodeToString(sum[:]), "=")
}
