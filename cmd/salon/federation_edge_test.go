package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	pngenc "image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/internal/testca"
)

// edgeNet is two Salons, a.test and b.test, and a server c.test the test
// plays, all trusting one test CA.
type edgeNet struct {
	ca     *testca.CA
	a, b   *fedNode
	sa, sb *testServer
	c      *fakeServer
	fa     *fedHTTP // A's federation listener, called as c.test
}

func newEdgeNet(t *testing.T, db string) *edgeNet {
	t.Helper()
	nodes := fedNodes(t, db, "a.test", "b.test")
	n := &edgeNet{ca: nodes[0].ca, a: nodes[0], b: nodes[1]}
	n.c = newFakeServer(t, n.ca, "c.test")
	n.a.peers["c.test"] = n.c.addr
	n.sa, n.sb = n.a.start(t), n.b.start(t)
	n.fa = newFedHTTP(t, n.ca, n.a)
	return n
}

// asC calls A's federation API signed as c.test.
func (n *edgeNet) asC(t *testing.T, method, uri string, body []byte) (int, map[string]any, []byte) {
	t.Helper()
	return n.fa.do(method, uri, n.c.auth(t, n.c.key, "c.test", "a.test", method, uri, body), body)
}

// asB calls A's federation API as B does, through B's federation client.
func (n *edgeNet) asB(uri string, q url.Values) (map[string]any, error) {
	var out map[string]any
	err := n.sb.srv.hs.Federation.Client.Get(context.Background(), "a.test", uri, q, &out)
	return out, err
}

// TestFederationEdgeDirectory: B's users list A's public rooms
// (/publicRooms?server=a.test, GET and POST with a filter) and walk a
// space of A (/hierarchy of a room B does not know), seeing only the
// children a server may see.
func TestFederationEdgeDirectory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := newEdgeNet(t, db)
		alice := mxtest.Register(t, n.sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, n.sb.URL, "bob", "password bob")
		lounge := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "public_chat", "visibility": "public", "name": "Physics lounge", "topic": "tea at four"}).Str("room_id")
		alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "visibility": "public", "name": "Staff only"})

		page := bob.Must(200, "GET", "/_matrix/client/v3/publicRooms?server=a.test", nil)
		chunk, _ := page.Body["chunk"].([]any)
		if len(chunk) != 1 || chunk[0].(map[string]any)["room_id"] != lounge || chunk[0].(map[string]any)["name"] != "Physics lounge" {
			t.Fatalf("A's directory from B: %s", page.Raw)
		}
		page = bob.Must(200, "POST", "/_matrix/client/v3/publicRooms?server=a.test", map[string]any{"filter": map[string]any{"generic_search_term": "TEA"}})
		if chunk, _ := page.Body["chunk"].([]any); len(chunk) != 1 {
			t.Fatalf("A's directory filtered: %s", page.Raw)
		}
		page = bob.Must(200, "POST", "/_matrix/client/v3/publicRooms?server=a.test", map[string]any{"filter": map[string]any{"generic_search_term": "chemistry"}})
		if chunk, _ := page.Body["chunk"].([]any); len(chunk) != 0 {
			t.Fatalf("A's directory filtered to nothing: %s", page.Raw)
		}
		bob.MustErr(502, "M_UNKNOWN", "GET", "/_matrix/client/v3/publicRooms?server=nowhere.test", nil)
		// Anonymous callers do not make B ask other servers.
		mxtest.New(t, n.sb.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/publicRooms?server=a.test", nil)
		mxtest.New(t, n.sb.URL).Must(200, "GET", "/_matrix/client/v3/publicRooms", nil)
		bob.MustErr(400, "M_INVALID_PARAM", "GET", "/_matrix/client/v3/publicRooms?server=not%20a%20name", nil)

		// A space of A (room version 11: its ID names A), with a public
		// child and a private one.
		space := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
			"preset": "public_chat", "room_version": "11", "name": "Campus", "creation_content": map[string]any{"type": "m.space"}}).Str("room_id")
		secret := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Secret"}).Str("room_id")
		for _, child := range []string{lounge, secret} {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.space.child/%s", space, child), map[string]any{"via": []string{"a.test"}})
		}
		h := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil)
		var got []string
		for _, r := range h.Body["rooms"].([]any) {
			got = append(got, r.(map[string]any)["room_id"].(string))
		}
		if len(got) != 2 || got[0] != space || got[1] != lounge {
			t.Fatalf("A's space from B: %s", h.Raw)
		}
		if strings.Contains(string(h.Raw), "Secret") {
			t.Fatalf("a private child's summary crossed servers: %s", h.Raw)
		}
		// The federation answer lists the private child as inaccessible.
		fh, err := n.asB(mxtest.Path("/_matrix/federation/v1/hierarchy/%s", space), nil)
		if err != nil {
			t.Fatal(err)
		}
		if inacc, _ := fh["inaccessible_children"].([]any); len(inacc) != 1 || inacc[0] != secret {
			t.Fatalf("federation hierarchy: %v", fh)
		}
		// A child restricted to a room a user of B is in: A lists it for
		// B; B shows it only to its users joined to an allowed room, which
		// B cannot tell of a room it does not know: nobody yet.
		bKeyFile, err := os.ReadFile(filepath.Join(n.b.DataDir, "signing.key"))
		if err != nil {
			t.Fatal(err)
		}
		bKey, err := events.ParseSigningKeyFile(bKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.sa.srv.hs.Rooms.AddRemoteMember(context.Background(), lounge, bob.UserID, "join", bKey); err != nil {
			t.Fatal(err)
		}
		members := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Members",
			"initial_state": []any{map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
				"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": lounge}}}}}}).Str("room_id")
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.space.child/%s", space, members), map[string]any{"via": []string{"a.test"}})
		fh, err = n.asB(mxtest.Path("/_matrix/federation/v1/hierarchy/%s", space), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(fh["children"]); !strings.Contains(string(b), members) {
			t.Fatalf("the restricted child for B: %s", b)
		}
		if h := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil); strings.Contains(string(h.Raw), members) {
			t.Fatalf("a restricted child shown to a user not known to be in its allowed rooms: %s", h.Raw)
		}

		// A private space of A is not found from B.
		bob.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", secret), nil)
	})
}

