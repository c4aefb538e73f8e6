package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// accessLines are the access log's lines in JSON log output.
func accessLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if l == "" || json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if m["msg"] == "request" && m["component"] == "http" {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestAccessLog: every request gets an info line with method, route
// template, status, duration and user, and no line ever holds an access
// token, whether it came in the Authorization header or the query.
func TestAccessLog(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := startServerLog(t, "sqlite:salon.db", log)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
	alice.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil)
	// The deprecated query parameter, on a known and an unknown path.
	anon := mxtest.New(t, srv.URL)
	anon.Must(200, "GET", "/_matrix/client/v3/account/whoami?access_token="+url.QueryEscape(alice.Token), nil)
	anon.MustErr(404, "M_UNRECOGNIZED", "GET", "/_matrix/client/v3/nothing/here?access_token="+url.QueryEscape(alice.Token), nil)
	anon.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/client/v3/account/whoami?access_token=wrong-secret-token", nil)
	alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=a.txt", []byte("hi"))
	// The JWT service and the SFU's signalling (/livekit/) log too, with
	// their path but never the SFU's access_token in the query.
	for _, probe := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/livekit/jwt/get_token", 400},
		{"GET", "/livekit/sfu/rtc/validate?access_token=secret-sfu-token", 401},
		{"GET", "/livekit/jwt/nothing", 404},
	} {
		req, _ := http.NewRequest(probe.method, srv.URL+probe.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != probe.status {
			t.Errorf("%s %s: %d, want %d", probe.method, probe.path, res.StatusCode, probe.status)
		}
	}

	logged := out.String()
	for _, secret := range []string{alice.Token, "wrong-secret-token", "access_token", "password alice", room, "secret-sfu-token"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logged)
		}
	}
	want := []struct {
		method, route string
		status        float64
		user          string
	}{
		{"POST", "/_matrix/client/v3/createRoom", 200, alice.UserID},
		{"GET", "/_matrix/client/v3/sync", 200, alice.UserID},
		{"GET", "/_matrix/client/v3/account/whoami", 200, alice.UserID},
		{"GET", "unknown", 404, ""},
		{"GET", "/_matrix/client/v3/account/whoami", 401, ""},
		{"POST", "/_matrix/media/v3/upload", 200, alice.UserID},
		{"POST", "/livekit/jwt/get_token", 400, ""},
		{"GET", "/livekit/sfu/rtc/validate", 401, ""},
		{"GET", "/livekit/jwt/nothing", 404, ""},
	}
	lines := accessLines(t, logged)
	for _, w := range want {
		found := false
		for _, l := range lines {
			user, _ := l["user"].(string)
			if l["method"] == w.method && l["route"] == w.route && l["status"] == w.status && user == w.user && l["level"] == "INFO" {
				if _, ok := l["duration"].(float64); !ok {
					t.Errorf("line without a duration: %v", l)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("no access line %+v in:\n%s", w, logged)
		}
	}
}

// TestAccessLogOff: http.access_log: off writes no request lines.
func TestAccessLogOff(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := startServerLog(t, "sqlite:salon.db", log, func(c *Config) { c.HTTP.AccessLog = "off" })
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	alice.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
	if lines := accessLines(t, out.String()); len(lines) > 0 {
		t.Fatalf("access lines with access_log off: %v", lines)
	}
}
