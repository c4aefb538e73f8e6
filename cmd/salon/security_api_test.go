package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// noSuchRoom is a well-formed room ID of this server that no room has.
const noSuchRoom = "!nosuchroomhereatall:localhost"

// answer is what a refusal shows its caller: status, errcode and error
// text, byte for byte.
func answer(r mxtest.Response) string { return fmt.Sprintf("%d %s", r.Status, r.Raw) }

// sameAnswers fails unless every case got the same answer.
func sameAnswers(t *testing.T, what string, got map[string]mxtest.Response) {
	t.Helper()
	var first, firstCase string
	for name, r := range got {
		if first == "" {
			first, firstCase = answer(r), name
			continue
		}
		if a := answer(r); a != first {
			t.Errorf("%s answers differently: %s: %s; %s: %s", what, firstCase, first, name, a)
		}
	}
}

// TestNoMembershipOracle: someone who may not act on a room gets one
// answer, whatever the target's membership (joined, invited, banned, left,
// never there) and whether the room exists at all, so errors cannot be
// used to learn who is in a room or which rooms exist.
func TestNoMembershipOracle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol") // the outsider
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		frank := mxtest.Register(t, srv.URL, "frank", "password frank")
		grace := mxtest.Register(t, srv.URL, "grace", "password grace")

		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
		for _, u := range []*mxtest.Client{bob, eve, frank} {
			alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": u.UserID})
			u.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		}
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": dave.UserID})
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/ban", room), map[string]any{"user_id": eve.UserID})
		frank.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		// A room that bans the outsider, to compare their own ban with
		// rooms that do not exist.
		banned := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/ban", banned), map[string]any{"user_id": carol.UserID})

		targets := map[string]string{
			"joined": bob.UserID, "invited": dave.UserID, "banned": eve.UserID, "left": frank.UserID,
			"never in the room": grace.UserID, "creator": alice.UserID,
		}
		for _, op := range []string{"kick", "ban", "unban", "invite"} {
			// The outsider, on every target and on a room that does not exist.
			got := map[string]mxtest.Response{}
			for state, target := range targets {
				got[state] = carol.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/"+op, room), map[string]any{"user_id": target})
			}
			got["no such room"] = carol.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/"+op, noSuchRoom), map[string]any{"user_id": bob.UserID})
			for state, r := range got {
				if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
					t.Errorf("outsider %s (%s): %d %s", op, state, r.Status, r.Raw)
				}
			}
			sameAnswers(t, "outsider /"+op, got)
		}
		// A member without the power to kick or ban learns nothing new from
		// the answer either.
		for _, op := range []string{"kick", "ban", "unban"} {
			got := map[string]mxtest.Response{}
			for state, target := range targets {
				if target != bob.UserID {
					got[state] = bob.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/"+op, room), map[string]any{"user_id": target})
				}
			}
			sameAnswers(t, "powerless member /"+op, got)
		}

		join := map[string]mxtest.Response{
			"invite-only room": carol.Do("POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{}),
			"banned there":     carol.Do("POST", mxtest.Path("/_matrix/client/v3/join/%s", banned), map[string]any{}),
			"no such room":     carol.Do("POST", mxtest.Path("/_matrix/client/v3/join/%s", noSuchRoom), map[string]any{}),
			"rooms/{id}/join":  carol.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{}),
		}
		sameAnswers(t, "/join", join)
		sameAnswers(t, "/knock", map[string]mxtest.Response{
			"invite-only room": carol.Do("POST", mxtest.Path("/_matrix/client/v3/knock/%s", room), map[string]any{}),
			"no such room":     carol.Do("POST", mxtest.Path("/_matrix/client/v3/knock/%s", noSuchRoom), map[string]any{}),
		})
		for _, op := range []string{"leave", "forget"} {
			sameAnswers(t, "/"+op, map[string]mxtest.Response{
				"never in the room": carol.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/"+op, room), map[string]any{}),
				"no such room":      carol.Do("POST", mxtest.Path("/_matrix/client/v3/rooms/%s/"+op, noSuchRoom), map[string]any{}),
			})
		}
		// Everything else an outsider may try on a room answers the same
		// for a room that does not exist.
		msg := sendMsg(alice, room, "m1", map[string]any{"msgtype": "m.text", "body": "entre nous"})
		for _, rq := range []struct {
			method, path string
			body         any
		}{
			{"PUT", "/_matrix/client/v3/rooms/%s/send/m.room.message/o1", map[string]any{"msgtype": "m.text", "body": "x"}},
			{"PUT", "/_matrix/client/v3/rooms/%s/state/m.room.topic", map[string]any{"topic": "x"}},
			{"PUT", "/_matrix/client/v3/rooms/%s/state/m.room.name/", map[string]any{"name": "x"}},
			{"PUT", "/_matrix/client/v3/rooms/%s/redact/" + msg + "/r1", map[string]any{}},
			{"POST", "/_matrix/client/v3/rooms/%s/receipt/m.read/" + msg, map[string]any{}},
			{"POST", "/_matrix/client/v3/rooms/%s/read_markers", map[string]any{"m.fully_read": msg, "m.read": msg}},
			{"PUT", "/_matrix/client/v3/rooms/%s/typing/" + carol.UserID, map[string]any{"typing": true, "timeout": 1000}},
			{"POST", "/_matrix/client/v3/rooms/%s/upgrade", map[string]any{"new_version": "11"}},
			{"GET", "/_matrix/client/v3/rooms/%s/messages", nil},
			{"GET", "/_matrix/client/v3/rooms/%s/state", nil},
			{"GET", "/_matrix/client/v3/rooms/%s/members?at=t1", nil},
			{"GET", "/_matrix/client/v3/rooms/%s/aliases", nil},
			{"GET", "/_matrix/client/v3/rooms/%s/event/" + msg, nil},
			{"GET", "/_matrix/client/v3/rooms/%s/context/" + msg, nil},
			{"GET", "/_matrix/client/v1/rooms/%s/hierarchy", nil},
			{"GET", "/_matrix/client/v1/rooms/%s/relations/" + msg, nil},
		} {
			got := map[string]mxtest.Response{}
			for name, id := range map[string]string{"existing room": room, "no such room": noSuchRoom} {
				got[name] = carol.Do(rq.method, mxtest.Path(rq.path, id), rq.body)
				if got[name].Status < 400 {
					t.Errorf("outsider %s %s: %d %s", rq.method, rq.path, got[name].Status, got[name].Raw)
				}
			}
			sameAnswers(t, rq.method+" "+rq.path, got)
		}
		alias := map[string]mxtest.Response{}
		for name, id := range map[string]string{"existing room": room, "no such room": noSuchRoom} {
			alias[name] = carol.Do("PUT", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#"+strings.Fields(name)[0]+":localhost"), map[string]any{"room_id": id})
		}
		sameAnswers(t, "PUT /directory/room", alias)

		anon := mxtest.New(t, srv.URL)
		vis := map[string]mxtest.Response{
			"unpublished room": anon.Do("GET", mxtest.Path("/_matrix/client/v3/directory/list/room/%s", room), nil),
			"no such room":     anon.Do("GET", mxtest.Path("/_matrix/client/v3/directory/list/room/%s", noSuchRoom), nil),
		}
		sameAnswers(t, "/directory/list/room without a token", vis)
		if r := vis["no such room"]; r.Status != 200 || !strings.Contains(string(r.Raw), `"private"`) {
			t.Errorf("directory visibility of an unknown room: %d %s", r.Status, r.Raw)
		}

		// Those who may act still can, and get told what is wrong.
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": bob.UserID})
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/unban", room), map[string]any{"user_id": eve.UserID})
		alice.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": grace.UserID})
	})
}

