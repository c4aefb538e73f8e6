package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/salonhq/salon/internal/redact"
)

// verifyJWT checks a token the way an SFU does, with livekit/protocol's
// verifier and the secret the key provider gives for its key.
func verifyJWT(t *testing.T, token string, kp auth.KeyProvider) (*jwt.RegisteredClaims, *auth.ClaimGrants, string) {
	t.Helper()
	v, err := auth.ParseAPIToken(token)
	if err != nil {
		t.Fatalf("ParseAPIToken: %v", err)
	}
	secret := kp.GetSecret(v.APIKey())
	if secret == "" {
		t.Fatalf("no secret for key %q", v.APIKey())
	}
	claims, grants, err := v.Verify(secret)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return claims, grants, v.APIKey()
}

func TestGetTokenMember(t *testing.T) {
	checkLeaks(t)
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, member)

	before := time.Now().Truncate(time.Second)
	status, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	if body["url"] != testSFUURL {
		t.Errorf("url = %v, want %s", body["url"], testSFUURL)
	}
	claims, grants, key := verifyJWT(t, body["jwt"].(string), e.keys)

	if cur, _ := e.keys.Current(); key != cur {
		t.Errorf("signed with key %q, want the current key %q", key, cur)
	}
	wantIdentity := sha256JSONArray(alice, "DEVICE1", "member-1")
	wantRoom := sha256JSONArray(testRoom, "m.call#ROOM")
	if claims.Subject != wantIdentity || grants.Identity != wantIdentity {
		t.Errorf("identity: sub %q, grants %q; want %q", claims.Subject, grants.Identity, wantIdentity)
	}
	if grants.Name != alice {
		t.Errorf("name = %q, want %q", grants.Name, alice)
	}
	if ttl := JWTDefaults().TokenTTL; ttl != 10*time.Minute {
		t.Errorf("default token lifetime %v, want 10 minutes", ttl)
	}
	if exp := claims.ExpiresAt.Time; exp.Before(before.Add(10*time.Minute)) || exp.After(time.Now().Add(10*time.Minute+time.Second)) {
		t.Errorf("exp = %v, want 10 minutes from now", exp)
	}
	v := grants.Video
	if v == nil {
		t.Fatal("no video grant")
	}
	if !v.RoomJoin || v.Room != wantRoom {
		t.Errorf("roomJoin %v room %q; want true %q", v.RoomJoin, v.Room, wantRoom)
	}
	if v.RoomCreate || v.RoomAdmin || v.RoomList || v.Hidden || v.Recorder {
		t.Errorf("a plain member got more: %+v", v)
	}
	if !v.GetCanSubscribe() || !v.GetCanPublish() || !v.GetCanPublishData() || !v.GetCanUpdateOwnMetadata() {
		t.Errorf("subscribe %v publish %v data %v metadata %v; want all true",
			v.GetCanSubscribe(), v.GetCanPublish(), v.GetCanPublishData(), v.GetCanUpdateOwnMetadata())
	}
	for _, src := range []livekit.TrackSource{livekit.TrackSource_MICROPHONE, livekit.TrackSource_CAMERA,
		livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO} {
		if !v.GetCanPublishSource(src) {
			t.Errorf("may not publish %v", src)
		}
	}
	if got := e.issued("get_token"); got != 1 {
		t.Errorf("issued{get_token} = %v, want 1", got)
	}
	if strings.Contains(e.logs.String(), aliceToken) || strings.Contains(e.logs.String(), body["jwt"].(string)) {
		t.Error("a token reached the log")
	}
}

