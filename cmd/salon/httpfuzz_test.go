package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/route"
)

// TestHTTPFuzz sends an attacker's hostile requests to every route of the
// Client-Server API and the media repository over real HTTP, on a server
// where other users keep private rooms, and checks after each answer:
//
//   - no 5xx (no panic, no storage error from bad input);
//   - every 4xx carries a Matrix error body with an errcode;
//   - no answer holds a canary string planted in other users' private
//     messages, state, room account data and tags, in an encrypted room,
//     in a DM, or in rooms the attacker left or was kicked from after it
//     left; nor the ID of a room or event of others that the attacker is
//     never given (the IDs it is given, it may have stored anywhere
//     itself, so they are not checked).
//
// At the end the server is healthy, its users can still talk, and once it
// stops no goroutine is left. The requests come from a seeded generator:
// SALON_HTTPFUZZ_SEED picks another sequence, SALON_HTTPFUZZ_REQUESTS
// another length (default 1500 per backend).
func TestHTTPFuzz(t *testing.T) {
	forEachBackend(t, testHTTPFuzz)
}

// fuzzWorld is what the victims set up before the attacker starts.
type fuzzWorld struct {
	canaries  []string
	secretIDs []string // room and event IDs the attacker is never given and may not learn
	rooms     []string // every room ID, the attacker's own and others'
	events    []string
	users     []string
	media     []string // media IDs, the attacker's own and others'
}

func (w *fuzzWorld) canary() string {
	c := fmt.Sprintf("KANARI%02dqz", len(w.canaries))
	w.canaries = append(w.canaries, c)
	return c
}

