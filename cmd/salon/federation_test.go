package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestFederationTwoSalons: two Salons on loopback with their own names
// and a test CA find each other's keys, and their users see each other:
// a profile across servers, /keys/query and /keys/claim of a remote
// user's device, and a to-device message from a user on A arriving in
// the /sync of a device on B.
func TestFederationTwoSalons(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := fedNodes(t, db, "a.test", "b.test")
		a, b := n[0], n[1]
		sa, sb := a.start(t), b.start(t)

		// The federation listener answers /version and the keys, signed.
		fb := newFedHTTP(t, b.ca, b)
		if st, body, _ := fb.do("GET", "/_matrix/federation/v1/version", "", nil); st != 200 || body["server"].(map[string]any)["name"] != "Salon" {
			t.Fatalf("version: %d %v", st, body)
		}
		st, keys, raw := fb.do("GET", "/_matrix/key/v2/server", "", nil)
		if st != 200 || keys["server_name"] != "b.test" {
			t.Fatalf("key/v2/server: %d %s", st, raw)
		}
		vk := keys["verify_keys"].(map[string]any)
		for id, k := range vk {
			pub, _ := events.DecodeBase64(k.(map[string]any)["key"].(string))
			if err := events.VerifyJSON(raw, "b.test", id, pub); err != nil {
				t.Fatalf("key answer not self-signed: %v", err)
			}
		}

		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, sb.URL, "bob", "password bob")
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", alice.UserID), map[string]any{"displayname": "Alice of A"})

		// Profiles across servers.
		p := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/profile/%s", alice.UserID), nil)
		if p.Str("displayname") != "Alice of A" {
			t.Fatalf("remote profile: %s", p.Raw)
		}
		p = bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", alice.UserID), nil)
		if p.Str("displayname") != "Alice of A" {
			t.Fatalf("remote profile field: %s", p.Raw)
		}
		bob.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/profile/%s", "@nobody:a.test"), nil)

		// A room alias of A resolves on B.
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"room_alias_name": "lobby"}).Str("room_id")
		d := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#lobby:a.test"), nil)
		if d.Str("room_id") != room || fmt.Sprint(d.Body["servers"]) != "[a.test]" {
			t.Fatalf("remote alias: %s", d.Raw)
		}
		bob.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#nothing:a.test"), nil)

		// Bob's device keys and one-time keys, queried and claimed from A.
		bd := newE2EDevice(t, bob)
		bob.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": bd.deviceKeys(t), "one_time_keys": bd.otks(t, "B", 2)})
		q := alice.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{bob.UserID: []string{}}})
		var qr struct {
			DeviceKeys map[string]map[string]struct {
				UserID string            `json:"user_id"`
				Keys   map[string]string `json:"keys"`
			} `json:"device_keys"`
			Failures map[string]any `json:"failures"`
		}
		if err := json.Unmarshal(q.Raw, &qr); err != nil {
			t.Fatal(err)
		}
		got := qr.DeviceKeys[bob.UserID][bob.DeviceID]
		if got.UserID != bob.UserID || got.Keys["ed25519:"+bob.DeviceID] != bd.pub || len(qr.Failures) != 0 {
			t.Fatalf("remote /keys/query: %s", q.Raw)
		}
		// Device names do not leave their server.
		if strings.Contains(string(q.Raw), "device_display_name") {
			t.Fatalf("a device name crossed servers: %s", q.Raw)
		}
		c := alice.Must(200, "POST", "/_matrix/client/v3/keys/claim", map[string]any{"one_time_keys": map[string]any{bob.UserID: map[string]string{bob.DeviceID: "signed_curve25519"}}})
		var cr struct {
			OTK map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
		}
		_ = json.Unmarshal(c.Raw, &cr)
		if len(cr.OTK[bob.UserID][bob.DeviceID]) != 1 {
			t.Fatalf("remote /keys/claim: %s", c.Raw)
		}
		for id := range cr.OTK[bob.UserID][bob.DeviceID] {
			if !strings.HasPrefix(id, "signed_curve25519:B") {
				t.Fatalf("claimed key %s", id)
			}
		}
		// The federation /user/devices lists bob's device with its keys.
		devs := fetchUserDevices(t, sa, bob.UserID)
		if len(devs.Devices) != 1 || devs.Devices[0].DeviceID != bob.DeviceID || devs.Devices[0].Keys == nil {
			t.Fatalf("/user/devices: %+v", devs)
		}

		// A to-device message from alice on A reaches bob's device on B.
		tok := syncKeys(t, bob, "", 0).NextBatch
		sendToDevice(alice, 200, "", "m.room_key_request", "fed1", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 1}}})
		var s keysSync
		waitFor(t, "the to-device message on B", func() bool {
			s = syncKeys(t, bob, tok, 2*time.Second)
			return len(s.ToDevice.Events) > 0
		})
		if e := s.ToDevice.Events[0]; e.Sender != alice.UserID || e.Type != "m.room_key_request" || e.Content["seq"] != float64(1) {
			t.Fatalf("to-device on B: %+v", s.ToDevice.Events)
		}
		// The same request again (a client retry) is not delivered twice.
		sendToDevice(alice, 200, "", "m.room_key_request", "fed1", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 1}}})
		sendToDevice(alice, 200, "", "m.room_key_request", "fed2", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 2}}})
		waitFor(t, "the second to-device message on B", func() bool {
			s = syncKeys(t, bob, s.NextBatch, 2*time.Second)
			return len(s.ToDevice.Events) > 0
		})
		if n := len(s.ToDevice.Events); n != 1 || s.ToDevice.Events[0].Content["seq"] != float64(2) {
			t.Fatalf("after a retried request: %+v", s.ToDevice.Events)
		}

		// B acts as a notary for A's keys: A's answer with B's signature.
		st, nq, raw := fb.do("POST", "/_matrix/key/v2/query", "", []byte(`{"server_keys":{"a.test":{}}}`))
		list, _ := nq["server_keys"].([]any)
		if st != 200 || len(list) != 1 {
			t.Fatalf("notary: %d %s", st, raw)
		}
		one, _ := json.Marshal(list[0])
		if !strings.Contains(string(one), `"a.test"`) || !strings.Contains(string(one), `"b.test"`) {
			t.Fatalf("notary answer lacks a signature: %s", one)
		}

		// Metrics: transactions went out; with B down, what is sent to it
		// waits in the queue, counted per destination, and the failures
		// are counted.
		m := scrape(t, sa)
		if !strings.Contains(m, `salon_federation_transactions_total{direction="out",result="ok"}`) ||
			!strings.Contains(m, `salon_federation_transaction_seconds_count{result="ok"}`) {
			t.Fatalf("metrics lack outbound transactions:\n%s", grepLines(m, "salon_federation"))
		}
		sb.Stop()
		sendToDevice(alice, 200, "", "m.test", "fed3", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 3}}})
		waitFor(t, "queue depth and failures in the metrics", func() bool {
			m = scrape(t, sa)
			return strings.Contains(m, `salon_federation_queue_depth{destination="b.test"} 1`) &&
				strings.Contains(m, `salon_federation_transactions_total{direction="out",result="error"}`)
		})
	})
}

