package main

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/salonhq/salon/homeserver/identity/saml"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// testIdP is a SAML IdP built in the test from crewjam/saml's IdP side,
// so the test can make the assertions a real IdP never would: signed by
// another key, expired, or addressed to another service provider.
type testIdP struct {
	t    testing.TB
	idp  *crewsaml.IdentityProvider
	srv  *httptest.Server
	sp   *crewsaml.EntityDescriptor // Salon's metadata, once fetched
	keys string                     // directory of key pairs
}

func loadPair(t testing.TB, key, cert string) (*rsa.PrivateKey, *x509.Certificate) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(pair.Certificate[0])
	return pair.PrivateKey.(*rsa.PrivateKey), c
}

func newTestIdP(t testing.TB) *testIdP {
	ti := &testIdP{t: t, keys: t.TempDir()}
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metadata" {
			ti.idp.ServeMetadata(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(ti.srv.Close)
	ti.idp = ti.make("idp")
	return ti
}

// make is an IdP at the test server's URLs with a key pair of its own.
func (ti *testIdP) make(name string) *crewsaml.IdentityProvider {
	key, cert := filepath.Join(ti.keys, name+".key"), filepath.Join(ti.keys, name+".crt")
	writeKeyPair(ti.t, key, cert, "test IdP "+name)
	k, c := loadPair(ti.t, key, cert)
	md, _ := url.Parse(ti.srv.URL + "/metadata")
	sso, _ := url.Parse(ti.srv.URL + "/sso")
	return &crewsaml.IdentityProvider{Key: k, Certificate: c, MetadataURL: *md, SSOURL: *sso, ServiceProviderProvider: ti}
}

// GetServiceProvider hands the IdP Salon's metadata.
func (ti *testIdP) GetServiceProvider(*http.Request, string) (*crewsaml.EntityDescriptor, error) {
	return ti.sp, nil
}

func fetchSPMetadata(t testing.TB, u string) *crewsaml.EntityDescriptor {
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal(body, &ed); err != nil {
		t.Fatalf("SP metadata: %v: %s", err, body)
	}
	return &ed
}

// answer is what idp (the test IdP or another) answers to the
// AuthnRequest in Salon's redirect, after change edits it; it returns the
// form the browser would post.
func (ti *testIdP) answer(idp *crewsaml.IdentityProvider, redirect string, change func(*crewsaml.IdpAuthnRequest)) url.Values {
	ti.t.Helper()
	r := httptest.NewRequest(http.MethodGet, redirect, nil)
	req, err := crewsaml.NewIdpAuthnRequest(idp, r)
	if err != nil {
		ti.t.Fatal(err)
	}
	if err := req.Validate(); err != nil {
		ti.t.Fatalf("the IdP refuses Salon's AuthnRequest: %v", err)
	}
	if change != nil {
		change(req)
	}
	sess := &crewsaml.Session{ID: "s1", NameID: "A-7731", NameIDFormat: string(crewsaml.PersistentNameIDFormat),
		UserName: "mallory.or.alice", UserCommonName: "Alice Test", UserEmail: "alice@uni.example",
		CreateTime: req.Now, ExpireTime: req.Now.Add(time.Hour)}
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		ti.t.Fatal(err)
	}
	if err := req.MakeAssertionEl(); err != nil {
		ti.t.Fatal(err)
	}
	if err := req.MakeResponse(); err != nil {
		ti.t.Fatal(err)
	}
	form, err := req.PostBinding()
	if err != nil {
		ti.t.Fatal(err)
	}
	return url.Values{"SAMLResponse": {form.SAMLResponse}, "RelayState": {form.RelayState}}
}

