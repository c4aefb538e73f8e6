package main

import (
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func loginRefreshable(t *testing.T, base, user, password string) (*mxtest.Client, string) {
	t.Helper()
	c := mxtest.New(t, base)
	r := c.Must(200, "POST", "/_matrix/client/v3/login", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user},
		"password": password, "refresh_token": true,
	})
	if r.Str("refresh_token") == "" || r.Body["expires_in_ms"] == nil {
		t.Fatalf("login with refresh_token: %s", r.Raw)
	}
	c.Token, c.UserID, c.DeviceID = r.Str("access_token"), r.Str("user_id"), r.Str("device_id")
	return c, r.Str("refresh_token")
}

// TestRefreshTokens: rotation, the old refresh token valid until the new
// tokens are used and never after (replay), logout ending the chain, and
// the spec's errors.
func TestRefreshTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, func(c *Config) { c.Sessions.RefreshableAccessTokenLifetime = time.Hour })
		anon := mxtest.New(t, srv.URL)
		first := anon.Do("POST", "/_matrix/client/v3/register", map[string]any{"username": "alice", "password": "password alice"})
		reg := anon.Must(200, "POST", "/_matrix/client/v3/register", map[string]any{
			"username": "alice", "password": "password alice", "refresh_token": true,
			"auth": map[string]any{"type": "m.login.dummy", "session": first.Str("session")},
		})
		if reg.Str("refresh_token") == "" || reg.Body["expires_in_ms"].(float64) != float64(time.Hour.Milliseconds()) {
			t.Fatalf("register with refresh_token: %s", reg.Raw)
		}
		if r := mxtest.Login(t, srv.URL, "alice", "password alice"); r.Token == "" {
			t.Fatal("plain login")
		}
		plain := mxtest.New(t, srv.URL).Must(200, "POST", "/_matrix/client/v3/login", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password alice",
		})
		if _, ok := plain.Body["refresh_token"]; ok {
			t.Fatalf("refresh token not asked for: %s", plain.Raw)
		}
		if _, ok := plain.Body["expires_in_ms"]; ok {
			t.Fatalf("expiry without refresh token: %s", plain.Raw)
		}

		alice, rt1 := loginRefreshable(t, srv.URL, "alice", "password alice")
		at1 := alice.Token
		alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		refresh := func(rt string) (string, string) {
			t.Helper()
			r := anon.Must(200, "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": rt})
			if r.Str("access_token") == "" || r.Str("refresh_token") == "" || r.Body["expires_in_ms"] == nil {
				t.Fatalf("refresh: %s", r.Raw)
			}
			return r.Str("access_token"), r.Str("refresh_token")
		}
		as := func(tok string) *mxtest.Client {
			c := mxtest.New(t, srv.URL)
			c.Token = tok
			return c
		}
		at2, rt2 := refresh(rt1)
		as(at1).MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
		// The answer was lost: the same refresh token again, before the
		// new tokens are used.
		at3, rt3 := refresh(rt1)
		as(at2).MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
		if who := as(at3).Must(200, "GET", "/_matrix/client/v3/account/whoami", nil); who.Str("device_id") != alice.DeviceID {
			t.Fatalf("refreshed token is another device: %s", who.Raw)
		}
		// Once the new access token is used, the old refresh tokens are dead.
		for _, old := range []string{rt1, rt2} {
			anon.MustErr(401, "M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": old})
		}
		at4, rt4 := refresh(rt3)
		// Using the newer refresh token also ends the one before.
		_, rt5 := refresh(rt4)
		anon.MustErr(401, "M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": rt3})
		as(at4).MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)

		// Logging out ends the chain.
		at6, rt6 := refresh(rt5)
		as(at6).Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
		anon.MustErr(401, "M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": rt6})

		anon.MustErr(400, "M_MISSING_PARAM", "POST", "/_matrix/client/v3/refresh", map[string]any{})
		anon.MustErr(400, "M_NOT_JSON", "POST", "/_matrix/client/v3/refresh", "nope")
		anon.MustErr(400, "M_BAD_JSON", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": 7})
		anon.MustErr(401, "M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": "salon_rt_guess"})
		// An access token is not a refresh token.
		anon.MustErr(401, "M_UNKNOWN_TOKEN", "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": alice.Token})
	})
}

// TestRefreshableTokenExpires: an access token issued with a refresh
// token expires (401 M_UNKNOWN_TOKEN, soft_logout true), one without does
// not, and the refresh token brings the session back.
func TestRefreshableTokenExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db, func(c *Config) { c.Sessions.RefreshableAccessTokenLifetime = 2 * time.Second })
		mxtest.Register(t, srv.URL, "alice", "password alice")
		plain := mxtest.Login(t, srv.URL, "alice", "password alice")
		alice, rt := loginRefreshable(t, srv.URL, "alice", "password alice")
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := alice.Do("GET", "/_matrix/client/v3/account/whoami", nil)
			if r.Status == 401 {
				if r.Errcode() != "M_UNKNOWN_TOKEN" || r.Body["soft_logout"] != true {
					t.Fatalf("expired token: %s", r.Raw)
				}
				break
			}
			if r.Status != 200 || time.Now().After(deadline) {
				t.Fatalf("token did not expire: %d %s", r.Status, r.Raw)
			}
			time.Sleep(200 * time.Millisecond)
		}
		plain.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		r := mxtest.New(t, srv.URL).Must(200, "POST", "/_matrix/client/v3/refresh", map[string]any{"refresh_token": rt})
		alice.Token = r.Str("access_token")
		alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
	})
}
