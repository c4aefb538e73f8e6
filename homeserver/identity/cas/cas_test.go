package cas

import (
	"errors"
	"testing"

	"github.com/salonhq/salon/homeserver/identity"
)

// The examples of the CAS 3.0 specification, appendix A and 2.5.2.
func TestParseServiceResponse(t *testing.T) {
	user, attrs, err := ParseServiceResponse([]byte(`<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
 <cas:authenticationSuccess>
  <cas:user>username</cas:user>
  <cas:attributes>
    <cas:firstname>John</cas:firstname>
    <cas:lastname>Doe</cas:lastname>
    <cas:title>Mr.</cas:title>
    <cas:email>jdoe@example.org</cas:email>
    <cas:affiliation>staff</cas:affiliation>
    <cas:affiliation>faculty</cas:affiliation>
  </cas:attributes>
  <cas:proxyGrantingTicket>PGTIOU-84678-8a9d...</cas:proxyGrantingTicket>
 </cas:authenticationSuccess>
</cas:serviceResponse>`))
	if err != nil || user != "username" || attrs["email"] != "jdoe@example.org" || attrs["affiliation"] != "staff" || attrs["firstname"] != "John" {
		t.Fatalf("success: %q %v %v", user, attrs, err)
	}
	for name, body := range map[string]string{
		"failure": `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
 <cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1856339-aA5Yuvrxzpv8Tau1cYQ7 not recognized</cas:authenticationFailure>
</cas:serviceResponse>`,
		"not CAS": `<serviceResponse><authenticationSuccess><user>root</user></authenticationSuccess></serviceResponse>`,
		"no user": `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user> </cas:user></cas:authenticationSuccess></cas:serviceResponse>`,
		"not XML": `<html>Login</html`,
		"neither": `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"></cas:serviceResponse>`,
	} {
		if _, _, err := ParseServiceResponse([]byte(body)); !errors.Is(err, identity.ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", name, err)
		}
	}
}