// TestFederationEdgeRoomReads: A serves a room's events to a server with
// a member in it, by history visibility, and refuses them to an unrelated
// server (B) and to a server the room's ACL denies.
func TestFederationEdgeRoomReads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := newEdgeNet(t, db)
		alice := mxtest.Register(t, n.sa.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_version": "11",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
		msg := func(body string) string {
			return alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, body), map[string]any{"msgtype": "m.text", "body": body}).Str("event_id")
		}
		before := msg("before carol")
		if _, err := n.sa.srv.hs.Rooms.AddRemoteMember(context.Background(), room, "@carol:c.test", "join", n.c.key); err != nil {
			t.Fatal(err)
		}
		after := msg("after carol")

		ev := func(id string) string { return mxtest.Path("/_matrix/federation/v1/event/%s", id) }
		if st, m, raw := n.asC(t, "GET", ev(after), nil); st != 200 || !strings.Contains(string(raw), "after carol") || m["origin"] != "a.test" {
			t.Fatalf("c.test reading an event after its user joined: %d %s", st, raw)
		}
		if st, m, raw := n.asC(t, "GET", ev(before), nil); st != 403 || m["errcode"] != "M_FORBIDDEN" {
			t.Fatalf("c.test reading an event before (joined visibility): %d %s", st, raw)
		}
		if st, m, raw := n.asC(t, "GET", ev("$nonexistent"), nil); st != 404 || m["errcode"] != "M_NOT_FOUND" {
			t.Fatalf("unknown event: %d %s", st, raw)
		}
		st, m, raw := n.asC(t, "GET", mxtest.Path("/_matrix/federation/v1/state_ids/%s", room)+"?event_id="+url.QueryEscape(after), nil)
		if st != 200 || len(m["pdu_ids"].([]any)) < 5 || len(m["auth_chain_ids"].([]any)) < 3 {
			t.Fatalf("state_ids: %d %s", st, raw)
		}
		st, _, raw = n.asC(t, "GET", mxtest.Path("/_matrix/federation/v1/state/%s", room)+"?event_id="+url.QueryEscape(after), nil)
		if st != 200 || !strings.Contains(string(raw), "@carol:c.test") {
			t.Fatalf("state: %d %s", st, raw)
		}
		st, m, raw = n.asC(t, "GET", mxtest.Path("/_matrix/federation/v1/backfill/%s", room)+"?limit=100000&v="+url.QueryEscape(after), nil)
		pdus, _ := m["pdus"].([]any)
		if st != 200 || len(pdus) < 5 || len(pdus) > 100 || strings.Contains(string(raw), "before carol") || !strings.Contains(string(raw), "after carol") {
			t.Fatalf("backfill: %d %s", st, raw)
		}
		if st, _, raw := n.asC(t, "GET", mxtest.Path("/_matrix/federation/v1/backfill/%s", room)+"?limit=lots&v="+url.QueryEscape(after), nil); st != 400 {
			t.Fatalf("backfill with a bad limit: %d %s", st, raw)
		}
		body, _ := json.Marshal(map[string]any{"earliest_events": []string{before}, "latest_events": []string{after}, "limit": 10})
		st, m, raw = n.asC(t, "POST", mxtest.Path("/_matrix/federation/v1/get_missing_events/%s", room), body)
		if evs, _ := m["events"].([]any); st != 200 || len(evs) != 1 || !strings.Contains(string(raw), "@carol:c.test") {
			t.Fatalf("get_missing_events: %d %s", st, raw)
		}

		// B has nobody in the room: every read refused.
		for _, uri := range []string{
			ev(after),
			mxtest.Path("/_matrix/federation/v1/state_ids/%s", room) + "?event_id=" + url.QueryEscape(after),
			mxtest.Path("/_matrix/federation/v1/event_auth/%s/%s", room, after),
			mxtest.Path("/_matrix/federation/v1/backfill/%s", room) + "?limit=10&v=" + url.QueryEscape(after),
		} {
			u, _ := url.Parse(uri)
			_, err := n.asB(u.Path, u.Query())
			var re *federation.RemoteError
			if !errors.As(err, &re) || re.Status != 403 || re.Code != "M_FORBIDDEN" {
				t.Fatalf("B reading %s: %v", uri, err)
			}
		}

		// The room's ACL denies c.test: refused too, its member or not.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.server_acl/", room), map[string]any{"allow": []string{"*"}, "deny": []string{"c.test"}})
		if st, m, raw := n.asC(t, "GET", ev(after), nil); st != 403 || m["errcode"] != "M_FORBIDDEN" {
			t.Fatalf("c.test denied by the ACL: %d %s", st, raw)
		}
	})
}