// memberships maps user ID to membership in a /members answer.
func memberships(t *testing.T, r mxtest.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	chunk, _ := r.Body["chunk"].([]any)
	for _, e := range chunk {
		ev := e.(map[string]any)
		c := ev["content"].(map[string]any)
		out[ev["state_key"].(string)], _ = c["membership"].(string)
	}
	return out
}

// syncToken is the user's current /sync next_batch.
func syncToken(c *mxtest.Client) string {
	c.T.Helper()
	return c.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
}

// TestReadsFollowHistoryVisibility: /members?at= does not reach back before
// what the caller may read; an invitee gets only the stripped state /sync
// gives them; a former member no longer reads the room's aliases.
func TestReadsFollowHistoryVisibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")
		joinedOnly := []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}

		// /members?at=: bob was in the room and left before carol came.
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "initial_state": joinedOnly}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		sendMsg(alice, room, "m1", map[string]any{"msgtype": "m.text", "body": "bob is here"})
		whileBob := syncToken(alice)
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		at := mxtest.Path("/_matrix/client/v3/rooms/%s/members?at=%s", room, whileBob)
		if got := memberships(t, alice.Must(200, "GET", at, nil)); got[bob.UserID] != "join" {
			t.Errorf("alice, there at the time, sees at=%s: %v", whileBob, got)
		}
		got := memberships(t, carol.Must(200, "GET", at, nil))
		if got[bob.UserID] == "join" || got[carol.UserID] != "join" {
			t.Errorf("carol, a later joiner of a joined-visibility room, sees the members before her: %v", got)
		}
		if got := memberships(t, carol.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/members?at=t1", room), nil)); got[bob.UserID] == "join" {
			t.Errorf("at=t1: %v", got)
		}

		// An invitee of a joined-visibility room: stripped state only.
		private := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "name": "Projet", "topic": "secret topic", "initial_state": joinedOnly}).Str("room_id")
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", private), map[string]any{"user_id": bob.UserID})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", private), map[string]any{})
		sendMsg(alice, private, "p1", map[string]any{"msgtype": "m.text", "body": "before the invite"})
		alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", private), map[string]any{"user_id": dave.UserID})
		for _, p := range []string{
			"/_matrix/client/v3/rooms/%s/state", "/_matrix/client/v3/rooms/%s/members", "/_matrix/client/v3/rooms/%s/joined_members",
			"/_matrix/client/v3/rooms/%s/state/m.room.topic", "/_matrix/client/v3/rooms/%s/aliases",
			"/_matrix/client/v3/rooms/%s/members?at=" + whileBob,
		} {
			dave.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path(p, private), nil)
		}
		for _, e := range dave.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages", private), nil).Body["chunk"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] != "m.room.member" || ev["state_key"] != dave.UserID {
				t.Errorf("the invitee reads %v", ev)
			}
		}
		inv, _ := dave.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Body["rooms"].(map[string]any)["invite"].(map[string]any)[private].(map[string]any)
		for _, e := range inv["invite_state"].(map[string]any)["events"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] == "m.room.member" && ev["state_key"] == bob.UserID {
				t.Errorf("invite_state lists a member: %v", ev)
			}
		}
		// Once joined, the current state is theirs.
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", private), map[string]any{})
		dave.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state", private), nil)

		// A former member no longer reads the aliases; members do, and
		// anyone does in a world_readable room.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/directory/room/%s", "#projet:localhost"), map[string]any{"room_id": private})
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", private), map[string]any{})
		bob.MustErr(403, "M_FORBIDDEN", "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/aliases", private), nil)
		if r := alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/aliases", private), nil); !strings.Contains(string(r.Raw), "#projet:localhost") {
			t.Errorf("a member's aliases: %s", r.Raw)
		}
		// ... and the state as it was when they left, which is theirs.
		bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/state", private), nil)
		open := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "room_alias_name": "ouvert",
			"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}}).Str("room_id")
		if r := carol.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/aliases", open), nil); !strings.Contains(string(r.Raw), "#ouvert:localhost") {
			t.Errorf("world_readable aliases: %s", r.Raw)
		}
	})
}

