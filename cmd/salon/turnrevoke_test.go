package main

import (
	"net"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v2"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// turnCredentials asks /voip/turnServer and returns the username, password
// and the embedded relay's UDP address.
func turnCredentials(t *testing.T, c *mxtest.Client) (username, password, udpAddr string) {
	t.Helper()
	r := c.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
	for _, u := range r.Body["uris"].([]any) {
		if rest, ok := strings.CutPrefix(u.(string), "turn:"); ok && strings.HasSuffix(rest, "?transport=udp") {
			udpAddr = strings.TrimSuffix(rest, "?transport=udp")
		}
	}
	if udpAddr == "" {
		t.Fatalf("no UDP TURN URI in %s", r.Raw)
	}
	return r.Str("username"), r.Str("password"), udpAddr
}

// turnAllocate asks the relay for an allocation over UDP with pion/turn's
// client; the relayed socket on success.
func turnAllocate(t *testing.T, server, username, password string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: server, Conn: conn, Username: username, Password: password,
		Realm: "localhost", RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c.Allocate()
}

// TestTURNCredentialsEndWithTheLogin: /voip/turnServer's credential names
// the device that asked for it and lives an hour; the embedded relay
// refuses it (401) as soon as that device logs out or the account is
// deactivated, while the user's other devices keep theirs. Real HTTP and
// UDP, both backends.
func TestTURNCredentialsEndWithTheLogin(t *testing.T) {
	forEachBackend(t, testTURNCredentialsEndWithTheLogin)
}

func testTURNCredentialsEndWithTheLogin(t *testing.T, db string) {
	srv := startServer(t, db)
	phone := mxtest.Register(t, srv.URL, "alice", "password alice")
	laptop := mxtest.Login(t, srv.URL, "alice", "password alice")

	r := phone.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
	if !strings.HasSuffix(r.Str("username"), ":"+phone.UserID+"/"+phone.DeviceID) || r.Body["ttl"].(float64) != 3600 {
		t.Fatalf("credential %q ttl %v, want EXPIRY:%s/%s and an hour", r.Str("username"), r.Body["ttl"], phone.UserID, phone.DeviceID)
	}
	pu, pp, relay := turnCredentials(t, phone)
	lu, lp, _ := turnCredentials(t, laptop)
	if _, err := turnAllocate(t, relay, pu, pp); err != nil {
		t.Fatalf("Allocate with the phone's credential: %v", err)
	}

	phone.Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
	if _, err := turnAllocate(t, relay, pu, pp); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Allocate with a logged-out device's credential: %v, want 401", err)
	}
	if _, err := turnAllocate(t, relay, lu, lp); err != nil {
		t.Fatalf("Allocate with the other device's credential: %v", err)
	}

	// Deactivation ends every credential of the account.
	d := laptop.Must(401, "POST", "/_matrix/client/v3/account/deactivate", map[string]any{})
	laptop.Must(200, "POST", "/_matrix/client/v3/account/deactivate", map[string]any{
		"auth": map[string]any{"type": "m.login.password", "session": d.Str("session"), "user": laptop.UserID, "password": "password alice"}})
	if _, err := turnAllocate(t, relay, lu, lp); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Allocate with a deactivated account's credential: %v, want 401", err)
	}
}