// backendOf names the backend of a database string.
func backendOf(db string) string {
	if strings.HasPrefix(db, "sqlite:") {
		return "sqlite"
	}
	return "postgres"
}

type userDevicesAnswer struct {
	UserID  string `json:"user_id"`
	Devices []struct {
		DeviceID string          `json:"device_id"`
		Keys     json.RawMessage `json:"keys"`
	} `json:"devices"`
}

// fetchUserDevices asks, through srv's own federation client, the user's
// server for /user/devices.
func fetchUserDevices(t *testing.T, srv *testServer, userID string) userDevicesAnswer {
	t.Helper()
	var out userDevicesAnswer
	_, server, _ := strings.Cut(userID, ":")
	if err := srv.srv.hs.Federation.Client.Get(t.Context(), server, mxtest.Path("/_matrix/federation/v1/user/devices/%s", userID), nil, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// scrape reads the server's /metrics.
func scrape(t *testing.T, srv *testServer) string {
	t.Helper()
	r := mxtest.New(t, srv.MetricsURL).Do("GET", "/metrics", nil)
	return string(r.Raw)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFederationOnClientListener: without federation.listen the
// Server-Server API is on the client listener (TLS at the proxy); with
// the default localhost name federation is off and its endpoints are
// unknown, while the server's key stays published.
func TestFederationOnClientListener(t *testing.T) {
	db := backends(t)["sqlite"](t)
	on := startServer(t, db, func(c *Config) { c.ServerName = "uni.test" })
	anon := mxtest.New(t, on.URL)
	if v := anon.Must(200, "GET", "/_matrix/federation/v1/version", nil); v.Body["server"] == nil {
		t.Fatalf("version: %s", v.Raw)
	}
	anon.MustErr(401, "M_UNAUTHORIZED", "GET", "/_matrix/federation/v1/query/profile?user_id=@a:uni.test", nil)

	off := startServer(t, backends(t)["sqlite"](t))
	anon = mxtest.New(t, off.URL)
	anon.MustErr(404, "M_UNRECOGNIZED", "GET", "/_matrix/federation/v1/version", nil)
	if k := anon.Must(200, "GET", "/_matrix/key/v2/server", nil); k.Str("server_name") != "localhost" {
		t.Fatalf("key: %s", k.Raw)
	}
	// Forcing federation on for localhost is a configuration error.
	cfg := Defaults()
	yes := true
	cfg.Federation.Enabled = &yes
	cfg.Federation.Listen = cfg.Listen
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "federation.enabled") || !strings.Contains(err.Error(), "federation.listen") {
		t.Fatalf("Validate: %v", err)
	}
}

// TestFederationRotateKey: `salon federation rotate-key` replaces the
// signing key; after a restart /_matrix/key/v2/server publishes the new
// key and the old one in old_verify_keys, both in the one signed answer.
func TestFederationRotateKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		srv := startServer(t, db, func(c *Config) { c.DataDir = dir; c.ServerName = "uni.test" })
		first := mxtest.New(t, srv.URL).Must(200, "GET", "/_matrix/key/v2/server", nil)
		var oldID string
		for id := range first.Body["verify_keys"].(map[string]any) {
			oldID = id
		}
		srv.Stop()
		code, out, errOut := runCLI(t, "federation", "rotate-key", "--data-dir", dir)
		if code != 0 || !strings.Contains(out, oldID) {
			t.Fatalf("rotate-key: %d %q %q", code, out, errOut)
		}
		srv = startServer(t, db, func(c *Config) { c.DataDir = dir; c.ServerName = "uni.test" })
		r := mxtest.New(t, srv.URL).Must(200, "GET", "/_matrix/key/v2/server", nil)
		vk := r.Body["verify_keys"].(map[string]any)
		old, _ := r.Body["old_verify_keys"].(map[string]any)[oldID].(map[string]any)
		if _, still := vk[oldID]; still || len(vk) != 1 || old == nil || old["expired_ts"] == nil {
			t.Fatalf("after rotation: %s", r.Raw)
		}
		for id, k := range vk {
			pub, _ := events.DecodeBase64(k.(map[string]any)["key"].(string))
			if err := events.VerifyJSON(r.Raw, "uni.test", id, pub); err != nil || !strings.Contains(out, id) {
				t.Fatalf("new key %s: %v (%q)", id, err, out)
			}
		}
	})
}