// TestDirectoryListsOnlyOpenRooms: /publicRooms shows a published room only
// while the public may join it (or knock), or read it (world_readable); a
// room made invite-only drops out, its new name and topic with it.
func TestDirectoryListsOnlyOpenRooms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		anon := mxtest.New(t, srv.URL)
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat", "visibility": "public", "name": "Club"}).Str("room_id")
		listed := func(c *mxtest.Client) string {
			get := c.Must(200, "GET", "/_matrix/client/v3/publicRooms", nil)
			post := alice.Must(200, "POST", "/_matrix/client/v3/publicRooms", map[string]any{})
			if strings.Contains(string(get.Raw), room) != strings.Contains(string(post.Raw), room) {
				t.Fatalf("GET and POST /publicRooms disagree: %s vs %s", get.Raw, post.Raw)
			}
			return string(get.Raw)
		}
		if !strings.Contains(listed(anon), room) {
			t.Fatal("a published public room is not listed")
		}
		state := func(typ string, content map[string]any) {
			alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/%s", room, typ), content)
		}
		state("m.room.join_rules", map[string]any{"join_rule": "invite"})
		state("m.room.name", map[string]any{"name": "Cercle privé"})
		state("m.room.topic", map[string]any{"topic": "ordre du jour confidentiel"})
		if got := listed(anon); strings.Contains(got, room) || strings.Contains(got, "Cercle") || strings.Contains(got, "confidentiel") {
			t.Fatalf("an invite-only room is still listed: %s", got)
		}
		if got := listed(alice); strings.Contains(got, room) {
			t.Fatalf("an invite-only room is listed to its creator: %s", got)
		}
		state("m.room.join_rules", map[string]any{"join_rule": "knock"})
		if !strings.Contains(listed(anon), room) {
			t.Fatal("a knockable published room is not listed")
		}
		state("m.room.join_rules", map[string]any{"join_rule": "invite"})
		state("m.room.history_visibility", map[string]any{"history_visibility": "world_readable"})
		if !strings.Contains(listed(anon), room) {
			t.Fatal("a world_readable published room is not listed")
		}
	})
}

