package cas

import (
	"errors"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/identity"
)

// FuzzServiceResponse: any answer from the CAS server (or from whoever
// answers in its place) is a user or identity.ErrRefused, never a panic;
// a user is never blank.
func FuzzServiceResponse(f *testing.F) {
	for _, s := range []string{
		`<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>ana</cas:user><cas:attributes><cas:mail>a@x</cas:mail><cas:mail>b@x</cas:mail><x:y xmlns:x="u">z</x:y></cas:attributes></cas:authenticationSuccess></cas:serviceResponse>`,
		`<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">nope</cas:authenticationFailure></cas:serviceResponse>`,
		`<serviceResponse><authenticationSuccess><user>x</user></authenticationSuccess></serviceResponse>`,
		`<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`, ``, `<`, `yes\nana\n`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		user, attrs, err := ParseServiceResponse(body)
		if err != nil {
			if !errors.Is(err, identity.ErrRefused) {
				t.Fatalf("error not ErrRefused: %v", err)
			}
			return
		}
		if strings.TrimSpace(user) == "" || user != strings.TrimSpace(user) || attrs == nil {
			t.Fatalf("user %q attrs %v", user, attrs)
		}
	})
}
