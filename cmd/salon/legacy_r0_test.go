package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestLegacyR0Client walks through what a client written before Matrix 1.1
// does (matrix-nio 0.20, matrix-commander, Hydrogen): it sees r0.6.1 in
// /versions, then logs in, creates a room, sends, syncs, pages back and
// uploads and downloads media using only the r0 prefixes.
func TestLegacyR0Client(t *testing.T) {
	forEachBackend(t, func(t *testing.T, database string) {
		srv := startServer(t, database)
		mxtest.Register(t, srv.URL, "oldie", "password oldie")

		anon := mxtest.New(t, srv.URL)
		if v := anon.Must(200, "GET", "/_matrix/client/versions", nil); !strings.Contains(string(v.Raw), `"r0.6.1"`) {
			t.Fatalf("/versions does not advertise r0.6.1: %s", v.Raw)
		}
		flows := anon.Must(200, "GET", "/_matrix/client/r0/login", nil)
		if !strings.Contains(string(flows.Raw), "m.login.password") {
			t.Fatalf("r0 login flows: %s", flows.Raw)
		}
		// The r0-era body: the deprecated top-level "user".
		login := anon.Must(200, "POST", "/_matrix/client/r0/login", map[string]any{
			"type": "m.login.password", "user": "oldie", "password": "password oldie",
		})
		c := mxtest.New(t, srv.URL)
		c.Token, c.UserID = login.Str("access_token"), login.Str("user_id")
		if c.Token == "" || !strings.HasPrefix(c.UserID, "@oldie:") {
			t.Fatalf("r0 login: %s", login.Raw)
		}
		c.Must(200, "GET", "/_matrix/client/r0/account/whoami", nil)

		room := c.Must(200, "POST", "/_matrix/client/r0/createRoom", map[string]any{"name": "old times"}).Str("room_id")
		sent := c.Must(200, "PUT", mxtest.Path("/_matrix/client/r0/rooms/%s/send/m.room.message/txn1", room),
			map[string]any{"msgtype": "m.text", "body": "hello from r0"}).Str("event_id")

		sync := c.Must(200, "GET", "/_matrix/client/r0/sync?timeout=0", nil)
		if !strings.Contains(string(sync.Raw), sent) || !strings.Contains(string(sync.Raw), "hello from r0") {
			t.Fatalf("r0 sync lacks the message %s: %s", sent, sync.Raw)
		}
		next, _ := sync.Body["next_batch"].(string)
		if next == "" {
			t.Fatalf("r0 sync has no next_batch: %s", sync.Raw)
		}
		c.Must(200, "GET", "/_matrix/client/r0/sync?timeout=0&since="+next, nil)
		msgs := c.Must(200, "GET", mxtest.Path("/_matrix/client/r0/rooms/%s/messages", room)+"?dir=b&limit=10", nil)
		if !strings.Contains(string(msgs.Raw), sent) {
			t.Fatalf("r0 messages lacks %s: %s", sent, msgs.Raw)
		}
		if pr := c.Must(200, "GET", "/_matrix/client/r0/pushrules/", nil); pr.Body["global"] == nil {
			t.Fatalf("r0 pushrules has no global: %s", pr.Raw)
		}
		if pr := c.Must(200, "GET", "/_matrix/client/r0/pushrules/global/", nil); pr.Body["override"] == nil {
			t.Fatalf("r0 pushrules/global/ is not the rule set: %s", pr.Raw)
		}

		// Media through the r0 prefix.
		req, _ := http.NewRequest("POST", srv.URL+"/_matrix/media/r0/upload?filename=note.txt", strings.NewReader("old bytes"))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		up := readJSON(t, res)
		uri, _ := up["content_uri"].(string)
		server, id, ok := strings.Cut(strings.TrimPrefix(uri, "mxc://"), "/")
		if res.StatusCode != 200 || !ok {
			t.Fatalf("r0 upload: %d %v", res.StatusCode, up)
		}
		// The r0 download is the legacy unauthenticated endpoint: under the
		// authenticated media freeze (on by default, as Synapse's) it
		// serves only media from before the freeze, so a new upload is
		// fetched through /_matrix/client/v1/media with the token.
		res, err = http.Get(srv.URL + "/_matrix/media/r0/download/" + server + "/" + id)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != 404 || !strings.Contains(body, "M_NOT_FOUND") {
			t.Fatalf("r0 download of media uploaded under the freeze: %d %q, want 404 M_NOT_FOUND", res.StatusCode, body)
		}
		req, _ = http.NewRequest("GET", srv.URL+"/_matrix/client/v1/media/download/"+server+"/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, res); res.StatusCode != 200 || body != "old bytes" {
			t.Fatalf("authenticated download of an r0 upload: %d %q", res.StatusCode, body)
		}
		c.Must(200, "GET", "/_matrix/media/r0/config", nil)

		// The r0 prefix is the same endpoint, errors included.
		anon.MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/r0/sync", nil)
		c.MustErr(404, "M_UNRECOGNIZED", "GET", "/_matrix/client/r0/no_such_endpoint", nil)
	})
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readJSON(t *testing.T, res *http.Response) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(readAll(t, res)), &v); err != nil {
		t.Fatalf("status %d, not JSON: %v", res.StatusCode, err)
	}
	return v
}
