package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

const (
	testServer = "salon.test"
	testSFUURL = "wss://salon.test/livekit/sfu"
	testRoom   = "!call:salon.test"
	aliceToken = "openid-alice"
	bobToken   = "openid-bob"
	alice      = "@alice:salon.test"
	bob        = "@bob:salon.test"
)

// fakeAuthority is a homeserver in a map: OpenID tokens to users, and
// per-user, per-room call permissions. Unknown tokens are forged ones.
type fakeAuthority struct {
	mu       sync.Mutex
	tokens   map[string]string // access token → user ID
	expired  map[string]bool
	perms    map[[2]string]CallPermissions // {user, room}
	failWith error                         // returned by both methods when set
	calls    int
}

func newFakeAuthority() *fakeAuthority {
	return &fakeAuthority{
		tokens:  map[string]string{aliceToken: alice, bobToken: bob},
		expired: map[string]bool{},
		perms:   map[[2]string]CallPermissions{},
	}
}

func (a *fakeAuthority) OpenIDUser(_ context.Context, token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.failWith != nil {
		return "", a.failWith
	}
	user, ok := a.tokens[token]
	if !ok {
		return "", fmt.Errorf("token not found: %w", ErrBadOpenIDToken)
	}
	if a.expired[token] {
		return "", fmt.Errorf("token expired: %w", ErrBadOpenIDToken)
	}
	return user, nil
}

func (a *fakeAuthority) CallPermissions(_ context.Context, user, room string) (CallPermissions, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.failWith != nil {
		return CallPermissions{}, a.failWith
	}
	return a.perms[[2]string{user, room}], nil
}

func (a *fakeAuthority) JoinedRooms(_ context.Context, user string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.failWith != nil {
		return nil, a.failWith
	}
	var rooms []string
	for k, p := range a.perms {
		if k[0] == user && p.Joined {
			rooms = append(rooms, k[1])
		}
	}
	return rooms, nil
}

func (a *fakeAuthority) set(user, room string, p CallPermissions) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.perms[[2]string{user, room}] = p
}

// member is everything a joined member of a room where everybody may do
// everything gets.
var member = CallPermissions{Joined: true, PublishAudio: true, PublishVideo: true, PublishScreen: true, PublishData: true}

// testEnv is a JWT service behind a real HTTP server on loopback.
type testEnv struct {
	t      *testing.T
	auth   *fakeAuthority
	keys   *KeySet
	keyDir string
	reg    *prometheus.Registry
	svc    *JWTService
	srv    *httptest.Server
	client *http.Client
	logs   *bytes.Buffer
}

// newTestEnv starts the service; cfg's zero value is the embedded SFU.
// It is mounted under /livekit/jwt as cmd/salon mounts it.
func newTestEnv(t *testing.T, cfg JWTConfig) *testEnv {
	t.Helper()
	e := &testEnv{t: t, auth: newFakeAuthority(), reg: prometheus.NewRegistry(), keyDir: t.TempDir(), logs: &bytes.Buffer{}}
	var err error
	e.keys, err = LoadOrCreateKeys(filepath.Join(e.keyDir, "livekit_keys"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = NewJWTService(JWTParams{
		Config:     cfg,
		Keys:       e.keys,
		Authority:  e.auth,
		SFUURL:     func() string { return testSFUURL },
		ServerName: testServer,
		Logger:     slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/livekit/jwt/", http.StripPrefix("/livekit/jwt", e.svc.Handler()))
	e.srv = httptest.NewServer(mux)
	e.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		e.srv.Close()
	})
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// post sends body (a string or a value to marshal) to path under the
// mount and returns the status and the decoded JSON answer.
func (e *testEnv) post(path string, body any) (int, map[string]any) {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	resp, err := e.client.Post(e.srv.URL+"/livekit/jwt"+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		e.t.Errorf("POST %s: Access-Control-Allow-Origin = %q, want *", path, got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		e.t.Errorf("POST %s: Content-Type = %q", path, got)
	}
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("POST %s: %d answer is not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// issued and refused read the service's counters through Prometheus.
func (e *testEnv) issued(ep string) float64 {
	return counterValue(e.t, e.reg, "salon_jwt_tokens_issued_total", "endpoint", ep)
}

func (e *testEnv) refused(reason string) float64 {
	return counterValue(e.t, e.reg, "salon_jwt_refusals_total", "reason", reason)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// getTokenBody is a /get_token request as Element Call sends it.
func getTokenBody(token, claimedUser, room string) map[string]any {
	return map[string]any{
		"room_id": room,
		"slot_id": LegacySlotID,
		"openid_token": map[string]any{
			"access_token": token, "token_type": "Bearer",
			"matrix_server_name": testServer, "expires_in": 3600,
		},
		"member": map[string]any{
			"id": "member-1", "claimed_user_id": claimedUser, "claimed_device_id": "DEVICE1",
		},
	}
}

// sfuGetBody is a legacy /sfu/get request.
func sfuGetBody(token, room, device string) map[string]any {
	return map[string]any{
		"room": room,
		"openid_token": map[string]any{
			"access_token": token, "token_type": "Bearer",
			"matrix_server_name": testServer, "expires_in": 3600,
		},
		"device_id": device,
	}
}

// checkLeaks fails t if goroutines started during it outlive it. Call it
// first: it checks after every cleanup registered later (servers, idle
// connections) has run. Goroutines that were running before are ignored,
// so other tests of the package do not count.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
