package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/identity/cas"
	"github.com/salonhq/salon/homeserver/mxtest"
)

func withCAS(casURL string, ttl time.Duration) func(*Config) {
	return func(c *Config) {
		c.SSO.CAS = []cas.Config{{ID: "campus", Name: "Campus CAS", ServerURL: casURL + "/cas"}}
		c.SSO.ClientOrigins = []string{"https://app.example.org"}
		c.SSO.LoginTokenTTL = ttl
	}
}

// TestSSOCAS signs people in through a CAS server: the login flows, the
// account made on the first sign-in and kept after the display name
// changes, the one-time login token, redirect targets, a localpart taken
// by another account, and bad tickets.
func TestSSOCAS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		cs := newCASServer(t, map[string]casUser{
			"Alice.Martin": {Password: "alice-pw", Attrs: map[string]string{"displayName": "Alice Martin", "mail": "alice@uni.example"}},
			"bob":          {Password: "bob-pw", Attrs: map[string]string{"displayName": "Bob (CAS)"}},
		})
		srv := startServer(t, db, withCAS(cs.URL, 4*time.Second))
		client := srv.URL + "/sso-done"

		flows := mxtest.New(t, srv.URL).Must(200, "GET", "/_matrix/client/v3/login", nil).Body["flows"].([]any)
		var sso map[string]any
		for _, f := range flows {
			if f.(map[string]any)["type"] == "m.login.sso" {
				sso = f.(map[string]any)
			}
		}
		if sso == nil {
			t.Fatalf("GET /login has no m.login.sso: %v", flows)
		}
		idps := sso["identity_providers"].([]any)
		if len(idps) != 1 || idps[0].(map[string]any)["id"] != "campus" || idps[0].(map[string]any)["name"] != "Campus CAS" {
			t.Fatalf("identity_providers = %v", idps)
		}

		// First sign-in makes the account, normalised to Matrix's grammar.
		b := newBrowser(t, "/sso-done")
		tok := loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "Alice.Martin", "alice-pw"), client)
		alice := exchange(t, srv.URL, tok)
		if alice.UserID != "@alice.martin:localhost" {
			t.Fatalf("signed in as %s", alice.UserID)
		}
		if dn := alice.Must(200, "GET", "/_matrix/client/v3/profile/@alice.martin:localhost/displayname", nil).Str("displayname"); dn != "Alice Martin" {
			t.Fatalf("display name %q", dn)
		}
		// The token works once.
		mxtest.New(t, srv.URL).MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.token", "token": tok})

		// A new display name at the provider is the same person.
		cs.setAttr("Alice.Martin", "displayName", "Alice Martin-Dupont")
		again := exchange(t, srv.URL, loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "Alice.Martin", "alice-pw"), client))
		if again.UserID != alice.UserID || again.DeviceID == alice.DeviceID {
			t.Fatalf("second sign-in: %s device %s (first %s %s)", again.UserID, again.DeviceID, alice.UserID, alice.DeviceID)
		}

		// An expired token is refused.
		late := loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "Alice.Martin", "alice-pw"), client)
		time.Sleep(5 * time.Second)
		mxtest.New(t, srv.URL).MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.token", "token": late})

		// A configured client origin gets the token at once; any other
		// origin a confirmation page, never a redirect.
		p := casSignIn(t, b, srv.URL, "campus", "https://app.example.org/#/home", "Alice.Martin", "alice-pw")
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "https://app.example.org/?loginToken=") {
			t.Fatalf("configured client: %d %q", p.Status, p.Location)
		}
		p = casSignIn(t, b, srv.URL, "campus", "https://evil.example/steal", "Alice.Martin", "alice-pw")
		if p.Status != http.StatusOK || p.Location != "" || !strings.Contains(p.Body, "Continue to evil.example") ||
			p.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("other origin: status %d Location %q: %.500s", p.Status, p.Location, p.Body)
		}
		if cont := link(t, p, "Continue to evil.example"); !strings.HasPrefix(cont, "https://evil.example/steal?loginToken=") {
			t.Fatalf("continue link %q", cont)
		}

		// The localpart of a new person belongs to a password account:
		// refused with a page saying so, and nothing else changes.
		bob := mxtest.Register(t, srv.URL, "bob", "bob's password")
		p = casSignIn(t, b, srv.URL, "campus", client, "bob", "bob-pw")
		if p.Status != http.StatusConflict || !strings.Contains(p.Body, "@bob:localhost") {
			t.Fatalf("collision: %d %.500s", p.Status, p.Body)
		}
		mxtest.Login(t, srv.URL, "bob", "bob's password")
		if dn := bob.Must(200, "GET", "/_matrix/client/v3/profile/@bob:localhost/displayname", nil).Str("displayname"); dn == "Bob (CAS)" {
			t.Fatal("the collision changed bob's profile")
		}

		// Bad redirect requests are Matrix errors.
		anon := mxtest.New(t, srv.URL)
		anon.MustErr(400, "M_MISSING_PARAM", "GET", "/_matrix/client/v3/login/sso/redirect/campus", nil)
		anon.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/login/sso/redirect/campus?redirectUrl="+url.QueryEscape("javascript:alert(1)"), nil)
		anon.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/login/sso/redirect/nope?redirectUrl="+url.QueryEscape(client), nil)

		// A forged ticket is refused (the CAS server does not know it),
		// and a callback whose state was used is refused too.
		nb := newBrowser(t, "/sso-done")
		nb.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		start := nb.get(srv.URL + "/_matrix/client/v3/login/sso/redirect/campus?redirectUrl=" + url.QueryEscape(client))
		casLogin, _ := url.Parse(start.Location)
		service := casLogin.Query().Get("service")
		if !strings.HasPrefix(service, srv.URL+"/_salon/sso/campus/callback?state=") {
			t.Fatalf("service URL %q", service)
		}
		if p := nb.get(service + "&ticket=ST-forged"); p.Status != http.StatusForbidden {
			t.Fatalf("forged ticket: %d %.300s", p.Status, p.Body)
		}
		start = nb.get(srv.URL + "/_matrix/client/v3/login/sso/redirect/campus?redirectUrl=" + url.QueryEscape(client))
		back := nb.submit(nb.get(start.Location), map[string]string{"username": "Alice.Martin", "password": "alice-pw"})
		if back.Status != http.StatusFound {
			t.Fatalf("CAS login: %d", back.Status)
		}
		if p := nb.get(back.Location); p.Status != http.StatusFound || !strings.Contains(p.Location, "loginToken=") {
			t.Fatalf("callback: %d %q", p.Status, p.Location)
		}
		if p := nb.get(back.Location); p.Status != http.StatusBadRequest || strings.Contains(p.Location, "loginToken") {
			t.Fatalf("replayed callback: %d %q", p.Status, p.Location)
		}
	})
}

