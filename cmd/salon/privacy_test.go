package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestPrivacyPromises: only members see a room's members, state and
// messages (anyone, where history is world_readable); no API lists rooms or
// reads them for anyone else, administrators included.
func TestPrivacyPromises(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "user", "create", "admin", "--admin", "--data-dir", dir); code != 0 {
		t.Fatal(errs)
	}
	srv := startServer(t, "sqlite:"+filepath.Join(dir, "salon.db"), func(c *Config) { c.DataDir = dir })
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	if err := srv.srv.hs.Auth.SetPassword(t.Context(), "admin", "admin password", false, ""); err != nil {
		t.Fatal(err)
	}
	admin := mxtest.Login(t, srv.URL, "admin", "admin password")

	private := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Secret", "invite": []string{bob.UserID}}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", private), map[string]any{})
	msg := sendMsg(alice, private, "s1", map[string]any{"msgtype": "m.text", "body": "confidentiel"})

	for _, p := range []string{
		"/_matrix/client/v3/rooms/%s/messages", "/_matrix/client/v3/rooms/%s/members", "/_matrix/client/v3/rooms/%s/joined_members",
		"/_matrix/client/v3/rooms/%s/state", "/_matrix/client/v3/rooms/%s/state/m.room.name", "/_matrix/client/v3/rooms/%s/aliases",
	} {
		admin.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path(p, private), nil)
	}
	admin.MustErr(404, "M_NOT_FOUND", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/event/%s", private, msg), nil)
	// A room that does not exist answers exactly like one the caller is not in.
	nx := admin.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", "!doesnotexist:localhost"), nil)
	in := admin.Do("GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", private), nil)
	if nx.Status != in.Status || nx.Str("error") != in.Str("error") {
		t.Fatalf("existence leaks: %d %s vs %d %s", nx.Status, nx.Raw, in.Status, in.Raw)
	}
	// No admin API to list rooms or read them.
	for _, p := range []string{"/_synapse/admin/v1/rooms", "/_synapse/admin/v2/users", "/_matrix/client/v3/admin/rooms", "/_matrix/client/v3/rooms"} {
		if r := admin.Do("GET", p, nil); r.Status != 404 && r.Status != 405 {
			t.Fatalf("%s answers %d: %s", p, r.Status, r.Raw)
		}
	}
	// Presence (when someone is online) only for people who share a room.
	alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "online", "status_msg": "en TD"})
	if r := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil); r.Str("presence") != "online" || r.Str("status_msg") != "en TD" {
		t.Fatalf("a room-mate's presence: %s", r.Raw)
	}
	admin.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), nil)
	bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/presence/%s/status", alice.UserID), map[string]any{"presence": "offline"})

	// The directory lists only rooms published by their moderators.
	dirList := admin.Must(200, "GET", "/_matrix/client/v3/publicRooms", nil)
	if strings.Contains(string(dirList.Raw), private) {
		t.Fatal("private room in the directory")
	}
	bob.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/directory/list/room/%s", private), map[string]any{"visibility": "public"})
	admin.MustErr(403, "M_FORBIDDEN", "PUT", mxtest.Path("/_matrix/client/v3/directory/list/room/%s", private), map[string]any{"visibility": "public"})

	// world_readable: anyone logged in may read, without joining.
	open := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}}).Str("room_id")
	sendMsg(alice, open, "o1", map[string]any{"msgtype": "m.text", "body": "annonce publique"})
	if got := bodies(admin.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", open), nil)); len(got) != 1 {
		t.Fatalf("world_readable history = %v", got)
	}
	// joined visibility: a newcomer does not see what came before.
	joined := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
	sendMsg(alice, joined, "j1", map[string]any{"msgtype": "m.text", "body": "avant"})
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", joined), map[string]any{})
	sendMsg(alice, joined, "j2", map[string]any{"msgtype": "m.text", "body": "après"})
	if got := bodies(bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", joined), nil)); strings.Join(got, ",") != "après" {
		t.Fatalf("joined-visibility history seen by newcomer = %v", got)
	}
	// shared visibility (the default): a newcomer sees earlier history.
	shared := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	sendMsg(alice, shared, "h1", map[string]any{"msgtype": "m.text", "body": "avant"})
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", shared), map[string]any{})
	if got := bodies(bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", shared), nil)); len(got) != 1 {
		t.Fatalf("shared history = %v", got)
	}
}