func TestSFUGetLegacy(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, member)
	status, body := e.post("/sfu/get", sfuGetBody(aliceToken, testRoom, "DEVICE1"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	if body["url"] != testSFUURL {
		t.Errorf("url = %v", body["url"])
	}
	claims, grants, _ := verifyJWT(t, body["jwt"].(string), e.keys)
	if want := alice + ":DEVICE1"; claims.Subject != want {
		t.Errorf("identity = %q, want %q", claims.Subject, want)
	}
	// The legacy request implies the room's one call, so legacy and
	// current clients meet in one LiveKit room.
	if want := sha256JSONArray(testRoom, "m.call#ROOM"); grants.Video.Room != want {
		t.Errorf("room = %q, want %q", grants.Video.Room, want)
	}
	if e.issued("sfu_get") != 1 || e.issued("get_token") != 0 {
		t.Error("issued counters wrong")
	}
}

// A room where only moderators may publish video: a member's grant says
// microphone only; a moderator's says everything, and room admin.
func TestModeratorsOnlyVideo(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, CallPermissions{Joined: true, PublishAudio: true, PublishData: true})
	e.auth.set(bob, testRoom, CallPermissions{Joined: true, PublishAudio: true, PublishVideo: true, PublishScreen: true, PublishData: true, Moderate: true})

	_, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	_, g, _ := verifyJWT(t, body["jwt"].(string), e.keys)
	if got := g.Video.GetCanPublishSources(); !slices.Equal(got, []livekit.TrackSource{livekit.TrackSource_MICROPHONE}) {
		t.Errorf("member's canPublishSources = %v, want [MICROPHONE]", got)
	}
	if g.Video.GetCanPublishSource(livekit.TrackSource_CAMERA) || g.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) {
		t.Error("member may publish camera or screen share")
	}
	if !g.Video.GetCanPublish() || !g.Video.GetCanSubscribe() || g.Video.RoomAdmin {
		t.Errorf("member: publish %v subscribe %v admin %v", g.Video.GetCanPublish(), g.Video.GetCanSubscribe(), g.Video.RoomAdmin)
	}

	_, body = e.post("/get_token", getTokenBody(bobToken, bob, testRoom))
	_, g, _ = verifyJWT(t, body["jwt"].(string), e.keys)
	if !g.Video.GetCanPublishSource(livekit.TrackSource_CAMERA) || !g.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE_AUDIO) {
		t.Errorf("moderator's canPublishSources = %v", g.Video.CanPublishSources)
	}
	if !g.Video.RoomAdmin {
		t.Error("moderator is not room admin")
	}
}

func TestVideoGrant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		perms   CallPermissions
		publish bool
		sources []string
		data    bool
		admin   bool
	}{
		{"listener", CallPermissions{Joined: true}, false, nil, false, false},
		{"data only", CallPermissions{Joined: true, PublishData: true}, false, nil, true, false},
		{"audio", CallPermissions{Joined: true, PublishAudio: true}, true, []string{"microphone"}, false, false},
		{"screen", CallPermissions{Joined: true, PublishScreen: true}, true, []string{"screen_share", "screen_share_audio"}, false, false},
		{"everything", CallPermissions{Joined: true, PublishAudio: true, PublishVideo: true, PublishScreen: true, PublishData: true, Moderate: true},
			true, []string{"microphone", "camera", "screen_share", "screen_share_audio"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := videoGrant("R", tc.perms)
			if !g.RoomJoin || g.Room != "R" || !g.GetCanSubscribe() || !g.GetCanUpdateOwnMetadata() {
				t.Errorf("base grant wrong: %+v", g)
			}
			if g.GetCanPublish() != tc.publish || !slices.Equal(g.CanPublishSources, tc.sources) ||
				g.GetCanPublishData() != tc.data || g.RoomAdmin != tc.admin {
				t.Errorf("publish %v sources %v data %v admin %v; want %v %v %v %v",
					g.GetCanPublish(), g.CanPublishSources, g.GetCanPublishData(), g.RoomAdmin,
					tc.publish, tc.sources, tc.data, tc.admin)
			}
		})
	}
}

