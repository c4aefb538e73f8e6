package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestAccountRoundTrip is what a new user does first: register, log in on a
// second device, check who they are, change their profile, log out.
func TestAccountRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "correct horse battery")
		if alice.UserID != "@alice:localhost" || alice.Token == "" || alice.DeviceID == "" {
			t.Fatalf("registered as %q device %q", alice.UserID, alice.DeviceID)
		}
		r := alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		if r.Str("user_id") != "@alice:localhost" || r.Str("device_id") != alice.DeviceID {
			t.Fatalf("whoami = %s", r.Raw)
		}

		// Log in again by full user ID on a second device.
		phone := mxtest.Login(t, srv.URL, "@alice:localhost", "correct horse battery")
		if phone.DeviceID == alice.DeviceID || phone.Token == alice.Token {
			t.Fatal("second login reused the first device")
		}
		devs := phone.Must(200, "GET", "/_matrix/client/v3/devices", nil).Body["devices"].([]any)
		if len(devs) != 2 {
			t.Fatalf("devices = %v", devs)
		}

		// Profile.
		alice.Must(200, "PUT", "/_matrix/client/v3/profile/@alice:localhost/displayname", map[string]any{"displayname": "Alice Martin"})
		alice.Must(200, "PUT", "/_matrix/client/v3/profile/@alice:localhost/avatar_url", map[string]any{"avatar_url": "mxc://localhost/abc"})
		anon := mxtest.New(t, srv.URL)
		p := anon.Must(200, "GET", "/_matrix/client/v3/profile/@alice:localhost", nil)
		if p.Str("displayname") != "Alice Martin" || p.Str("avatar_url") != "mxc://localhost/abc" {
			t.Fatalf("profile = %s", p.Raw)
		}
		if got := anon.Must(200, "GET", "/_matrix/client/v3/profile/@alice:localhost/displayname", nil).Str("displayname"); got != "Alice Martin" {
			t.Fatalf("displayname = %q", got)
		}
		bob := mxtest.Register(t, srv.URL, "bob", "another password")
		bob.MustErr(403, "M_FORBIDDEN", "PUT", "/_matrix/client/v3/profile/@alice:localhost/displayname", map[string]any{"displayname": "pwned"})

		// Log out the first device: its token stops working, the other's does not.
		alice.Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
		alice.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
		phone.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
		// Log out everywhere.
		phone.Must(200, "POST", "/_matrix/client/v3/logout/all", nil)
		phone.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)

		// Wrong password, unknown user: the same answer.
		c := mxtest.New(t, srv.URL)
		wrong := c.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "nope"})
		unknown := c.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "nobody"}, "password": "nope"})
		if wrong.Str("error") != unknown.Str("error") {
			t.Fatalf("login errors tell users apart: %q vs %q", wrong.Str("error"), unknown.Str("error"))
		}
	})
}