// TestFederationEdgeMedia: a user of B downloads media of A through B
// (authenticated media, the multipart answer over federation); B caches
// it, so with A stopped it is still served; media A does not have is 404,
// and with A down, media not cached is 502.
func TestFederationEdgeMedia(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		n := newEdgeNet(t, db)
		alice := mxtest.Register(t, n.sa.URL, "alice", "password alice")
		bob := mxtest.Register(t, n.sb.URL, "bob", "password bob")
		content := strings.Repeat("notes from the lab ", 1000)
		up := alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=notes.txt", []byte(content))
		mxc := strings.TrimPrefix(up.Str("content_uri"), "mxc://a.test/")
		download := func() mxtest.Response {
			return bob.Do("GET", "/_matrix/client/v1/media/download/a.test/"+mxc, nil)
		}
		got := download()
		if got.Status != 200 || string(got.Raw) != content || !strings.Contains(got.Header.Get("Content-Disposition"), "notes.txt") {
			t.Fatalf("remote download: %d %q %q", got.Status, got.Header.Get("Content-Disposition"), got.Raw[:min(len(got.Raw), 80)])
		}
		bob.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v1/media/download/a.test/nothingHere", nil)
		// A (of B) never asked: unauthenticated legacy downloads fetch nothing.
		mxtest.New(t, n.sb.URL).MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/media/v3/download/a.test/"+mxc, nil)

		// A thumbnail of A's image, made by A, through B.
		var png bytes.Buffer
		img := image.NewRGBA(image.Rect(0, 0, 400, 300))
		for i := range img.Pix {
			img.Pix[i] = byte(i * 7)
		}
		if err := pngenc.Encode(&png, img); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", n.sa.URL+"/_matrix/media/v3/upload?filename=pic.png", bytes.NewReader(png.Bytes()))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "image/png")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var upPic struct {
			URI string `json:"content_uri"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&upPic)
		resp.Body.Close()
		pic := strings.TrimPrefix(upPic.URI, "mxc://a.test/")
		th := bob.Do("GET", "/_matrix/client/v1/media/thumbnail/a.test/"+pic+"?width=64&height=64&method=crop", nil)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(th.Raw))
		if th.Status != 200 || !strings.HasPrefix(th.Header.Get("Content-Type"), "image/") || err != nil || cfg.Width >= 400 {
			t.Fatalf("remote thumbnail: %d %s %d bytes, %dx%d %v", th.Status, th.Header.Get("Content-Type"), len(th.Raw), cfg.Width, cfg.Height, err)
		}

		other := strings.TrimPrefix(alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=b.txt", []byte("later")).Str("content_uri"), "mxc://a.test/")
		n.sa.Stop()
		if again := download(); again.Status != 200 || string(again.Raw) != content {
			t.Fatalf("cached download with A stopped: %d", again.Status)
		}
		bob.MustErr(502, "M_UNKNOWN", "GET", "/_matrix/client/v1/media/download/a.test/"+other, nil)
		if again := bob.Do("GET", "/_matrix/client/v1/media/thumbnail/a.test/"+pic+"?width=64&height=64&method=crop", nil); again.Status != 200 {
			t.Fatalf("cached thumbnail with A stopped: %d", again.Status)
		}
	})
}

// recordingServer is a server the test plays that keeps the EDUs of the
// transactions sent to it.
type recordingServer struct {
	*fakeServer
	mu   sync.Mutex
	edus []map[string]any
	pdus []string // the types of the PDUs received
}

func newRecordingServer(t *testing.T, ca *testca.CA, name string) *recordingServer {
	t.Helper()
	rs := &recordingServer{}
	rs.fakeServer = newFakeServer(t, ca, name, func(mux *http.ServeMux) {
		mux.HandleFunc("PUT /_matrix/federation/v1/send/{txnId}", func(w http.ResponseWriter, r *http.Request) {
			var txn struct {
				EDUs []map[string]any `json:"edus"`
				PDUs []struct {
					Type string `json:"type"`
				} `json:"pdus"`
			}
			if err := json.NewDecoder(r.Body).Decode(&txn); err != nil {
				http.Error(w, "bad", 400)
				return
			}
			rs.mu.Lock()
			rs.edus = append(rs.edus, txn.EDUs...)
			for _, p := range txn.PDUs {
				rs.pdus = append(rs.pdus, p.Type)
			}
			rs.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"pdus":{}}`))
		})
	})
	return rs
}

