package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/identity/saml"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// samlSP makes the service provider's key pair and a config edit that
// adds the SAML provider "uni".
func samlSP(t testing.TB, metadataURL string, attrs saml.Attributes) (func(*Config), []byte) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	der := writeKeyPair(t, key, cert, "Salon test SP")
	return func(c *Config) {
		c.SSO.SAML = []saml.Config{{ID: "uni", Name: "University", IdPMetadataURL: metadataURL, KeyFile: key, CertFile: cert, Attributes: attrs}}
	}, der
}

// TestSSOSAMLSimpleSAMLphp signs a student in through SimpleSAMLphp, a
// SAML IdP nobody here wrote: a signed AuthnRequest over the redirect
// binding, the IdP's login form, its signed assertion posted back, the
// login token exchanged; a second sign-in reaches the same account, and
// the posted assertion cannot be used again.
func TestSSOSAMLSimpleSAMLphp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		idp := startSimpleSAMLphp(t)
		edit, der := samlSP(t, idp.MetadataURL, saml.Attributes{Subject: "uid"})
		srv := startServer(t, db, edit)
		entityID, acs := srv.URL+"/_salon/sso/uni/metadata", srv.URL+"/_salon/sso/uni/callback"
		idp.trustSP(t, entityID, acs, der)

		// The SP metadata is at a stable URL, says requests are signed and
		// where assertions go.
		b := newBrowser(t, "/sso-done")
		md := b.get(entityID)
		if md.Status != 200 || !strings.Contains(md.Body, `entityID="`+entityID+`"`) || !strings.Contains(md.Body, `AuthnRequestsSigned="true"`) ||
			!strings.Contains(md.Body, `Location="`+acs+`"`) {
			t.Fatalf("SP metadata: %d %s", md.Status, md.Body)
		}

		client := srv.URL + "/sso-done"
		p := b.get(srv.URL + "/_matrix/client/v3/login/sso/redirect/uni?redirectUrl=" + url.QueryEscape(client))
		if p.Status != 200 || !strings.HasPrefix(p.URL.String(), idp.URL) || !strings.Contains(p.Body, "password") {
			t.Fatalf("no IdP login form: %d %s: %.3000s", p.Status, p.URL, p.Body)
		}
		post := b.submit(p, map[string]string{"username": "student1", "password": "student1pass"})
		if post.Status != 200 || !strings.Contains(post.Body, "SAMLResponse") {
			t.Fatalf("IdP did not answer with the POST form: %d %s: %.3000s", post.Status, post.URL, post.Body)
		}
		tok := loginToken(t, b.submit(post, nil), client)
		student := exchange(t, srv.URL, tok)
		if student.UserID != "@student1:localhost" {
			t.Fatalf("signed in as %s", student.UserID)
		}
		if dn := student.Must(200, "GET", "/_matrix/client/v3/profile/@student1:localhost/displayname", nil).Str("displayname"); dn != "Student One" {
			t.Fatalf("display name %q", dn)
		}

		// Posting the same assertion again is refused.
		if again := b.submit(post, nil); again.Status == http.StatusFound || strings.Contains(again.Location, "loginToken") {
			t.Fatalf("replayed assertion: %d %q", again.Status, again.Location)
		}

		// The IdP remembers the student: the second sign-in goes straight
		// back, to the same account.
		p = b.get(srv.URL + "/_matrix/client/v3/login/sso/redirect/uni?redirectUrl=" + url.QueryEscape(client))
		if !strings.Contains(p.Body, "SAMLResponse") {
			p = b.submit(p, map[string]string{"username": "student1", "password": "student1pass"})
		}
		second := exchange(t, srv.URL, loginToken(t, b.submit(p, nil), client))
		if second.UserID != student.UserID {
			t.Fatalf("second sign-in as %s", second.UserID)
		}
		mxtest.New(t, srv.URL).MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.token", "token": tok})
	})
}