// loginFrom tries a password login as user from a client address (the
// X-Forwarded-For of the loopback proxy Salon trusts by default) and
// returns the status.
func loginFrom(t *testing.T, base, user, password, addr string) int {
	t.Helper()
	body := fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":%q},"password":%q}`, user, password)
	req, err := http.NewRequest("POST", base+"/_matrix/client/v3/login", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestLoginLockoutPerAddress: wrong passwords from one address lock that
// address out of the account (the right password too, from there), while
// the owner logging in from another address gets in.
func TestLoginLockoutPerAddress(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		mxtest.Register(t, srv.URL, "alice", "password alice")
		const attacker, owner = "203.0.113.7", "198.51.100.9"
		limited := false
		for i := 0; i < 30 && !limited; i++ {
			switch code := loginFrom(t, srv.URL, "alice", fmt.Sprintf("guess %d", i), attacker); code {
			case 429:
				limited = true
			case 403:
			default:
				t.Fatalf("wrong password %d: status %d", i, code)
			}
		}
		if !limited {
			t.Fatal("30 wrong passwords from one address were never rate-limited")
		}
		if code := loginFrom(t, srv.URL, "alice", "password alice", attacker); code != 429 {
			t.Fatalf("the locked-out address still tries passwords: %d", code)
		}
		if code := loginFrom(t, srv.URL, "alice", "password alice", owner); code != 200 {
			t.Fatalf("the owner, from another address, is locked out: %d", code)
		}
	})
}

// TestBearerSchemeAnyCase: the Authorization scheme is case-insensitive
// (RFC 9110, section 11.1), so "bearer TOKEN" is a valid access token; other
// schemes carry none.
func TestBearerSchemeAnyCase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		for scheme, want := range map[string]int{"Bearer": 200, "bearer": 200, "BEARER": 200, "bEaReR": 200, "Basic": 401} {
			req, _ := http.NewRequest("GET", srv.URL+"/_matrix/client/v3/account/whoami", nil)
			req.Header.Set("Authorization", scheme+" "+alice.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("Authorization: %s …: status %d, want %d", scheme, res.StatusCode, want)
			}
		}
	})
}

// TestDotLocalpartsRefused: "." and ".." are not user names, through
// registration, its availability check, or `salon user create`.
func TestDotLocalpartsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		anon := mxtest.New(t, srv.URL)
		for _, lp := range []string{".", ".."} {
			anon.MustErr(400, "M_INVALID_USERNAME", "POST", "/_matrix/client/v3/register", map[string]any{"username": lp, "password": "password dots"})
			anon.MustErr(400, "M_INVALID_USERNAME", "GET", "/_matrix/client/v3/register/available?username="+lp, nil)
			if code, out, errs := runCLI(t, "user", "create", lp, "--data-dir", t.TempDir(), "--database", db); code == 0 || !strings.Contains(errs, "may not be") {
				t.Errorf("salon user create %s: exit %d: %s %s", lp, code, out, errs)
			}
		}
		// Dots inside a name are still fine.
		mxtest.Register(t, srv.URL, "a.b", "password dots")
	})
}

