package main

import (
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/turn/credential"
)

func TestTurnServerEndpoint(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		srv := startServer(t, backends(t)["sqlite"](t))
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		r := alice.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
		uris, _ := r.Body["uris"].([]any)
		if len(uris) != 2 || !strings.HasPrefix(uris[0].(string), "turn:127.0.0.1:") || !strings.HasSuffix(uris[1].(string), "?transport=tcp") {
			t.Fatalf("uris = %s", r.Raw)
		}
		user := r.Str("username")
		exp, who, ok := strings.Cut(user, ":")
		if !ok || who != alice.UserID+"/"+alice.DeviceID || exp <= "" || r.Body["ttl"].(float64) != 3600 {
			t.Fatalf("username %q ttl %v", user, r.Body["ttl"])
		}
		if srv.srv.turn == nil || r.Str("password") == "" {
			t.Fatal("no embedded relay")
		}
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/voip/turnServer", nil)
	})
	t.Run("external", func(t *testing.T) {
		srv := startServer(t, backends(t)["sqlite"](t), func(c *Config) {
			c.TURN.Enabled = false
			c.TURN.External.URIs = []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"}
			c.TURN.External.SharedSecret = "coturn-static-auth-secret"
		})
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		r := alice.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
		if len(r.Body["uris"].([]any)) != 2 || srv.srv.turn != nil {
			t.Fatalf("external answer = %s", r.Raw)
		}
		// coturn would accept exactly this password.
		user, pw, err := credential.Check([]byte("coturn-static-auth-secret"), r.Str("username"), time.Now())
		if err != nil || user != alice.UserID+"/"+alice.DeviceID || pw != r.Str("password") {
			t.Fatalf("credential check: %v %q", err, user)
		}
	})
	t.Run("none", func(t *testing.T) {
		srv := startServer(t, backends(t)["sqlite"](t), func(c *Config) { c.TURN.Enabled = false })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		if r := alice.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil); string(r.Raw) != "{}" {
			t.Fatalf("no relay answer = %s", r.Raw)
		}
	})
}