func TestPasswordChangeAndDeactivate(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "first password")
	other := mxtest.Login(t, srv.URL, "alice", "first password")
	path := "/_matrix/client/v3/account/password"
	ch := alice.Must(401, "POST", path, map[string]any{"new_password": "second password"})
	if ch.Str("session") == "" {
		t.Fatalf("no UIA session: %s", ch.Raw)
	}
	auth := func(pw string) map[string]any {
		return map[string]any{"type": "m.login.password", "session": ch.Str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": pw}
	}
	bad := alice.Must(401, "POST", path, map[string]any{"new_password": "second password", "auth": auth("wrong")})
	if bad.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("wrong password in UIA: %s", bad.Raw)
	}
	alice.Must(200, "POST", path, map[string]any{"new_password": "second password", "auth": auth("first password")})
	alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
	other.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
	mxtest.Login(t, srv.URL, "alice", "second password")

	// Deleting a device needs the password too.
	third := mxtest.Login(t, srv.URL, "alice", "second password")
	del := alice.Must(401, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": []string{third.DeviceID}})
	alice.Must(200, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": []string{third.DeviceID},
		"auth": map[string]any{"type": "m.login.password", "session": del.Str("session"), "user": "alice", "password": "second password"}})
	third.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)

	friend := mxtest.Register(t, srv.URL, "friend", "password friend")
	room := friend.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	d := alice.Must(401, "POST", "/_matrix/client/v3/account/deactivate", map[string]any{})
	alice.Must(200, "POST", "/_matrix/client/v3/account/deactivate", map[string]any{
		"auth": map[string]any{"type": "m.login.password", "session": d.Str("session"), "user": "@alice:localhost", "password": "second password"}})
	alice.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
	jm := friend.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
	if len(jm.Body["joined"].(map[string]any)) != 1 {
		t.Fatalf("deactivated account still joined: %s", jm.Raw)
	}
	c := mxtest.New(t, srv.URL)
	c.MustErr(403, "M_USER_DEACTIVATED", "POST", "/_matrix/client/v3/login", map[string]any{
		"type": "m.login.password", "user": "alice", "password": "second password"})
	c.MustErr(400, "M_USER_IN_USE", "GET", "/_matrix/client/v3/register/available?username=alice", nil)
}

func TestRegistrationModes(t *testing.T) {
	db := backends(t)["sqlite"]
	t.Run("closed", func(t *testing.T) {
		srv := startServer(t, db(t), func(c *Config) { c.Registration.Mode = "closed" })
		mxtest.New(t, srv.URL).MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/register", map[string]any{"username": "a", "password": "password1"})
	})
	t.Run("token", func(t *testing.T) {
		srv := startServer(t, db(t), func(c *Config) { c.Registration.Mode = "token"; c.Registration.Token = "lecture-hall-42" })
		c := mxtest.New(t, srv.URL)
		first := c.Must(401, "POST", "/_matrix/client/v3/register", map[string]any{"username": "eve", "password": "password1"})
		flows := first.Body["flows"].([]any)
		if !strings.Contains(string(first.Raw), "m.login.registration_token") || len(flows) != 1 {
			t.Fatalf("flows = %s", first.Raw)
		}
		// Dummy auth is not enough.
		c.Must(401, "POST", "/_matrix/client/v3/register", map[string]any{"username": "eve", "password": "password1",
			"auth": map[string]any{"type": "m.login.dummy", "session": first.Str("session")}})
		bad := c.Must(401, "POST", "/_matrix/client/v3/register", map[string]any{"username": "eve", "password": "password1",
			"auth": map[string]any{"type": "m.login.registration_token", "token": "guess", "session": first.Str("session")}})
		if bad.Errcode() != "M_UNAUTHORIZED" {
			t.Fatalf("wrong token: %s", bad.Raw)
		}
		if v := c.Must(200, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=guess", nil); v.Body["valid"] != false {
			t.Fatalf("validity of a wrong token: %s", v.Raw)
		}
		c.Must(200, "POST", "/_matrix/client/v3/register", map[string]any{"username": "eve", "password": "password1",
			"auth": map[string]any{"type": "m.login.registration_token", "token": "lecture-hall-42", "session": first.Str("session")}})
	})
	t.Run("guest", func(t *testing.T) {
		srv := startServer(t, db(t))
		mxtest.New(t, srv.URL).MustErr(403, "M_GUEST_ACCESS_FORBIDDEN", "POST", "/_matrix/client/v3/register?kind=guest", map[string]any{})
	})
}