// Every refusal: the status and errcode lk-jwt-service would give (or
// MSC4195 where lk-jwt-service has no such check), no token, one refusal
// counted, no token counted.
func TestRefusals(t *testing.T) {
	checkLeaks(t)
	withServer := func(server string) map[string]any {
		b := getTokenBody(aliceToken, alice, testRoom)
		b["openid_token"].(map[string]any)["matrix_server_name"] = server
		return b
	}
	without := func(path ...string) map[string]any {
		b := getTokenBody(aliceToken, alice, testRoom)
		m := b
		for _, p := range path[:len(path)-1] {
			m = m[p].(map[string]any)
		}
		delete(m, path[len(path)-1])
		return b
	}
	with := func(k string, v any) map[string]any {
		b := getTokenBody(aliceToken, alice, testRoom)
		b[k] = v
		return b
	}
	delegation := getTokenBody(aliceToken, alice, testRoom)
	delegation["delay_id"], delegation["delay_timeout"], delegation["delay_cs_api_url"] = "d1", 1000, "https://salon.test"

	for _, tc := range []struct {
		name    string
		path    string
		body    any
		setup   func(*fakeAuthority)
		status  int
		errcode string
		reason  string
	}{
		{"non-member", "/get_token", getTokenBody(bobToken, bob, testRoom), nil, 403, "M_FORBIDDEN", "not_joined"},
		{"invited, not joined", "/get_token", getTokenBody(bobToken, bob, testRoom),
			func(a *fakeAuthority) { a.set(bob, testRoom, CallPermissions{Joined: false, PublishAudio: true}) }, 403, "M_FORBIDDEN", "not_joined"},
		{"unknown room", "/get_token", getTokenBody(aliceToken, alice, "!nowhere:salon.test"), nil, 403, "M_FORBIDDEN", "not_joined"},
		{"non-member legacy", "/sfu/get", sfuGetBody(bobToken, testRoom, "D"), nil, 403, "M_FORBIDDEN", "not_joined"},
		{"forged OpenID token", "/get_token", getTokenBody("forged", alice, testRoom), nil, 401, "M_UNAUTHORIZED", "bad_openid_token"},
		{"forged OpenID token legacy", "/sfu/get", sfuGetBody("forged", testRoom, "D"), nil, 401, "M_UNAUTHORIZED", "bad_openid_token"},
		{"expired OpenID token", "/get_token", getTokenBody(aliceToken, alice, testRoom),
			func(a *fakeAuthority) { a.expired[aliceToken] = true }, 401, "M_UNAUTHORIZED", "bad_openid_token"},
		{"other server's token", "/get_token", withServer("evil.example"), nil, 403, "M_FORBIDDEN", "other_server"},
		{"claimed user is not the token's", "/get_token", getTokenBody(bobToken, alice, testRoom), nil, 401, "M_UNAUTHORIZED", "wrong_user"},
		{"malformed JSON", "/get_token", `{"room_id": `, nil, 400, "M_NOT_JSON", "bad_request"},
		{"not an object", "/get_token", `[]`, nil, 400, "M_NOT_JSON", "bad_request"},
		{"two objects", "/get_token", `{} {}`, nil, 400, "M_NOT_JSON", "bad_request"},
		{"unknown field", "/get_token", with("room", testRoom), nil, 400, "M_NOT_JSON", "bad_request"},
		{"wrong type", "/get_token", with("slot_id", 7), nil, 400, "M_NOT_JSON", "bad_request"},
		{"too large", "/get_token", with("slot_id", strings.Repeat("x", maxRequestBytes)), nil, 413, "M_TOO_LARGE", "bad_request"},
		{"no room_id", "/get_token", without("room_id"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no slot_id", "/get_token", without("slot_id"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no member", "/get_token", without("member"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no member.id", "/get_token", without("member", "id"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no claimed_device_id", "/get_token", without("member", "claimed_device_id"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no access_token", "/get_token", without("openid_token", "access_token"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"no matrix_server_name", "/get_token", without("openid_token", "matrix_server_name"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"not a room ID", "/get_token", with("room_id", "#alias:salon.test"), nil, 400, "M_INVALID_PARAM", "bad_request"},
		{"room ID with a space", "/get_token", with("room_id", "!a b:salon.test"), nil, 400, "M_INVALID_PARAM", "bad_request"},
		{"slot_id too long", "/get_token", with("slot_id", strings.Repeat("s", 256)), nil, 400, "M_INVALID_PARAM", "bad_request"},
		{"some delay fields", "/get_token", with("delay_id", "d1"), nil, 400, "M_BAD_JSON", "bad_request"},
		{"delayed leave delegation", "/get_token", delegation, nil, 400, "M_BAD_JSON", "delegation"},
		{"legacy no room", "/sfu/get", `{"openid_token": {"access_token": "x", "matrix_server_name": "salon.test"}, "device_id": "D"}`, nil, 400, "M_BAD_JSON", "bad_request"},
		{"legacy no device_id", "/sfu/get", sfuGetBody(aliceToken, testRoom, ""), nil, 400, "M_BAD_JSON", "bad_request"},
		{"legacy not a room ID", "/sfu/get", sfuGetBody(aliceToken, "room", "D"), nil, 400, "M_INVALID_PARAM", "bad_request"},
		{"legacy new-API field", "/sfu/get", `{"room_id": "!call:salon.test"}`, nil, 400, "M_NOT_JSON", "bad_request"},
		{"homeserver failure", "/get_token", getTokenBody(aliceToken, alice, testRoom),
			func(a *fakeAuthority) { a.failWith = errors.New("database is on fire") }, 500, "M_UNKNOWN", "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, JWTConfig{})
			e.auth.set(alice, testRoom, member)
			if tc.setup != nil {
				tc.setup(e.auth)
			}
			status, body := e.post(tc.path, tc.body)
			if status != tc.status || body["errcode"] != tc.errcode {
				t.Errorf("got %d %v, want %d %s", status, body, tc.status, tc.errcode)
			}
			msg, _ := body["error"].(string)
			if msg == "" {
				t.Error("no error message")
			}
			if _, ok := body["jwt"]; ok {
				t.Error("a refusal carried a token")
			}
			if got := e.refused(tc.reason); got != 1 {
				t.Errorf("refusals{%s} = %v, want 1", tc.reason, got)
			}
			if e.issued("get_token")+e.issued("sfu_get") != 0 {
				t.Error("a token was counted")
			}
			if strings.Contains(msg, "fire") {
				t.Error("an internal error reached the client")
			}
		})
	}
}

// Refusals that come before the homeserver is asked do not ask it.
func TestRefusalsAskNothing(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	b := getTokenBody(aliceToken, alice, testRoom)
	b["openid_token"].(map[string]any)["matrix_server_name"] = "evil.example"
	e.post("/get_token", b)
	e.post("/get_token", `{`)
	e.post("/get_token", getTokenBody(aliceToken, alice, "not-a-room"))
	if e.auth.calls != 0 {
		t.Errorf("Authority called %d times", e.auth.calls)
	}
	// A forged token is not taken to the membership check.
	e.post("/get_token", getTokenBody("forged", alice, testRoom))
	if e.auth.calls != 1 {
		t.Errorf("Authority called %d times for a forged token, want 1 (OpenIDUser)", e.auth.calls)
	}
}

// A user who left a second ago gets nothing, though they got a token
// while joined.
func TestLeftUser(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, member)
	if status, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom)); status != 200 {
		t.Fatalf("while joined: %d %v", status, body)
	}
	e.auth.set(alice, testRoom, CallPermissions{}) // the leave event
	status, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	if status != http.StatusForbidden || body["errcode"] != "M_FORBIDDEN" {
		t.Errorf("after leaving: %d %v", status, body)
	}
	status, _ = e.post("/sfu/get", sfuGetBody(aliceToken, testRoom, "DEVICE1"))
	if status != http.StatusForbidden {
		t.Errorf("legacy after leaving: %d", status)
	}
	if e.issued("get_token") != 1 || e.refused("not_joined") != 2 {
		t.Errorf("issued %v refused %v", e.issued("get_token"), e.refused("not_joined"))
	}
	// The operator can see who was refused and why.
	if logs := e.logs.String(); !strings.Contains(logs, "reason=not_joined") || !strings.Contains(logs, "user="+alice) {
		t.Errorf("refusal log lacks reason or user:\n%s", logs)
	}
}