// waitEDU waits for an EDU of the type whose JSON contains want.
func (rs *recordingServer) waitEDU(t *testing.T, typ, want string) map[string]any {
	t.Helper()
	var found map[string]any
	waitFor(t, typ+" "+want+" at "+rs.name, func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		for _, e := range rs.edus {
			b, _ := json.Marshal(e)
			if e["edu_type"] == typ && strings.Contains(string(b), want) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// TestFederationEdgeEDUs: a local user's typing, read receipt, device
// changes and presence reach a server with a member in their room (c.test,
// played by the test); once the room's server ACL denies c.test, typing
// no longer goes there.
func TestFederationEdgeEDUs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		ca := testca.New(t)
		a := newFedNode(t, ca, "a.test", db)
		c := newRecordingServer(t, ca, "c.test")
		a.peers["c.test"] = c.addr
		sa := a.start(t)
		alice := mxtest.Register(t, sa.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		if _, err := sa.srv.hs.Rooms.AddRemoteMember(context.Background(), room, "@carol:c.test", "join", c.key); err != nil {
			t.Fatal(err)
		}
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/typing/%s", room, alice.UserID), map[string]any{"typing": true, "timeout": 10000})
		c.waitEDU(t, "m.typing", `"user_id":"@alice:a.test"`)

		msg := alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/r1", room), map[string]any{"msgtype": "m.text", "body": "hi"}).Str("event_id")
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, msg), map[string]any{})
		c.waitEDU(t, "m.receipt", msg)

		d := newE2EDevice(t, alice)
		alice.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": d.deviceKeys(t)})
		up := c.waitEDU(t, "m.device_list_update", `"device_id":"`+alice.DeviceID+`"`)
		if content, _ := up["content"].(map[string]any); content["keys"] == nil || content["deleted"] != false {
			t.Fatalf("device list update: %v", up)
		}

		// Two devices deleted at once: two updates, each its own stream_id.
		second, third := mxtest.Login(t, sa.URL, "alice", "password alice"), mxtest.Login(t, sa.URL, "alice", "password alice")
		del := alice.Must(401, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": []string{second.DeviceID, third.DeviceID}})
		alice.Must(200, "POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": []string{second.DeviceID, third.DeviceID},
			"auth": map[string]any{"type": "m.login.password", "session": del.Str("session"), "user": "alice", "password": "password alice"}})
		d2 := c.waitEDU(t, "m.device_list_update", `"device_id":"`+second.DeviceID+`"`)["content"].(map[string]any)
		d3 := c.waitEDU(t, "m.device_list_update", `"device_id":"`+third.DeviceID+`"`)["content"].(map[string]any)
		if d2["deleted"] != true || d3["deleted"] != true || d2["stream_id"] == d3["stream_id"] {
			t.Fatalf("device deletions: %v %v", d2, d3)
		}

		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "online", "status_msg": "in the lab"})
		c.waitEDU(t, "m.presence", "in the lab")

		// Denied by the room's ACL: c.test is told of the ACL itself,
		// then typing and messages stop going there.
		c.mu.Lock()
		c.pdus = nil
		c.mu.Unlock()
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.server_acl/", room), map[string]any{"allow": []string{"*"}, "deny": []string{"c.test"}})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/typing/%s", room, alice.UserID), map[string]any{"typing": false})
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/after-acl", room), map[string]any{"msgtype": "m.text", "body": "not for c"})
		// Presence queued after the typing notice (one queue per
		// destination, in order): once it is there, the typing notice
		// would have been too.
		alice.Must(200, "PUT", "/_matrix/client/v3/presence/"+url.PathEscape(alice.UserID)+"/status", map[string]any{"presence": "online", "status_msg": "after the ACL"})
		c.waitEDU(t, "m.presence", "after the ACL")
		c.mu.Lock()
		defer c.mu.Unlock()
		if !slices.Equal(c.pdus, []string{"m.room.server_acl"}) {
			t.Fatalf("PDUs to the server the ACL denies: %v, want the ACL alone", c.pdus)
		}
		for _, e := range c.edus {
			if b, _ := json.Marshal(e); e["edu_type"] == "m.typing" && strings.Contains(string(b), `"typing":false`) {
				t.Fatalf("typing went to a server the ACL denies: %s", b)
			}
		}
	})
}