// TestBadInput: each malformed request gets its Matrix error, never a 500.
func TestBadInput(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password one")
	anon := mxtest.New(t, srv.URL)
	big := `{"displayname":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name, method, path string
		client             *mxtest.Client
		body               any
		status             int
		errcode            string
	}{
		{"not json", "POST", "/_matrix/client/v3/login", anon, "{not json", 400, "M_NOT_JSON"},
		{"empty body", "POST", "/_matrix/client/v3/login", anon, []byte{}, 400, "M_NOT_JSON"},
		{"json array", "POST", "/_matrix/client/v3/login", anon, "[1,2]", 400, "M_BAD_JSON"},
		{"wrong type", "POST", "/_matrix/client/v3/login", anon, `{"type":"m.login.password","password":12}`, 400, "M_BAD_JSON"},
		{"unknown login type", "POST", "/_matrix/client/v3/login", anon, `{"type":"m.login.magic"}`, 400, "M_UNKNOWN"},
		{"missing identifier", "POST", "/_matrix/client/v3/login", anon, `{"type":"m.login.password","password":"x"}`, 400, "M_MISSING_PARAM"},
		{"too large", "PUT", "/_matrix/client/v3/profile/@alice:localhost/displayname", alice, big, 413, "M_TOO_LARGE"},
		{"invalid username", "POST", "/_matrix/client/v3/register", anon, `{"username":"Bad Name!","password":"password1"}`, 400, "M_INVALID_USERNAME"},
		{"username in use", "POST", "/_matrix/client/v3/register", anon, `{"username":"alice","password":"password1"}`, 400, "M_USER_IN_USE"},
		{"weak password", "POST", "/_matrix/client/v3/register", anon, `{"username":"bob","password":"short"}`, 400, "M_WEAK_PASSWORD"},
		{"unknown endpoint", "GET", "/_matrix/client/v3/no/such/thing", anon, nil, 404, "M_UNRECOGNIZED"},
		{"wrong method", "DELETE", "/_matrix/client/v3/login", anon, nil, 405, "M_UNRECOGNIZED"},
		{"missing token", "GET", "/_matrix/client/v3/account/whoami", anon, nil, 401, "M_MISSING_TOKEN"},
		{"invalid user id", "GET", "/_matrix/client/v3/profile/not-a-user", anon, nil, 400, "M_INVALID_PARAM"},
		{"unknown profile", "GET", "/_matrix/client/v3/profile/@nobody:localhost", anon, nil, 404, "M_NOT_FOUND"},
		{"displayname not string", "PUT", "/_matrix/client/v3/profile/@alice:localhost/displayname", alice, `{"displayname":5}`, 400, "M_BAD_JSON"},
		{"avatar not mxc", "PUT", "/_matrix/client/v3/profile/@alice:localhost/avatar_url", alice, `{"avatar_url":"http://evil"}`, 400, "M_INVALID_PARAM"},
		{"unknown device", "GET", "/_matrix/client/v3/devices/NOPE", alice, nil, 404, "M_NOT_FOUND"},
		{"unknown uia stage", "POST", "/_matrix/client/v3/delete_devices", alice, `{"devices":[],"auth":{"type":"m.login.nonsense"}}`, 401, "M_UNRECOGNIZED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.MustErr(tc.status, tc.errcode, tc.method, tc.path, tc.body)
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		c := mxtest.New(t, srv.URL)
		c.Token = "salon_forged"
		r := c.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
		if r.Body["soft_logout"] != false {
			t.Fatalf("soft_logout missing: %s", r.Raw)
		}
	})
	t.Run("query token", func(t *testing.T) {
		anon.Must(200, "GET", "/_matrix/client/v3/account/whoami?access_token="+alice.Token, nil)
	})
	t.Run("cors preflight", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", srv.URL+"/_matrix/client/v3/login", nil)
		req.Header.Set("Origin", "https://app.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
		}
	})
}

func TestRateLimits(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t), func(c *Config) {
		c.RateLimits.LoginPerAccount.Burst = 3
		c.RateLimits.LoginPerAccount.PerSecond = 0.01
	})
	mxtest.Register(t, srv.URL, "alice", "password one")
	c := mxtest.New(t, srv.URL)
	guess := map[string]any{"type": "m.login.password", "user": "alice", "password": "guess"}
	for i := 0; i < 3; i++ {
		c.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", guess)
	}
	r := c.MustErr(429, "M_LIMIT_EXCEEDED", "POST", "/_matrix/client/v3/login", guess)
	if ms, _ := r.Body["retry_after_ms"].(float64); ms <= 0 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("no retry_after_ms / Retry-After: %s %v", r.Raw, r.Header)
	}
	// Another account from the same address is not held back.
	mxtest.Register(t, srv.URL, "bob", "password two")
	mxtest.Login(t, srv.URL, "bob", "password two")
}

func TestDiscovery(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	c := mxtest.New(t, srv.URL)
	v := c.Must(200, "GET", "/_matrix/client/versions", nil)
	if !strings.Contains(string(v.Raw), `"v1.12"`) {
		t.Fatalf("versions = %s", v.Raw)
	}
	wk := c.Must(200, "GET", "/.well-known/matrix/client", nil)
	if base := wk.Body["m.homeserver"].(map[string]any)["base_url"]; base != srv.URL {
		t.Fatalf("well-known base_url = %v, want %s", base, srv.URL)
	}
	alice := mxtest.Register(t, srv.URL, "alice", "password one")
	caps := alice.Must(200, "GET", "/_matrix/client/v3/capabilities", nil)
	if !strings.Contains(string(caps.Raw), `"m.room_versions"`) {
		t.Fatalf("capabilities = %s", caps.Raw)
	}
	h := c.Must(200, "GET", "/health", nil)
	if h.Str("status") != "ok" {
		t.Fatalf("health = %s", h.Raw)
	}
	m := mxtest.New(t, srv.MetricsURL).Must(200, "GET", "/metrics", nil)
	if !strings.Contains(string(m.Raw), "salon_http_requests_total") || !strings.Contains(string(m.Raw), "go_goroutines") {
		t.Fatal("metrics lack request counters or runtime metrics")
	}
}

func TestDevicesAndLoginToken(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password one")
	laptop := mxtest.Login(t, srv.URL, "alice", "password one")
	p := "/_matrix/client/v3/devices/" + laptop.DeviceID
	alice.Must(200, "PUT", p, map[string]any{"display_name": "Portable"})
	if got := alice.Must(200, "GET", p, nil).Str("display_name"); got != "Portable" {
		t.Fatalf("display_name = %q", got)
	}
	// Another user's device is not found, not "forbidden".
	bob := mxtest.Register(t, srv.URL, "bob", "password two")
	bob.MustErr(404, "M_NOT_FOUND", "GET", p, nil)
	bob.MustErr(404, "M_NOT_FOUND", "DELETE", p, map[string]any{})
	ch := alice.Must(401, "DELETE", p, map[string]any{})
	alice.Must(200, "DELETE", p, map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": ch.Str("session"), "user": "alice", "password": "password one"}})
	laptop.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami", nil)
	// A UIA session is bound to its request: reusing it for another one starts over.
	ch2 := alice.Must(401, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": []string{"X"}})
	r := alice.Do("POST", "/_matrix/client/v3/account/password", map[string]any{"new_password": "password three",
		"auth": map[string]any{"type": "m.login.dummy", "session": ch2.Str("session")}})
	if r.Status != 401 {
		t.Fatalf("UIA session reused across requests: %d %s", r.Status, r.Raw)
	}

	// m.login.token: single use.
	hs := srv // the token is issued by the auth service, as SSO will do
	_ = hs
	flows := mxtest.New(t, srv.URL).Must(200, "GET", "/_matrix/client/v3/login", nil)
	if !strings.Contains(string(flows.Raw), "m.login.token") {
		t.Fatalf("flows = %s", flows.Raw)
	}
	c := mxtest.New(t, srv.URL)
	c.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/v3/login", map[string]any{"type": "m.login.token", "token": "salon_lt_forged"})
}