// TestSSOUserInteractiveAuth: an account made by SSO has no password;
// deleting a device asks for m.login.sso, which the fallback page
// completes by signing in again, as that user only.
func TestSSOUserInteractiveAuth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		cs := newCASServer(t, map[string]casUser{
			"alice": {Password: "alice-pw", Attrs: map[string]string{}},
			"carol": {Password: "carol-pw", Attrs: map[string]string{}},
		})
		srv := startServer(t, db, withCAS(cs.URL, time.Minute))
		client := srv.URL + "/sso-done"
		b := newBrowser(t, "/sso-done")
		alice := exchange(t, srv.URL, loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "alice", "alice-pw"), client))
		phone := exchange(t, srv.URL, loginToken(t, casSignIn(t, b, srv.URL, "campus", client, "alice", "alice-pw"), client))
		exchange(t, srv.URL, loginToken(t, casSignIn(t, newBrowser(t, "/sso-done"), srv.URL, "campus", client, "carol", "carol-pw"), client))

		del := map[string]any{"devices": []string{phone.DeviceID}}
		r := alice.Do("POST", "/_matrix/client/v3/delete_devices", del)
		if r.Status != 401 || !strings.Contains(string(r.Raw), `"flows":[{"stages":["m.login.sso"]}]`) {
			t.Fatalf("first step: %d %s", r.Status, r.Raw)
		}
		session := r.Str("session")
		fallback := srv.URL + "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(session)

		// Signing in as someone else does not complete alice's session.
		cb := newBrowser(t, "/sso-done")
		p := cb.get(link(t, cb.get(fallback), "Continue with Campus CAS"))
		if p = cb.submit(p, map[string]string{"username": "carol", "password": "carol-pw"}); p.Status != http.StatusForbidden {
			t.Fatalf("carol confirming for alice: %d %.300s", p.Status, p.Body)
		}
		alice.MustErr(401, "", "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": del["devices"], "auth": map[string]any{"session": session}})
		// Claiming the stage without the fallback proves nothing.
		alice.MustErr(401, "M_UNAUTHORIZED", "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": del["devices"], "auth": map[string]any{"type": "m.login.sso", "session": session}})

		p = b.get(link(t, b.get(fallback), "Continue with Campus CAS"))
		p = b.submit(p, map[string]string{"username": "alice", "password": "alice-pw"})
		if p.Status != 200 || !strings.Contains(p.Body, "authDone") {
			t.Fatalf("fallback: %d %.500s", p.Status, p.Body)
		}
		alice.Must(200, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": del["devices"], "auth": map[string]any{"type": "m.login.sso", "session": session}})
		phone.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)

		// Resetting cross-signing (replacing the master key) is confirmed
		// the same way: an account without a password is offered
		// m.login.sso, not a password it does not have.
		csKey := func(d *e2eDevice) map[string]any {
			return map[string]any{"user_id": alice.UserID, "usage": []string{"master"}, "keys": map[string]any{"ed25519:" + d.pub: d.pub}}
		}
		alice.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", map[string]any{"master_key": csKey(newE2EDevice(t, alice))})
		reset := map[string]any{"master_key": csKey(newE2EDevice(t, alice))}
		r = alice.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", reset)
		if r.Status != 401 || !strings.Contains(string(r.Raw), `"flows":[{"stages":["m.login.sso"]}]`) {
			t.Fatalf("cross-signing reset, first step: %d %s", r.Status, r.Raw)
		}
		fallback = srv.URL + "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(r.Str("session"))
		p = b.get(link(t, b.get(fallback), "Continue with Campus CAS"))
		if p = b.submit(p, map[string]string{"username": "alice", "password": "alice-pw"}); p.Status != 200 || !strings.Contains(p.Body, "authDone") {
			t.Fatalf("cross-signing reset fallback: %d %.500s", p.Status, p.Body)
		}
		reset["auth"] = map[string]any{"type": "m.login.sso", "session": r.Str("session")}
		alice.Must(200, "POST", "/_matrix/client/v3/keys/device_signing/upload", reset)
	})
}