// TestDelayedEventsValidatedLikeSends: a delayed event (MSC4140) whose body
// an immediate send refuses is refused when it is scheduled, with the same
// error, instead of being stored and failing when it fires.
func TestDelayedEventsValidatedLikeSends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}).Str("room_id")
		const delay = "?org.matrix.msc4140.delay=60000"
		for name, body := range map[string]string{
			"invalid UTF-8":        "{\"body\":\"caf\xe9\",\"msgtype\":\"m.text\"}",
			"lone surrogate":       `{"body":"\ud800","msgtype":"m.text"}`,
			"duplicate keys":       `{"body":"a","body":"b","msgtype":"m.text"}`,
			"integer out of range": `{"body":"n","msgtype":"m.text","n":9007199254740992}`,
			"fraction":             `{"body":"n","msgtype":"m.text","n":1.5}`,
		} {
			for i, path := range []string{
				mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/%s", room, name),
				mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.example.state/%s", room, name),
			} {
				now := alice.Do("PUT", path, []byte(body))
				later := alice.Do("PUT", path+delay, []byte(body))
				if now.Status != 400 {
					t.Errorf("%s (%d): an immediate send answers %d %s", name, i, now.Status, now.Raw)
				}
				if later.Status != now.Status || later.Errcode() != now.Errcode() {
					t.Errorf("%s (%d): delayed %d %s, immediate %d %s", name, i, later.Status, later.Raw, now.Status, now.Raw)
				}
			}
		}
		list := alice.Must(200, "GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events", nil)
		if n := len(list.Body["delayed_events"].([]any)); n != 0 {
			t.Errorf("%d refused delayed events were stored: %s", n, list.Raw)
		}
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/ok", room)+delay, map[string]any{"msgtype": "m.text", "body": "plus tard"})
	})
}

// TestDataFilesPrivate: everything Salon keeps in its data directory (the
// SQLite database and its -wal and -shm files, keys, secrets, media) is
// readable by its own user only, and so is the directory, even one that
// existed with looser permissions.
func TestDataFilesPrivate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(db, "sqlite:") {
			db = "sqlite:" + filepath.Join(dir, "salon.db")
		}
		srv := startServer(t, db, func(c *Config) { c.DataDir = dir })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
		sendMsg(alice, room, "m1", map[string]any{"msgtype": "m.text", "body": "écrit dans la base"})
		alice.Must(200, "POST", "/_matrix/media/v3/upload?filename=note.txt", []byte("bonjour"))
		alice.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
		var files []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, p)
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %#o: readable by others", p, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(db, "sqlite:") {
			for _, want := range []string{"salon.db", "salon.db-wal", "salon.db-shm"} {
				if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
					t.Errorf("%s: %v (files: %v)", want, err, files)
				}
			}
		}
		t.Logf("data directory: %v", files)
		if len(files) < 4 {
			t.Errorf("the data directory holds only %v", files)
		}
	})
}

// TestMetricsOwnListener: the public listener does not serve metrics; the
// metrics listener (metrics.listen) does, and serves nothing else; "off"
// serves them nowhere. The default is on loopback.
func TestMetricsOwnListener(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		mxtest.Register(t, srv.URL, "alice", "password alice")
		if code, body := get(srv.URL + "/metrics"); code != 404 || strings.Contains(body, "salon_http_requests_total") || strings.Contains(body, "go_goroutines") {
			t.Errorf("the public listener serves /metrics: %d %.200s", code, body)
		}
		if srv.MetricsURL == "" {
			t.Fatal("no metrics listener")
		}
		if code, body := get(srv.MetricsURL + "/metrics"); code != 200 || !strings.Contains(body, "salon_http_requests_total") {
			t.Errorf("the metrics listener: %d %.200s", code, body)
		}
		if code, _ := get(srv.MetricsURL + "/_matrix/client/versions"); code != 404 {
			t.Errorf("the metrics listener serves the client API: %d", code)
		}
		off := startServer(t, db, func(c *Config) { c.Metrics.Listen = "off" })
		if off.MetricsURL != "" {
			t.Errorf("metrics.listen: off still listens at %s", off.MetricsURL)
		}
		if code, _ := get(off.URL + "/metrics"); code != 404 {
			t.Errorf("metrics off: the public listener answers /metrics with %d", code)
		}
	})
	if d := Defaults(); !loopbackHostPort(d.Metrics.Listen) {
		t.Errorf("default metrics.listen %q is not loopback", d.Metrics.Listen)
	}
	for _, bad := range []string{"", "nowhere", "127.0.0.1:8008"} {
		c := Defaults()
		c.Metrics.Listen = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
			t.Errorf("metrics.listen %q: %v", bad, err)
		}
	}
}