func TestHTTPSurface(t *testing.T) {
	checkLeaks(t)
	e := newTestEnv(t, JWTConfig{})
	do := func(method, path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+"/livekit/jwt"+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("preflight", func(t *testing.T) {
		for _, p := range []string{"/get_token", "/sfu/get"} {
			resp := do(http.MethodOptions, p, map[string]string{
				"Origin": "https://call.example", "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "content-type"})
			h := resp.Header
			if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
				t.Errorf("%s: %d %v", p, resp.StatusCode, h)
			}
		}
	})
	t.Run("GET token is 405", func(t *testing.T) {
		resp := do(http.MethodGet, "/get_token", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		if resp := do(http.MethodGet, "/healthz", nil); resp.StatusCode != 200 {
			t.Errorf("GET %d", resp.StatusCode)
		}
		if resp := do(http.MethodPost, "/healthz", nil); resp.StatusCode != 405 {
			t.Errorf("POST %d", resp.StatusCode)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		if resp := do(http.MethodPost, "/delegate_delayed_leave", nil); resp.StatusCode != 404 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
}

// The handler serves paths relative to its mount, at the root as well.
func TestHandlerUnmounted(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, member)
	b, _ := json.Marshal(getTokenBody(aliceToken, alice, testRoom))
	rec := httptest.NewRecorder()
	e.svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get_token", strings.NewReader(string(b))))
	if rec.Code != 200 {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// An external LiveKit deployment: its URL goes to the client, its key and
// secret sign the token, and the room is created through its RoomService
// API first (with an admin token it can verify).
func TestExternalLiveKit(t *testing.T) {
	checkLeaks(t)
	const key, secret = "APIexternal", "external-secret-external-secret-0123456789"
	var mu sync.Mutex
	var created []string
	var failCreate bool
	lk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/twirp/livekit.RoomService/CreateRoom" {
			http.NotFound(w, r)
			return
		}
		v, err := auth.ParseAPIToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, err.Error(), 401)
			return
		}
		if _, g, err := v.Verify(auth.NewSimpleKeyProvider(key, secret).GetSecret(v.APIKey())); err != nil || g.Video == nil || !g.Video.RoomCreate {
			http.Error(w, "unauthorized", 401)
			return
		}
		var req struct {
			Name         string `json:"name"`
			EmptyTimeout int    `json:"empty_timeout"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" {
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failCreate {
			http.Error(w, `{"code":"internal","msg":"down"}`, 500)
			return
		}
		created = append(created, req.Name)
		_ = json.NewEncoder(w).Encode(map[string]any{"name": req.Name, "sid": "RM_x"})
	}))
	defer lk.Close()
	extURL := "ws" + strings.TrimPrefix(lk.URL, "http")

	e := newTestEnv(t, JWTConfig{ExternalURL: extURL, ExternalKey: key, ExternalSecret: secret})
	e.auth.set(alice, testRoom, member)
	status, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	if body["url"] != extURL {
		t.Errorf("url = %v, want %s", body["url"], extURL)
	}
	claims, grants, k := verifyJWT(t, body["jwt"].(string), auth.NewSimpleKeyProvider(key, secret))
	if k != key {
		t.Errorf("key %q, want %q", k, key)
	}
	if claims.Subject != sha256JSONArray(alice, "DEVICE1", "member-1") {
		t.Errorf("identity %q", claims.Subject)
	}
	if _, ok := e.keys.Secret(k); ok {
		t.Error("the embedded keys know the external key")
	}
	mu.Lock()
	if len(created) != 1 || created[0] != grants.Video.Room {
		t.Errorf("created rooms %v, want [%s]", created, grants.Video.Room)
	}
	failCreate = true
	mu.Unlock()

	status, body = e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	if status != 500 || body["errcode"] != "M_UNKNOWN" || body["jwt"] != nil {
		t.Errorf("SFU down: %d %v", status, body)
	}
	if e.issued("get_token") != 1 || e.refused("internal") != 1 {
		t.Error("counters wrong")
	}
}

func TestNewJWTServiceChecks(t *testing.T) {
	keys, err := LoadOrCreateKeys(t.TempDir() + "/k")
	if err != nil {
		t.Fatal(err)
	}
	auth := newFakeAuthority()
	url := func() string { return testSFUURL }
	for _, tc := range []struct {
		name string
		p    JWTParams
		want error
	}{
		{"no keys", JWTParams{Authority: auth, SFUURL: url, ServerName: testServer}, ErrNoKeys},
		{"no SFU URL", JWTParams{Keys: keys, Authority: auth, ServerName: testServer}, ErrNoSFUURL},
		{"no authority", JWTParams{Keys: keys, SFUURL: url, ServerName: testServer}, ErrNoAuthority},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewJWTService(tc.p); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewJWTService(JWTParams{Authority: auth, SFUURL: url, Keys: keys}); err == nil {
		t.Error("no server name accepted")
	}
	if _, err := NewJWTService(JWTParams{Config: JWTConfig{TokenTTL: time.Second}, Keys: keys, Authority: auth, SFUURL: url, ServerName: testServer}); err == nil {
		t.Error("invalid config accepted")
	}
	// External needs neither keys nor an SFU URL.
	if _, err := NewJWTService(JWTParams{Config: JWTConfig{ExternalURL: "wss://lk.example", ExternalKey: "K", ExternalSecret: redact.Secret(strings.Repeat("s", 32))},
		Authority: auth, ServerName: testServer}); err != nil {
		t.Errorf("external: %v", err)
	}
}

// After a rotation the service signs with the new key; a token from
// before still verifies through the key set, as the SFU will check it.
func TestRotationThroughService(t *testing.T) {
	e := newTestEnv(t, JWTConfig{})
	e.auth.set(alice, testRoom, member)
	_, body := e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	oldJWT := body["jwt"].(string)
	oldKey, _ := e.keys.Current()

	if err := e.keys.Rotate(filepath.Join(e.keyDir, "livekit_keys")); err != nil {
		t.Fatal(err)
	}
	newKey, _ := e.keys.Current()
	if _, _, k := verifyJWT(t, oldJWT, e.keys); k != oldKey {
		t.Errorf("old token's key %q, want %q", k, oldKey)
	}
	_, body = e.post("/get_token", getTokenBody(aliceToken, alice, testRoom))
	if _, _, k := verifyJWT(t, body["jwt"].(string), e.keys); k != newKey {
		t.Errorf("new token signed with %q, want %q", k, newKey)
	}
}

// The OpenID access token of a request never prints.
func TestAccessTokenRedacted(t *testing.T) {
	req := getTokenRequest{OpenIDToken: openIDToken{AccessToken: "bearer-123"}}
	var buf strings.Builder
	fmt.Fprintf(&buf, "%v %+v %#v", req, req, req)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "req", req, "token", req.OpenIDToken.AccessToken)
	if strings.Contains(buf.String(), "bearer-123") {
		t.Errorf("access token printed: %s", buf.String())
	}
}
