package authrules

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParsePowerLevels: ParsePowerLevels never panics, fails only with
// ErrInvalidPowerLevels, and what it accepts reads back in range and may
// always be re-sent unchanged by its most powerful user.
func FuzzParsePowerLevels(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"ban":50,"users":{"@a:b":100},"events":{"m.room.name":50},"notifications":{"room":20}}`,
		`{"ban":"50"}`,
		`{"kick":5e1,"redact":50.0,"invite":-0}`,
		`{"users":{"@a:":1,"b":2}}`,
		`{"users_default":9007199254740991,"events_default":-9007199254740991}`,
		`{"state_default":9007199254740992}`,
		`{"users":null,"events":[],"notifications":"x"}`,
		`null`, `[]`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		for _, v := range versions {
			pl, err := ParsePowerLevels(v, json.RawMessage(content))
			if err != nil {
				if !errors.Is(err, ErrInvalidPowerLevels) {
					t.Fatalf("ParsePowerLevels(%q): %v, not ErrInvalidPowerLevels", content, err)
				}
				continue
			}
			levels := []int64{
				pl.UsersDefault(), pl.EventsDefault(), pl.StateDefault(),
				pl.Ban(), pl.Kick(), pl.Redact(), pl.Invite(), pl.Notification("room"),
			}
			top := int64(-maxSafeInteger)
			admin := "@fuzz:example.org"
			for u, n := range pl.users {
				levels = append(levels, n)
				if !isUserID(u) {
					t.Fatalf("accepted users key %q", u)
				}
				if n >= top {
					top, admin = n, u
				}
			}
			for _, n := range levels {
				if n > maxSafeInteger || n < -maxSafeInteger {
					t.Fatalf("level %d out of range from %q", n, content)
				}
			}
			if _, ok := pl.users[admin]; !ok {
				continue // nobody listed: no one to re-send it as
			}
			// Re-sending the same content changes nothing, so rule 9 allows it.
			if err := checkPowerLevelsChange(admin, pl.UserLevel(admin), pl, pl); err != nil {
				t.Fatalf("unchanged power levels refused: %v", err)
			}
		}
	})
}
