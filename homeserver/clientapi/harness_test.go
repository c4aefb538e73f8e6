package clientapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/delayed"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/pushrules"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/homeserver/sync"
	"github.com/salonhq/salon/homeserver/userdata"
)

// testServer is the Client-Server API over real services and a throw-away
// SQLite store, served on a loopback port, with two users: alice and bob.
type testServer struct {
	t     *testing.T
	url   string
	api   *API
	rooms *rooms.Service
	alice user
	bob   user
}

// user is one logged-in account.
type user struct {
	id, device, token string
}

// answer is one decoded response.
type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) errcode() string {
	s, _ := a.body["errcode"].(string)
	return s
}

func (a answer) str(k string) string {
	s, _ := a.body[k].(string)
	return s
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	au := auth.New(auth.Params{Store: st, ServerName: "hs"})
	notifier := sync.NewNotifier()
	rs := rooms.New(rooms.Params{Store: st, ServerName: "hs", Key: key, Notifier: notifier,
		UserExists: func(ctx context.Context, userID string) bool {
			lp, ok := au.Localpart(userID)
			if !ok {
				return false
			}
			_, err := st.Account(ctx, lp)
			return err == nil
		}})
	engine, err := sync.New(ctx, sync.Params{Store: st, Notifier: notifier})
	if err != nil {
		t.Fatal(err)
	}
	ks := keys.New(keys.Params{Store: st, ServerName: "hs", Notifier: notifier, RoomMates: engine.RoomMates})
	push := pushrules.New(st, rs)
	api := New(Params{
		Config: Config{ServerName: "hs", BaseURL: "http://hs.test", RegistrationMode: "closed", MaxRequestBytes: 1 << 16},
		Auth:   au, Store: st, Rooms: rs, Sync: testSync{engine},
		UserData: userdata.New(userdata.Params{Store: st, Notifier: notifier, Rooms: rs}),
		Keys:     ks, KeyChanges: engine,
		KeyBackups: keys.NewBackups(st), PushRules: push, Notifications: push,
		Delayed: delayed.New(delayed.Params{Store: st, Rooms: rs, MaxDelay: time.Hour, PerUser: 10}),
	})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	ts := &testServer{t: t, url: srv.URL, api: api, rooms: rs}
	login := func(name string) user {
		if _, err := au.CreateAccount(ctx, name, "password "+name, false); err != nil {
			t.Fatal(err)
		}
		sess, err := au.NewSession(ctx, "@"+name+":hs", strings.ToUpper(name)+"DEV", "", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return user{id: "@" + name + ":hs", device: strings.ToUpper(name) + "DEV", token: string(sess.AccessToken)}
	}
	ts.alice, ts.bob = login("alice"), login("bob")
	return ts
}

// do sends a request as u (anonymous when u.token is "") to a full path.
func (ts *testServer) do(u user, method, path, body string) answer {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

// v3 sends a request under /_matrix/client/v3.
func (ts *testServer) v3(u user, method, path, body string) answer {
	ts.t.Helper()
	return ts.do(u, method, v3+path, body)
}

// must fails the test unless the answer is a 200, and returns it.
func (ts *testServer) must(a answer) answer {
	ts.t.Helper()
	if a.status != http.StatusOK {
		ts.t.Fatalf("answer %d %s, want 200", a.status, a.raw)
	}
	return a
}

// createRoom makes a room as u and returns its ID.
func (ts *testServer) createRoom(u user, body string) string {
	ts.t.Helper()
	id := ts.must(ts.v3(u, "POST", "/createRoom", body)).str("room_id")
	if id == "" {
		ts.t.Fatal("createRoom answered no room_id")
	}
	return id
}

// send sends an m.room.message as u and returns its event ID.
func (ts *testServer) send(u user, roomID, txn, content string) string {
	ts.t.Helper()
	return ts.must(ts.v3(u, "PUT", "/rooms/"+roomID+"/send/m.room.message/"+txn, content)).str("event_id")
}

// expectation is what one table case wants of an answer: a status, an
// errcode ("" for none checked) and a fragment of the raw body ("" for
// none).
type expectation struct {
	status  int
	errcode string
	has     string
}

func (ts *testServer) check(t *testing.T, a answer, want expectation) {
	t.Helper()
	if a.status != want.status || a.errcode() != want.errcode || !strings.Contains(a.raw, want.has) {
		t.Fatalf("answer %d %s, want %d %q containing %q", a.status, a.raw, want.status, want.errcode, want.has)
	}
}

// testSync is the sync engine with presence off, as the homeserver wires
// it when presence is not enabled.
type testSync struct{ *sync.Engine }

func (testSync) SetPresence(userID, state, msg string) {}
func (testSync) PresenceStatus(userID string) sync.PresenceStatus {
	return sync.PresenceStatus{Presence: sync.PresenceOffline}
}
func (testSync) SyncStarted(userID, deviceID, setPresence string) func() { return func() {} }
func (testSync) PresenceActive(userID string)                            {}
func (testSync) SetTyping(roomID, userID string, typing bool, timeout time.Duration, members []string) {
}
