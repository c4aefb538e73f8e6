package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

const backupAlg = "m.megolm_backup.v1.curve25519-aes-sha2"

func backupKeyBody(fmi, fc int, verified bool, tag string) map[string]any {
	return map[string]any{
		"first_message_index": fmi, "forwarded_count": fc, "is_verified": verified,
		"session_data": map[string]any{"ephemeral": "e-" + tag, "ciphertext": "c-" + tag, "mac": "m-" + tag},
	}
}

// backupState is everything a user's backup version holds, to check that a
// refused request changed nothing.
func backupState(c *mxtest.Client, version string) string {
	c.T.Helper()
	info := c.Must(200, "GET", "/_matrix/client/v3/room_keys/version/"+version, nil)
	keys := c.Must(200, "GET", "/_matrix/client/v3/room_keys/keys?version="+version, nil)
	return fmt.Sprintf("etag=%v count=%v keys=%s", info.Body["etag"], info.Body["count"], keys.Raw)
}

func TestKeyBackup(t *testing.T) {
	forEachBackend(t, testKeyBackup)
}

func testKeyBackup(t *testing.T, db string) {
	srv := startServer(t, db)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	const room, room2 = "!secret:test", "!other:test"
	keyPath := func(version, room, session string) string {
		return mxtest.Path("/_matrix/client/v3/room_keys/keys/%s/%s", room, session) + "?version=" + version
	}
	roomPath := func(version, room string) string {
		return mxtest.Path("/_matrix/client/v3/room_keys/keys/%s", room) + "?version=" + version
	}

	// No backup yet.
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/version", nil)
	mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", "/_matrix/client/v3/room_keys/version", nil)
	alice.MustErr(404, "M_NOT_FOUND", "PUT", keyPath("1", room, "s1"), backupKeyBody(0, 0, false, "x"))

	// Creating a version: bad bodies, then a good one.
	for _, bad := range []struct {
		body    any
		status  int
		errcode string
	}{
		{map[string]any{"algorithm": backupAlg, "auth_data": "not an object"}, 400, "M_BAD_JSON"},
		{map[string]any{"algorithm": backupAlg, "auth_data": []any{1}}, 400, "M_BAD_JSON"},
		{map[string]any{"algorithm": backupAlg}, 400, "M_BAD_JSON"},
		{map[string]any{"auth_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{map[string]any{"algorithm": 7, "auth_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{map[string]any{"algorithm": "", "auth_data": map[string]any{}}, 400, "M_INVALID_PARAM"},
		{`[]`, 400, "M_BAD_JSON"},
		{`{"algorithm":`, 400, "M_NOT_JSON"},
	} {
		alice.MustErr(bad.status, bad.errcode, "POST", "/_matrix/client/v3/room_keys/version", bad.body)
	}
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/version", nil)
	auth := map[string]any{"public_key": "pk1", "signatures": map[string]any{alice.UserID: map[string]any{"ed25519:DEV": "sig"}}}
	v1 := alice.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": auth}).Str("version")
	latest := alice.Must(200, "GET", "/_matrix/client/v3/room_keys/version", nil)
	if latest.Str("version") != v1 || latest.Str("algorithm") != backupAlg || latest.Body["count"] != 0.0 || latest.Str("etag") == "" ||
		latest.Body["auth_data"].(map[string]any)["public_key"] != "pk1" {
		t.Fatalf("latest = %s", latest.Raw)
	}
	etag0 := latest.Str("etag")

	// Storing keys through the three paths.
	u := alice.Must(200, "PUT", keyPath(v1, room, "s1"), backupKeyBody(5, 1, false, "s1"))
	if u.Body["count"] != 1.0 || u.Str("etag") == etag0 {
		t.Fatalf("put one key = %s", u.Raw)
	}
	u = alice.Must(200, "PUT", roomPath(v1, room), map[string]any{"sessions": map[string]any{"s2": backupKeyBody(0, 0, true, "s2")}})
	if u.Body["count"] != 2.0 {
		t.Fatalf("put room keys = %s", u.Raw)
	}
	u = alice.Must(200, "PUT", "/_matrix/client/v3/room_keys/keys?version="+v1, map[string]any{"rooms": map[string]any{
		room2: map[string]any{"sessions": map[string]any{"t1": backupKeyBody(2, 0, false, "t1")}},
	}})
	if u.Body["count"] != 3.0 {
		t.Fatalf("put all keys = %s", u.Raw)
	}
	etag3 := u.Str("etag")
	got := alice.Must(200, "GET", keyPath(v1, room, "s1"), nil)
	if got.Body["first_message_index"] != 5.0 || got.Body["forwarded_count"] != 1.0 || got.Body["is_verified"] != false ||
		got.Body["session_data"].(map[string]any)["ciphertext"] != "c-s1" {
		t.Fatalf("GET session = %s", got.Raw)
	}
	if r := alice.Must(200, "GET", roomPath(v1, room), nil); len(r.Body["sessions"].(map[string]any)) != 2 {
		t.Fatalf("GET room = %s", r.Raw)
	}
	all := alice.Must(200, "GET", "/_matrix/client/v3/room_keys/keys?version="+v1, nil)
	if rooms := all.Body["rooms"].(map[string]any); len(rooms) != 2 || rooms[room2] == nil {
		t.Fatalf("GET all = %s", all.Raw)
	}
	// A missing session is 404; a room without keys is {"sessions": {}}.
	alice.MustErr(404, "M_NOT_FOUND", "GET", keyPath(v1, room, "nope"), nil)
	if r := alice.Must(200, "GET", roomPath(v1, "!empty:test"), nil); string(r.Raw) != `{"sessions":{}}` {
		t.Fatalf("GET empty room = %s", r.Raw)
	}
	if v := alice.Must(200, "GET", "/_matrix/client/v3/room_keys/version/"+v1, nil); v.Str("etag") != etag3 || v.Body["count"] != 3.0 {
		t.Fatalf("version after puts = %s", v.Raw)
	}

	// The replacement rule over HTTP: a worse copy is kept out (etag
	// unchanged), a better one goes in (etag moves).
	if u := alice.Must(200, "PUT", keyPath(v1, room, "s1"), backupKeyBody(6, 0, false, "worse")); u.Str("etag") != etag3 || u.Body["count"] != 3.0 {
		t.Fatalf("worse key = %s", u.Raw)
	}
	if u := alice.Must(200, "PUT", keyPath(v1, room, "s2"), backupKeyBody(0, 0, false, "unverified")); u.Str("etag") != etag3 {
		t.Fatalf("unverified key over a verified one = %s", u.Raw)
	}
	u = alice.Must(200, "PUT", keyPath(v1, room, "s1"), backupKeyBody(5, 0, false, "better"))
	if u.Str("etag") == etag3 || u.Body["count"] != 3.0 {
		t.Fatalf("better key = %s", u.Raw)
	}
	if got := alice.Must(200, "GET", keyPath(v1, room, "s1"), nil); got.Body["session_data"].(map[string]any)["ciphertext"] != "c-better" {
		t.Fatalf("after the better key: %s", got.Raw)
	}

	// Bad uploads are refused whole, and change nothing.
	before := backupState(alice, v1)
	good := backupKeyBody(0, 0, false, "new")
	for _, bad := range []struct {
		name    string
		path    string
		body    any
		status  int
		errcode string
	}{
		{"session_data a string", keyPath(v1, room, "n1"), map[string]any{"first_message_index": 0, "forwarded_count": 0, "is_verified": false, "session_data": "x"}, 400, "M_BAD_JSON"},
		{"negative first_message_index", keyPath(v1, room, "n1"), backupKeyBody(-1, 0, false, "n"), 400, "M_INVALID_PARAM"},
		{"negative forwarded_count", keyPath(v1, room, "n1"), backupKeyBody(0, -2, false, "n"), 400, "M_INVALID_PARAM"},
		{"index a string", keyPath(v1, room, "n1"), map[string]any{"first_message_index": "1", "forwarded_count": 0, "is_verified": false, "session_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{"index a fraction", keyPath(v1, room, "n1"), `{"first_message_index":1.5,"forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
		{"index past int64", keyPath(v1, room, "n1"), `{"first_message_index":99999999999999999999,"forwarded_count":0,"is_verified":false,"session_data":{}}`, 400, "M_BAD_JSON"},
		{"is_verified a string", keyPath(v1, room, "n1"), map[string]any{"first_message_index": 0, "forwarded_count": 0, "is_verified": "yes", "session_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{"missing forwarded_count", keyPath(v1, room, "n1"), map[string]any{"first_message_index": 0, "is_verified": false, "session_data": map[string]any{}}, 400, "M_BAD_JSON"},
		{"not a room ID", keyPath(v1, "#alias:test", "n1"), good, 400, "M_INVALID_PARAM"},
		{"sessions missing", roomPath(v1, room), map[string]any{}, 400, "M_BAD_JSON"},
		{"sessions an array", roomPath(v1, room), map[string]any{"sessions": []any{}}, 400, "M_BAD_JSON"},
		{"rooms missing", "/_matrix/client/v3/room_keys/keys?version=" + v1, map[string]any{}, 400, "M_BAD_JSON"},
		{"room value a number", "/_matrix/client/v3/room_keys/keys?version=" + v1, map[string]any{"rooms": map[string]any{room: 5}}, 400, "M_BAD_JSON"},
		{"one bad key among good ones", "/_matrix/client/v3/room_keys/keys?version=" + v1, map[string]any{"rooms": map[string]any{
			room:  map[string]any{"sessions": map[string]any{"n1": good, "n2": good}},
			room2: map[string]any{"sessions": map[string]any{"n3": backupKeyBody(0, -1, false, "bad")}},
		}}, 400, "M_INVALID_PARAM"},
		{"no version", mxtest.Path("/_matrix/client/v3/room_keys/keys/%s/n1", room), good, 400, "M_MISSING_PARAM"},
		{"version not a number", keyPath("abc", room, "n1"), good, 404, "M_NOT_FOUND"},
		{"version never made", keyPath("99", room, "n1"), good, 404, "M_NOT_FOUND"},
		{"body too large", "/_matrix/client/v3/room_keys/keys?version=" + v1, `{"rooms":{"` + room + `":{"sessions":{"big":{"first_message_index":0,"forwarded_count":0,"is_verified":false,"session_data":{"c":"` + strings.Repeat("A", 2<<20) + `"}}}}}}`, 413, "M_TOO_LARGE"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			alice.MustErr(bad.status, bad.errcode, "PUT", bad.path, bad.body)
			if after := backupState(alice, v1); after != before {
				t.Fatalf("refused upload changed the backup:\n%s\n%s", before, after)
			}
		})
	}

	// Updating the version: only auth_data changes.
	vpath := "/_matrix/client/v3/room_keys/version/" + v1
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", vpath, map[string]any{"algorithm": "other", "auth_data": auth})
	alice.MustErr(400, "M_INVALID_PARAM", "PUT", vpath, map[string]any{"algorithm": backupAlg, "auth_data": auth, "version": "7"})
	alice.MustErr(400, "M_BAD_JSON", "PUT", vpath, map[string]any{"algorithm": backupAlg, "auth_data": 3})
	alice.MustErr(400, "M_BAD_JSON", "PUT", vpath, map[string]any{"algorithm": backupAlg, "auth_data": auth, "version": 1})
	alice.MustErr(404, "M_NOT_FOUND", "PUT", "/_matrix/client/v3/room_keys/version/42", map[string]any{"algorithm": backupAlg, "auth_data": auth})
	alice.Must(200, "PUT", vpath, map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "pk1", "signatures": map[string]any{}}, "version": v1})
	if v := alice.Must(200, "GET", vpath, nil); v.Body["auth_data"].(map[string]any)["signatures"] == nil || v.Body["count"] != 3.0 {
		t.Fatalf("after update: %s", v.Raw)
	}

	// Another user sees and touches nothing of Alice's backup, even
	// naming her version.
	aliceBefore := backupState(alice, v1)
	bob.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/version", nil)
	bob.MustErr(404, "M_NOT_FOUND", "GET", vpath, nil)
	bob.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/keys?version="+v1, nil)
	bob.MustErr(404, "M_NOT_FOUND", "GET", keyPath(v1, room, "s1"), nil)
	bob.MustErr(404, "M_NOT_FOUND", "PUT", keyPath(v1, room, "s1"), backupKeyBody(0, 0, true, "bob"))
	bob.MustErr(404, "M_NOT_FOUND", "DELETE", keyPath(v1, room, "s1"), nil)
	bob.MustErr(404, "M_NOT_FOUND", "DELETE", "/_matrix/client/v3/room_keys/keys?version="+v1, nil)
	bob.MustErr(404, "M_NOT_FOUND", "PUT", vpath, map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "bob's"}})
	bob.MustErr(404, "M_NOT_FOUND", "DELETE", vpath, nil)
	bv := bob.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "bob"}}).Str("version")
	if bk := bob.Must(200, "GET", "/_matrix/client/v3/room_keys/keys?version="+bv, nil); string(bk.Raw) != `{"rooms":{}}` {
		t.Fatalf("bob's new backup holds %s", bk.Raw)
	}
	bob.Must(200, "PUT", keyPath(bv, room, "s1"), backupKeyBody(0, 0, true, "bob"))
	bob.Must(200, "DELETE", "/_matrix/client/v3/room_keys/keys?version="+bv, nil)
	bob.Must(200, "DELETE", "/_matrix/client/v3/room_keys/version/"+bv, nil)
	if after := backupState(alice, v1); after != aliceBefore {
		t.Fatalf("bob's requests changed alice's backup:\n%s\n%s", aliceBefore, after)
	}

	// A new version: the old one is read-only for keys.
	v2 := alice.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "pk2"}}).Str("version")
	if v2 == v1 {
		t.Fatalf("second version = %q", v2)
	}
	wrong := alice.MustErr(403, "M_WRONG_ROOM_KEYS_VERSION", "PUT", keyPath(v1, room, "s9"), backupKeyBody(0, 0, false, "old"))
	if wrong.Str("current_version") != v2 {
		t.Fatalf("wrong version answer = %s", wrong.Raw)
	}
	if v := alice.Must(200, "GET", vpath, nil); v.Body["count"] != 3.0 {
		t.Fatalf("old version after a refused write: %s", v.Raw)
	}
	if v := alice.Must(200, "GET", "/_matrix/client/v3/room_keys/version", nil); v.Str("version") != v2 || v.Body["count"] != 0.0 {
		t.Fatalf("latest = %s", v.Raw)
	}
	alice.Must(200, "PUT", keyPath(v2, room, "s1"), backupKeyBody(0, 0, false, "v2"))

	// Deleting keys, then versions.
	d := alice.Must(200, "DELETE", keyPath(v1, room, "s1"), nil)
	if d.Body["count"] != 2.0 {
		t.Fatalf("delete one key = %s", d.Raw)
	}
	if d2 := alice.Must(200, "DELETE", roomPath(v1, room), nil); d2.Body["count"] != 1.0 || d2.Str("etag") == d.Str("etag") {
		t.Fatalf("delete room keys = %s", d2.Raw)
	}
	alice.Must(200, "DELETE", "/_matrix/client/v3/room_keys/version/"+v2, nil)
	alice.Must(200, "DELETE", "/_matrix/client/v3/room_keys/version/"+v2, nil) // deleted before: still 200
	alice.MustErr(404, "M_NOT_FOUND", "DELETE", "/_matrix/client/v3/room_keys/version/77", nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/version/"+v2, nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", keyPath(v2, room, "s1"), nil)
	if v := alice.Must(200, "GET", "/_matrix/client/v3/room_keys/version", nil); v.Str("version") != v1 {
		t.Fatalf("latest after deleting %s = %s", v2, v.Raw)
	}
	alice.Must(200, "DELETE", vpath, nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/version", nil)
	alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v3/room_keys/keys?version="+v1, nil)
	v3 := alice.Must(200, "POST", "/_matrix/client/v3/room_keys/version", map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{}}).Str("version")
	if v3 == v1 || v3 == v2 {
		t.Fatalf("a version number came back: %s", v3)
	}
	var empty map[string]any
	if err := json.Unmarshal(alice.Must(200, "GET", "/_matrix/client/v3/room_keys/keys?version="+v3, nil).Raw, &empty); err != nil || len(empty["rooms"].(map[string]any)) != 0 {
		t.Fatalf("new version not empty: %v %v", empty, err)
	}
}
