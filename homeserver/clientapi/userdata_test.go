package clientapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
)

// call is one call the handlers made of the UserData service.
type call struct {
	method string
	args   []string
}

// fakeUserData records the calls and answers with err.
type fakeUserData struct {
	calls []call
	err   error
}

func (f *fakeUserData) rec(m string, args ...string) error {
	f.calls = append(f.calls, call{m, args})
	return f.err
}
func (f *fakeUserData) AccountData(_ context.Context, u, r, typ string) (json.RawMessage, error) {
	return json.RawMessage(`{"v":1}`), f.rec("AccountData", u, r, typ)
}
func (f *fakeUserData) PutAccountData(_ context.Context, u, r, typ string, c json.RawMessage) error {
	return f.rec("PutAccountData", u, r, typ, string(c))
}
func (f *fakeUserData) Tags(_ context.Context, u, r string) (map[string]json.RawMessage, error) {
	return map[string]json.RawMessage{"u.x": json.RawMessage(`{}`)}, f.rec("Tags", u, r)
}
func (f *fakeUserData) PutTag(_ context.Context, u, r, tag string, c json.RawMessage) error {
	return f.rec("PutTag", u, r, tag, string(c))
}
func (f *fakeUserData) DeleteTag(_ context.Context, u, r, tag string) error {
	return f.rec("DeleteTag", u, r, tag)
}
func (f *fakeUserData) Receipt(_ context.Context, u, r, typ, ev, thread string) error {
	return f.rec("Receipt", u, r, typ, ev, thread)
}
func (f *fakeUserData) ReadMarkers(_ context.Context, u, r string, m map[string]string) error {
	b, _ := json.Marshal(m)
	return f.rec("ReadMarkers", u, r, string(b))
}

// TestUserDataHandlers: the account data, tag, receipt and read marker
// handlers check the path and the body, call the UserData service once
// with what they decoded (or not at all when the request is refused), and
// answer with its result; they never write to the store or notify.
func TestUserDataHandlers(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	au := auth.New(auth.Params{Store: st, ServerName: "hs"})
	if _, err := au.CreateAccount(ctx, "alice", "password alice", false); err != nil {
		t.Fatal(err)
	}
	sess, err := au.NewSession(ctx, "@alice:hs", "DEV", "", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ud := &fakeUserData{}
	api := New(Params{Config: Config{ServerName: "hs", MaxRequestBytes: 1 << 16}, Auth: au, Store: st,
		Rooms: rooms.New(rooms.Params{Store: st, ServerName: "hs"}), UserData: ud})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	// do sends an authenticated request and returns the status and body.
	do := func(method, path, body string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+"/_matrix/client/v3"+path, rd)
		req.Header.Set("Authorization", "Bearer "+string(sess.AccessToken))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	const room = "!r:hs"
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     *call // nil: the service is not called
		answer                   string
	}{
		{"get account data", "GET", "/user/@alice:hs/account_data/x.y", "", 200, &call{"AccountData", []string{"@alice:hs", "", "x.y"}}, `{"v":1}`},
		{"put room account data", "PUT", "/user/@alice:hs/rooms/" + room + "/account_data/x.y", `{"a":1}`, 200,
			&call{"PutAccountData", []string{"@alice:hs", room, "x.y", `{"a":1}`}}, `{}`},
		{"someone else's account data", "PUT", "/user/@bob:hs/account_data/x.y", `{}`, 403, nil, "M_FORBIDDEN"},
		{"invalid room", "PUT", "/user/@alice:hs/rooms/nope/account_data/x.y", `{}`, 400, nil, "M_INVALID_PARAM"},
		{"account data not JSON", "PUT", "/user/@alice:hs/account_data/x.y", `{`, 400, nil, "M_NOT_JSON"},
		{"tags", "GET", "/user/@alice:hs/rooms/" + room + "/tags", "", 200, &call{"Tags", []string{"@alice:hs", room}}, `{"tags":{"u.x":{}}}`},
		{"put tag", "PUT", "/user/@alice:hs/rooms/" + room + "/tags/u.x", `{"order":0.5}`, 200,
			&call{"PutTag", []string{"@alice:hs", room, "u.x", `{"order":0.5}`}}, `{}`},
		{"tag order not a number", "PUT", "/user/@alice:hs/rooms/" + room + "/tags/u.x", `{"order":"high"}`, 400, nil, "M_BAD_JSON"},
		{"delete tag", "DELETE", "/user/@alice:hs/rooms/" + room + "/tags/u.x", "", 200, &call{"DeleteTag", []string{"@alice:hs", room, "u.x"}}, `{}`},
		{"threaded receipt", "POST", "/rooms/" + room + "/receipt/m.read/$e", `{"thread_id":"main"}`, 200,
			&call{"Receipt", []string{"@alice:hs", room, "m.read", "$e", "main"}}, `{}`},
		{"bad thread", "POST", "/rooms/" + room + "/receipt/m.read/$e", `{"thread_id":"x"}`, 400, nil, "M_INVALID_PARAM"},
		{"read markers", "POST", "/rooms/" + room + "/read_markers", `{"m.fully_read":"$e"}`, 200,
			&call{"ReadMarkers", []string{"@alice:hs", room, `{"m.fully_read":"$e"}`}}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ud.calls = nil
			if status, b := do(tc.method, tc.path, tc.body); status != tc.status || !strings.Contains(b, tc.answer) {
				t.Fatalf("%d %s, want %d with %s", status, b, tc.status, tc.answer)
			}
			switch {
			case tc.want == nil && len(ud.calls) != 0:
				t.Fatalf("refused request called %v", ud.calls)
			case tc.want != nil && (len(ud.calls) != 1 || ud.calls[0].method != tc.want.method || strings.Join(ud.calls[0].args, "|") != strings.Join(tc.want.args, "|")):
				t.Fatalf("calls %v, want %v", ud.calls, *tc.want)
			}
		})
	}
	// The service's Matrix error is the answer.
	ud.err = mxerr.New(mxerr.InvalidParam, "Too many tags")
	if status, b := do("PUT", "/user/@alice:hs/rooms/"+room+"/tags/u.y", `{}`); status != 400 || !strings.Contains(b, "Too many tags") {
		t.Fatalf("service error answered %d %s", status, b)
	}
}
