package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestSSOConfigCheck: `salon config check` names every problem of the sso
// section at once.
func TestSSOConfigCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "salon.yaml")
	err := os.WriteFile(p, []byte(`sso:
  client_origins: ["https://app.example.org/path", "javascript:alert(1)"]
  login_token_ttl: 1h
  on_localpart_collision: merge
  saml:
    - id: "bad id"
      icon: https://example.org/icon.png
      idp_metadata_url: ftp://idp.example/md
      metadata_refresh: 1s
      key_file: only-key.pem
    - id: dup
      idp_metadata_file: /nonexistent.xml
      idp_metadata_url: https://idp.example/md
  cas:
    - id: dup
      server_url: cas.example.org
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "config", "check", "--config", p)
	if code != 1 {
		t.Fatalf("bad sso config accepted: %q", errs)
	}
	for _, key := range []string{
		"sso.client_origins[0]", "sso.client_origins[1]", "sso.login_token_ttl", "sso.on_localpart_collision",
		"sso.saml[0].id", "sso.saml[0].icon", "sso.saml[0].idp_metadata_url", "sso.saml[0].metadata_refresh", "sso.saml[0].key_file",
		"sso.saml[1].idp_metadata_file", "sso.cas[0].id", "sso.cas[0].server_url",
	} {
		if !strings.Contains(errs, key+":") {
			t.Errorf("config check does not name %s: %s", key, errs)
		}
	}
}

// TestSSOLocalpartSuffix: with on_localpart_collision: suffix, a new
// person whose user ID is taken gets the next free one, and keeps it.
func TestSSOLocalpartSuffix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		cs := newCASServer(t, map[string]casUser{"bob": {Password: "bob-pw", Attrs: map[string]string{}}})
		srv := startServer(t, db, withCAS(cs.URL, time.Minute), func(c *Config) { c.SSO.OnLocalpartCollision = "suffix" })
		mxtest.Register(t, srv.URL, "bob", "bob's password")
		mxtest.Register(t, srv.URL, "bob2", "bob2's password")
		client := srv.URL + "/sso-done"
		b := newBrowser(t, "/sso-done")
		for i := 0; i < 2; i++ {
			c := exchange(t, srv.URL, loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "bob", "bob-pw"), client))
			if c.UserID != "@bob3:localhost" {
				t.Fatalf("sign-in %d as %s, want @bob3:localhost", i+1, c.UserID)
			}
		}
		mxtest.Login(t, srv.URL, "bob", "bob's password")

		// A deactivated account cannot come back through the provider.
		if err := srv.srv.hs.Auth.Deactivate(context.Background(), "bob3"); err != nil {
			t.Fatal(err)
		}
		if p := casSignIn(t, b, srv.URL, "campus", client, "bob", "bob-pw"); p.Status != http.StatusForbidden || strings.Contains(p.Location, "loginToken") {
			t.Fatalf("deactivated account signed in: %d %q", p.Status, p.Location)
		}
	})
}

// TestSSOConfigCheckReachable: `salon config check` reaches the identity
// providers: an IdP whose metadata cannot be fetched is named, a working
// one and a CAS server that answers pass.
func TestSSOConfigCheckReachable(t *testing.T) {
	ti := newTestIdP(t)
	cs := newCASServer(t, map[string]casUser{})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	p := filepath.Join(t.TempDir(), "salon.yaml")
	write := func(samlURL string) {
		err := os.WriteFile(p, []byte(fmt.Sprintf(`sso:
  saml:
    - id: uni
      idp_metadata_url: %s
  cas:
    - id: campus
      server_url: %s/cas
`, samlURL, cs.URL)), 0o600)
		if err != nil {
			t.Fatal(err)
		}
	}
	write(dead.URL + "/metadata")
	code, out, errs := runCLI(t, "config", "check", "--config", p)
	if code != 1 || !strings.Contains(errs, "sso.saml[0] (uni)") || strings.Contains(errs, "sso.cas") {
		t.Fatalf("unreachable IdP: %d %q %q", code, out, errs)
	}
	write(ti.srv.URL + "/metadata")
	code, out, errs = runCLI(t, "config", "check", "--config", p)
	if code != 0 || !strings.Contains(out, "SAML uni: the IdP metadata is readable") || !strings.Contains(out, "CAS campus: the server answers") {
		t.Fatalf("reachable IdPs: %d %q %q", code, out, errs)
	}
}