func testHTTPFuzz(t *testing.T, database string) {
	leaks := goleak.IgnoreCurrent()
	srv := startServer(t, database, func(c *Config) {
		c.RateLimits.MessagesPerUser.PerSecond = 0
		c.HTTP.AccessLog = "off"
		c.Media.RestrictToRooms = true
	})
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	mallory := mxtest.Register(t, srv.URL, "mallory", "password mallory")
	w := &fuzzWorld{users: []string{alice.UserID, bob.UserID, mallory.UserID, "@nobody:localhost", "@x:elsewhere.example"}}
	create := func(c *mxtest.Client, body map[string]any) string {
		return c.Must(200, "POST", "/_matrix/client/v3/createRoom", body).Str("room_id")
	}
	// send sends a message whose event ID the attacker gets to use in its
	// requests; hide one whose ID it never gets.
	hide := func(c *mxtest.Client, room string, content map[string]any) string {
		return c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, strconv.FormatInt(time.Now().UnixNano(), 10)), content).Str("event_id")
	}
	send := func(c *mxtest.Client, room string, content map[string]any) string {
		id := hide(c, room, content)
		w.events = append(w.events, id)
		return id
	}
	join := func(c *mxtest.Client, room string) {
		c.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	}

	// The attacker's own: a public room it is in.
	public := create(alice, map[string]any{"preset": "public_chat", "name": "Lobby", "room_alias_name": "lobby"})
	join(mallory, public)
	send(alice, public, map[string]any{"msgtype": "m.text", "body": "bienvenue"})

	// Others' rooms: private, encrypted, DM.
	private := create(alice, map[string]any{"preset": "private_chat", "name": w.canary(), "topic": w.canary(), "invite": []string{bob.UserID}})
	join(bob, private)
	send(alice, private, map[string]any{"msgtype": "m.text", "body": w.canary()})
	w.secretIDs = append(w.secretIDs, hide(alice, private, map[string]any{"msgtype": "m.text", "body": w.canary()}))
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.example.note/%s", private, "k"), map[string]any{"note": w.canary()})
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/account_data/org.example.private", alice.UserID, private), map[string]any{"v": w.canary()})
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/rooms/%s/tags/%s", alice.UserID, private, w.canary()), map[string]any{"order": 0.5})
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/org.example.secret", alice.UserID), map[string]any{"v": w.canary()})
	// A file posted in the private room: its media ID is given to the
	// attacker, its bytes must never reach it (media.restrict_to_rooms).
	mxc := alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=notes.txt", []byte("notes: "+w.canary())).Str("content_uri")
	send(alice, private, map[string]any{"msgtype": "m.file", "body": "notes.txt", "url": mxc})
	w.media = append(w.media, strings.TrimPrefix(mxc, "mxc://localhost/"))
	own := mallory.Must(200, "POST", "/_matrix/media/v3/upload?filename=mine.txt", []byte("mine")).Str("content_uri")
	w.media = append(w.media, strings.TrimPrefix(own, "mxc://localhost/"))

	encrypted := create(alice, map[string]any{"preset": "private_chat", "invite": []string{bob.UserID},
		"initial_state": []any{map[string]any{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}}})
	join(bob, encrypted)
	enc := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.encrypted/e1", encrypted),
		map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": w.canary(), "sender_key": "k", "session_id": "s", "device_id": alice.DeviceID}).Str("event_id")
	w.events = append(w.events, enc)

	dm := create(alice, map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob.UserID}})
	join(bob, dm)
	send(bob, dm, map[string]any{"msgtype": "m.text", "body": w.canary()})
	w.secretIDs = append(w.secretIDs, hide(bob, dm, map[string]any{"msgtype": "m.text", "body": w.canary()}))
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", alice.UserID), map[string]any{bob.UserID: []string{dm}})
	// A room whose ID the attacker is never given.
	hidden := create(alice, map[string]any{"preset": "private_chat", "name": w.canary(), "invite": []string{bob.UserID}})
	join(bob, hidden)
	w.secretIDs = append(w.secretIDs, hidden, hide(alice, hidden, map[string]any{"msgtype": "m.text", "body": w.canary()}))

	// Rooms the attacker was in: what came after it left is not its to see.
	left := create(alice, map[string]any{"preset": "private_chat", "invite": []string{mallory.UserID}})
	join(mallory, left)
	send(alice, left, map[string]any{"msgtype": "m.text", "body": "avant le départ"})
	mallory.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", left), map[string]any{})
	send(alice, left, map[string]any{"msgtype": "m.text", "body": w.canary()})
	w.secretIDs = append(w.secretIDs, hide(alice, left, map[string]any{"msgtype": "m.text", "body": w.canary()}))
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", left), map[string]any{"topic": w.canary()})

	kicked := create(alice, map[string]any{"preset": "public_chat"})
	join(mallory, kicked)
	alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", kicked), map[string]any{"user_id": mallory.UserID, "reason": "bye"})
	send(alice, kicked, map[string]any{"msgtype": "m.text", "body": w.canary()})
	w.secretIDs = append(w.secretIDs, hide(alice, kicked, map[string]any{"msgtype": "m.text", "body": w.canary()}))
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.join_rules/", kicked), map[string]any{"join_rule": "invite"})
	w.rooms = []string{public, private, encrypted, dm, left, kicked, "!nowhere:localhost", "#lobby:localhost", "#nope:localhost"}

	// The canaries are there for those entitled to them: the check below
	// would see a leak.
	var seen strings.Builder
	for _, room := range []string{private, encrypted, dm, left, kicked, hidden} {
		seen.Write(alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=50", room), nil).Raw)
		seen.Write(alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state", room), nil).Raw)
	}
	seen.Write(alice.Must(200, "GET", "/_matrix/client/v3/sync", nil).Raw)
	seen.Write(alice.Must(200, "GET", "/_matrix/client/v1/media/download/localhost/"+w.media[0], nil).Raw)
	for _, c := range w.canaries {
		if !strings.Contains(seen.String(), c) {
			t.Fatalf("canary %s is not where it was planted", c)
		}
	}

	seed := uint64(envInt("SALON_HTTPFUZZ_SEED", 1))
	n := envInt("SALON_HTTPFUZZ_REQUESTS", 1500)
	f := &httpFuzzer{t: t, srv: srv, w: w, rng: rand.New(rand.NewPCG(seed, seed^0x5a10)), routes: srv.srv.hs.Routes(),
		attacker: mallory, hc: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	deadline := time.Now().Add(60 * time.Second)
	sent := 0
	for ; sent < n && time.Now().Before(deadline); sent++ {
		f.one()
		if t.Failed() {
			t.Fatalf("stopped after request %d (seed %d)", sent+1, seed)
		}
	}
	t.Logf("%d requests (seed %d): %v", sent, seed, f.statuses)

	// The attacker's whole view, once more, through /sync.
	f.check("GET", "/_matrix/client/v3/sync (final)", nil, mallory.Do("GET", "/_matrix/client/v3/sync?full_state=true&filter="+url.QueryEscape(`{"room":{"include_leave":true}}`), nil))

	// Still healthy: everyone can talk.
	if r := mxtest.New(t, srv.URL).Do("GET", "/health", nil); r.Status != 200 {
		t.Fatalf("/health %d %s", r.Status, r.Raw)
	}
	last := send(alice, private, map[string]any{"msgtype": "m.text", "body": "toujours là"})
	if r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=5", private), nil); !strings.Contains(string(r.Raw), last) {
		t.Fatalf("bob does not see alice's last message: %s", r.Raw)
	}
	mallory.HTTP.CloseIdleConnections()
	alice.HTTP.CloseIdleConnections()
	bob.HTTP.CloseIdleConnections()
	f.hc.CloseIdleConnections()
	srv.Stop()
	goleak.VerifyNone(t, leaks)
}

type httpFuzzer struct {
	t        *testing.T
	srv      *testServer
	w        *fuzzWorld
	rng      *rand.Rand
	routes   []route.Route
	attacker *mxtest.Client
	hc       *http.Client
	statuses map[int]int
}

// hostile are strings for path segments, query values and JSON strings.
var hostile = []string{"", " ", "..", "../../../etc/passwd", "%2e%2e%2f", "/", "*", "\x00", "\u202e", "ℌ𝔢𝔩𝔩𝔬", "\ufffd",
	strings.Repeat("a", 70000), "!", "@", "#", "$", "+", "!a", "@:", "!x:localhost:99999", "$ev:localhost", "null", "true",
	"-1", "0", "9223372036854775807", "18446744073709551616", "1e308", "NaN", "s0_0", "s99999999_0_0_0", "t1", "t0", "r1",
	"k-1", "s1_2_3_4_5", "m.room.message", "m.room.member", "m.room.power_levels", "m.room.encrypted", "m.direct", "m.login.password",
	"<script>", "'; DROP TABLE events; --", `{"a":1}`, "%", "%ff", `"\ud800"`, "mxc://localhost/../../x", "localhost", "elsewhere.example"}

// jsonBodies are request bodies the mutator starts from; ROOM, EVENT and
// USER are replaced by IDs from the pools.
var jsonBodies = []string{
	`{"msgtype":"m.text","body":"salut"}`, `{"user_id":"USER","reason":"x"}`, `{"room_id":"ROOM"}`, `{"visibility":"public"}`,
	`{"preset":"public_chat","invite":["USER"],"initial_state":[{"type":"m.room.history_visibility","content":{"history_visibility":"world_readable"}}],"room_version":"10"}`,
	`{"m.read":"EVENT","m.fully_read":"EVENT","m.read.private":"EVENT"}`, `{"thread_id":"main"}`, `{"tags":{"u.x":{"order":1}}}`,
	`{"search_categories":{"room_events":{"search_term":"KANARI","filter":{"rooms":["ROOM"]},"event_context":{"before_limit":5,"after_limit":5,"include_profile":true}}}}`,
	`{"room":{"timeline":{"limit":50},"rooms":["ROOM"],"include_leave":true,"state":{"lazy_load_members":true}}}`,
	`{"messages":{"USER":{"*":{"x":1}}}}`, `{"device_keys":{"user_id":"USER","device_id":"D","algorithms":[],"keys":{},"signatures":{}}}`,
	`{"device_keys":{"USER":[]}}`, `{"one_time_keys":{"USER":{"D":"signed_curve25519"}}}`, `{"displayname":"x","avatar_url":"mxc://localhost/a"}`,
	`{"presence":"online","status_msg":"x"}`, `{"typing":true,"timeout":30000}`, `{"limit":10,"filter":{"generic_search_term":"a"},"since":"x"}`,
	`{"search_term":"a","limit":5}`, `{"lists":{"a":{"ranges":[[0,100]],"timeline_limit":10,"required_state":[["*","*"]]}},"room_subscriptions":{"ROOM":{"timeline_limit":10,"required_state":[["*","*"]]}}}`,
	`{"new_version":"11"}`, `{"reason":"spam","score":-100}`, `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"x"}`,
	`{"event_id":"EVENT"}`, `{"pushkey":"k","kind":"http","app_id":"a","app_display_name":"a","device_display_name":"d","lang":"en","data":{"url":"http://127.0.0.1:1/_matrix/push/v1/notify"}}`,
	`{"actions":["notify"],"pattern":"*"}`, `{"auth":{"type":"m.login.dummy"}}`, `{"id_server":"x","medium":"email","address":"a@b"}`,
	`{"version":"1","algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":{"public_key":"x"}}`, `{"rooms":{"ROOM":{"sessions":{}}}}`,
	`{"membership":"join","displayname":"x"}`, `{"join_rule":"public"}`, `{"users":{"USER":100}}`, `{"aliases":["#x:localhost"]}`, `{"alias":"#lobby:localhost"}`,
}

// queryKeys are the parameters endpoints read.
var queryKeys = []string{"from", "to", "since", "dir", "limit", "filter", "timeout", "full_state", "set_presence", "access_token",
	"server_name", "via", "at", "membership", "not_membership", "include", "recurse", "max_depth", "suggested_only", "width", "height",
	"method", "animated", "url", "ts", "allow_remote", "timeout_ms", "next_batch", "order_by", "user_id", "device_id", "pos", "only",
	"rel_type", "event_type", "org.matrix.msc3715.direction", "version", "allow_redirect", "filename", "org.matrix.msc4140.delay"}

func (f *httpFuzzer) pick(list []string) string { return list[f.rng.IntN(len(list))] }

// id is a value for a path parameter or a JSON string: usually an ID
// of its kind (the attacker's own or someone else's), sometimes hostile.
func (f *httpFuzzer) id(kind string) string {
	if f.rng.IntN(6) == 0 {
		return f.pick(hostile)
	}
	switch kind {
	case "roomId", "roomIdOrAlias", "roomAlias", "ROOM":
		return f.pick(f.w.rooms)
	case "eventId", "EVENT":
		return f.pick(f.w.events)
	case "userId", "USER":
		if f.rng.IntN(2) == 0 {
			return f.attacker.UserID
		}
		return f.pick(f.w.users)
	case "deviceId":
		return f.attacker.DeviceID
	case "eventType", "type":
		return f.pick([]string{"m.room.message", "m.room.member", "m.room.name", "m.room.topic", "m.room.power_levels", "org.example.note", "org.example.secret", "m.direct", "m.room.encrypted"})
	case "txnId":
		return strconv.Itoa(f.rng.IntN(1000))
	case "serverName":
		return "localhost"
	case "mediaId":
		return f.pick(f.w.media)
	}
	return f.pick(hostile[:len(hostile)/2]) + f.pick(hostile)
}

// body builds a request body: a template with IDs filled in, then
// perhaps mutated, or something that is not JSON at all.
func (f *httpFuzzer) body() []byte {
	switch f.rng.IntN(20) {
	case 0:
		return nil
	case 1:
		return []byte(f.pick(hostile))
	case 2: // big: over the JSON limit or just under
		return []byte(`{"body":"` + strings.Repeat("x", 70000+f.rng.IntN(2<<20)) + `"}`)
	case 3: // deep
		d := 1 + f.rng.IntN(20000)
		return []byte(strings.Repeat("[", d) + strings.Repeat("]", d))
	}
	tmpl := f.pick(jsonBodies)
	for _, k := range []string{"ROOM", "EVENT", "USER"} {
		for strings.Contains(tmpl, `"`+k+`"`) {
			v, _ := json.Marshal(f.id(k))
			tmpl = strings.Replace(tmpl, `"`+k+`"`, string(v), 1)
		}
	}
	b := []byte(tmpl)
	if f.rng.IntN(3) == 0 {
		var v any
		if json.Unmarshal(b, &v) == nil {
			v = f.mutate(v, 0)
			if m, err := json.Marshal(v); err == nil {
				b = m
			}
		}
	}
	if f.rng.IntN(8) == 0 && len(b) > 0 { // damage the bytes
		i := f.rng.IntN(len(b))
		switch f.rng.IntN(3) {
		case 0:
			b = b[:i]
		case 1:
			b[i] = byte(f.rng.IntN(256))
		case 2:
			b = append(b[:i:i], append([]byte(f.pick(hostile)), b[i:]...)...)
		}
	}
	return b
}

// mutate changes values in a decoded JSON document.
func (f *httpFuzzer) mutate(v any, depth int) any {
	if depth > 6 || f.rng.IntN(4) == 0 {
		switch f.rng.IntN(9) {
		case 0:
			return nil
		case 1:
			return f.rng.Float64() * 1e300
		case 2:
			return -f.rng.IntN(1 << 30)
		case 3:
			return true
		case 4:
			return []any{f.pick(hostile), 1, nil}
		case 5:
			return map[string]any{f.pick(hostile): f.pick(hostile)}
		default:
			return f.pick(hostile)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if f.rng.IntN(2) == 0 {
				x[k] = f.mutate(e, depth+1)
			}
		}
		if f.rng.IntN(4) == 0 {
			x[f.pick(hostile)] = f.mutate(nil, depth+1)
		}
	case []any:
		for i := range x {
			x[i] = f.mutate(x[i], depth+1)
		}
	}
	return v
}

// one sends one hostile request and checks the answer.
func (f *httpFuzzer) one() {
	rt := f.routes[f.rng.IntN(len(f.routes))]
	method := rt.Methods[f.rng.IntN(len(rt.Methods))]
	if f.rng.IntN(25) == 0 {
		method = f.pick([]string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"})
	}
	if skipRoute(method, rt.Path) {
		return
	}
	path := fillPath(rt.Path, f.id)
	if f.rng.IntN(15) == 0 { // damage the path itself
		path += f.pick([]string{"/..", "/../../", "%2F..", "//", "/%00", "?", "#x", "/" + url.PathEscape(f.pick(hostile))})
	}
	q := url.Values{}
	for range f.rng.IntN(4) {
		k := f.pick(queryKeys)
		switch k {
		case "timeout", "timeout_ms":
			q.Set(k, strconv.Itoa(f.rng.IntN(50)))
		case "filter":
			q.Set(k, string(f.body()))
		case "from", "to", "since", "pos", "next_batch":
			q.Set(k, f.pick(hostile[30:40]))
		case "access_token":
			q.Set(k, f.pick([]string{f.attacker.Token, "syt_bad", f.pick(hostile)}))
		default:
			q.Set(k, f.id(k))
		}
	}
	var body []byte
	if method == "POST" || method == "PUT" || f.rng.IntN(10) == 0 {
		body = f.body()
	}
	target := f.srv.URL + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		return // not a request a client could send
	}
	switch f.rng.IntN(30) {
	case 0: // no token
	case 1:
		req.Header.Set("Authorization", "Bearer "+f.pick(hostile))
	case 2:
		req.Header.Set("Authorization", f.pick([]string{"Basic eDp5", "Bearer", "bearer  " + f.attacker.Token}))
	default:
		req.Header.Set("Authorization", "Bearer "+f.attacker.Token)
	}
	if f.rng.IntN(10) == 0 {
		req.Header.Set("Content-Type", f.pick([]string{"text/plain", "image/png", "multipart/form-data; boundary=x", "application/json; charset=latin1", "", "a/b/c"}))
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.hc.Do(req)
	if err != nil && strings.Contains(err.Error(), "invalid header field") {
		return // the client would not send it (a NUL in the token)
	}
	if err != nil {
		f.t.Errorf("%s %s: %v", method, shorten(path), err)
		return
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		f.t.Errorf("%s %s: reading the answer: %v", method, shorten(path), err)
		return
	}
	var decoded map[string]any
	_ = json.Unmarshal(raw, &decoded)
	f.check(method, target+" "+string(body), body, mxtest.Response{Status: resp.StatusCode, Raw: raw, Body: decoded, Header: resp.Header})
	if resp.StatusCode == 401 && strings.Contains(string(raw), "M_UNKNOWN_TOKEN") && f.attacker.Do("GET", "/_matrix/client/v3/account/whoami", nil).Status == 401 {
		// The attacker logged itself out: log in again and go on.
		fresh := mxtest.Login(f.t, f.srv.URL, "mallory", "password mallory")
		f.attacker.Token, f.attacker.DeviceID = fresh.Token, fresh.DeviceID
	}
}

// check applies the invariants to one answer; request is what was sent
// (the URL and body), for the failure message.
func (f *httpFuzzer) check(method, request string, body []byte, r mxtest.Response) {
	f.t.Helper()
	if f.statuses == nil {
		f.statuses = map[int]int{}
	}
	f.statuses[r.Status]++
	what := fmt.Sprintf("%s %s", method, shorten(request))
	if r.Status >= 500 {
		f.t.Errorf("%s: %d %s", what, r.Status, shorten(string(r.Raw)))
	}
	// 431 is net/http's own answer to a request line and headers over its
	// limit (1 MiB), before any handler: plain text, as from any Go server.
	if r.Status >= 400 && method != "HEAD" && r.Status != http.StatusRequestHeaderFieldsTooLarge {
		code, _ := r.Body["errcode"].(string)
		_, uia := r.Body["flows"] // 401 of user-interactive auth: the flows, errcode optional
		if !strings.HasPrefix(code, "M_") && !(r.Status == 401 && uia) {
			f.t.Errorf("%s: %d without a Matrix error: %s", what, r.Status, shorten(string(r.Raw)))
		}
	}
	text := string(r.Raw)
	for _, c := range f.w.canaries {
		if strings.Contains(text, c) {
			f.t.Errorf("%s: the answer holds %s, planted where the attacker may not read: %s", what, c, shorten(text))
		}
	}
	for _, id := range f.w.secretIDs {
		if strings.Contains(text, id) {
			f.t.Errorf("%s: the answer names %s, which the attacker may not know: %s", what, id, shorten(text))
		}
	}
}

// skipRoute: requests that end the attacker's account or its one session
// for good are left out (they succeed or fail by design, and the fuzzer
// would have no attacker left).
func skipRoute(method, path string) bool {
	return strings.HasSuffix(path, "/account/deactivate") || strings.HasSuffix(path, "/account/password")
}

// fillPath replaces each {name} (or {name...}) of a route pattern.
func fillPath(pattern string, value func(kind string) string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			b.WriteString(pattern)
			return b.String()
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			b.WriteString(pattern)
			return b.String()
		}
		b.WriteString(pattern[:i])
		name := strings.TrimSuffix(pattern[i+1:i+j], "...")
		b.WriteString(url.PathEscape(value(name)))
		pattern = pattern[i+j+1:]
	}
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// TestNULAndBadUTF8Refused: a NUL or invalid UTF-8 in a path or query
// parameter is the client's error (400 M_INVALID_PARAM) on both backends;
// on PostgreSQL, which refuses both in text, a %00 device ID answered 500
// (found by TestHTTPFuzz).
func TestNULAndBadUTF8Refused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		srv := startServer(t, database)
		c := mxtest.Register(t, srv.URL, "ana", "password ana")
		for _, p := range []string{"/_matrix/client/v3/devices/%00", "/_matrix/client/v3/devices/%ff", "/_matrix/client/v3/rooms/%21a%00:localhost/messages",
			"/_matrix/client/v3/profile/%40ana%00:localhost", "/_matrix/client/v3/sync?since=s1%00", "/_matrix/client/v3/publicRooms?since=%ff",
			"/_matrix/media/v3/download/localhost/%00"} {
			c.MustErr(400, "M_INVALID_PARAM", "GET", p, nil)
		}
		c.Must(200, "GET", "/_matrix/client/v3/devices/"+c.DeviceID, nil)
		// In JSON bodies a NUL is "\u0000": refused with M_BAD_JSON on both
		// backends (PostgreSQL answered 500 for a room named with one).
		c.MustErr(400, "M_BAD_JSON", "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "a\x00b", "topic": "\x00"})
		room := c.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": `a\u0000b`}).Str("room_id")
		if r := c.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.name/", room), nil); r.Str("name") != `a\u0000b` {
			t.Fatalf("an escaped backslash before u0000 is text, not a NUL: %s", r.Raw)
		}
		for _, req := range []struct{ method, path, body string }{
			{"PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", c.UserID), `{"displayname":"a\u0000b"}`},
			{"PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/t1", room), `{"msgtype":"m.text","body":"a\u0000b","\u0000":1}`},
			{"PUT", mxtest.Path("/_matrix/client/v3/devices/%s", c.DeviceID), `{"display_name":"\u0000"}`},
			{"POST", "/_matrix/client/v3/createRoom", `{"room_alias_name":"a\u0000b"}`},
			{"POST", "/_matrix/client/v3/search", `{"search_categories":{"room_events":{"search_term":"\u0000"}}}`},
			{"POST", "/_matrix/client/v3/user_directory/search", `{"search_term":"\u0000"}`},
			{"POST", mxtest.Path("/_matrix/client/v3/user/%s/filter", c.UserID), `{"room":{"rooms":["\u0000"]},"\u0000":1}`},
			{"POST", "/_matrix/client/v3/keys/upload", `{"one_time_keys":{"signed_curve25519:\u0000":{"key":"k"}}}`},
			{"PUT", mxtest.Path("/_matrix/client/v3/sendToDevice/m.x/t1"), `{"messages":{"@ana:localhost":{"\u0000":{"a":"\u0000"}}}}`},
			{"PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), `{"topic":"\u0000"}`},
			{"PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/redact/%s/t2", room, "$x"), `{"reason":"\u0000"}`},
		} {
			if r := c.Do(req.method, req.path, req.body); r.Status != 400 || r.Errcode() != "M_BAD_JSON" {
				t.Errorf("%s %s %s: %d %s", req.method, req.path, req.body, r.Status, r.Raw)
			}
		}
	})
}