// TestSSOSAMLBadAssertions posts what an attacker or a broken IdP could:
// an assertion signed by another key, an expired one, one addressed to
// another service provider, one replayed, one without a request; each is
// refused and makes no login token. A good one from the same IdP works.
func TestSSOSAMLBadAssertions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		ti := newTestIdP(t)
		edit, _ := samlSP(t, ti.srv.URL+"/metadata", saml.Attributes{DisplayName: "cn"})
		srv := startServer(t, db, edit)
		acs := srv.URL + "/_salon/sso/uni/callback"
		ti.sp = fetchSPMetadata(t, srv.URL+"/_salon/sso/uni/metadata")
		client := srv.URL + "/sso-done"

		b := newBrowser(t, "/sso-done")
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		start := func() string {
			p := b.get(srv.URL + "/_matrix/client/v3/login/sso/redirect/uni?redirectUrl=" + url.QueryEscape(client))
			if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, ti.srv.URL+"/sso?") || !strings.Contains(p.Location, "Signature=") {
				t.Fatalf("redirect to the IdP: %d %q", p.Status, p.Location)
			}
			return p.Location
		}
		refused := func(name string, form url.Values) {
			t.Helper()
			p := b.post(acs, form)
			if p.Status != http.StatusForbidden || p.Location != "" {
				t.Fatalf("%s: %d Location %q: %.300s", name, p.Status, p.Location, p.Body)
			}
		}

		// Signed by a key the metadata does not name.
		refused("forged", ti.answer(ti.make("forger"), start(), nil))
		// Expired: made an hour ago.
		refused("expired", ti.answer(ti.idp, start(), func(r *crewsaml.IdpAuthnRequest) { r.Now = r.Now.Add(-time.Hour) }))
		// Made for another service provider (audience, recipient and
		// destination), in answer to Salon's own request ID.
		other := fetchSPMetadata(t, srv.URL+"/_salon/sso/uni/metadata")
		other.EntityID = "https://other-sp.example/metadata"
		other.SPSSODescriptors[0].AssertionConsumerServices[0].Location = "https://other-sp.example/acs"
		refused("wrongly addressed", ti.answer(ti.idp, start(), func(r *crewsaml.IdpAuthnRequest) {
			r.ServiceProviderMetadata = other
			r.SPSSODescriptor = &other.SPSSODescriptors[0]
			r.ACSEndpoint = &other.SPSSODescriptors[0].AssertionConsumerServices[0]
		}))

		// A good assertion works once.
		good := ti.answer(ti.idp, start(), nil)
		p := b.post(acs, good)
		alice := exchange(t, srv.URL, loginToken(t, p, client))
		if alice.UserID != "@mallory.or.alice:localhost" {
			t.Fatalf("signed in as %s", alice.UserID)
		}
		if p := b.post(acs, good); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Fatalf("replayed response: %d %q", p.Status, p.Location)
		}
		// Replayed into a new sign-in: answers another request.
		replay := url.Values{"SAMLResponse": good["SAMLResponse"]}
		next, _ := url.Parse(start())
		replay.Set("RelayState", next.Query().Get("RelayState"))
		refused("replayed into another sign-in", replay)
		// No SAMLResponse at all.
		next, _ = url.Parse(start())
		refused("empty", url.Values{"RelayState": {next.Query().Get("RelayState")}})
		// None of it made an account.
		mxtest.New(t, srv.URL).MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/profile/@a-7731:localhost", nil)
	})
}

// TestSSOSAMLIdPUnreachable: an IdP whose metadata cannot be fetched at
// start does not stop the server; sign-in through it answers a clear page
// until it can be fetched, and password logins work meanwhile.
func TestSSOSAMLIdPUnreachable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		ln := httptest.NewServer(http.NotFoundHandler())
		dead := ln.URL + "/metadata"
		ln.Close()
		edit, _ := samlSP(t, dead, saml.Attributes{})
		srv := startServer(t, db, edit)
		mxtest.Register(t, srv.URL, "alice", "alice's password")
		mxtest.Login(t, srv.URL, "alice", "alice's password")
		p := newBrowser(t, "/sso-done").get(srv.URL + "/_matrix/client/v3/login/sso/redirect/uni?redirectUrl=" + url.QueryEscape(srv.URL+"/sso-done"))
		if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "University cannot be reached") {
			t.Fatalf("sign-in with an unreachable IdP: %d %.300s", p.Status, p.Body)
		}
	})
}
