package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func callKey(c *mxtest.Client) string { return "_" + c.UserID + "_" + c.DeviceID + "_m.call" }

func callMember(c *mxtest.Client) map[string]any {
	return map[string]any{"application": "m.call", "call_id": "", "scope": "m.room", "device_id": c.DeviceID,
		"expires": 14400000, "focus_active": map[string]any{"type": "livekit", "focus_selection": "oldest_membership"},
		"foci_preferred": []any{}, "created_ts": time.Now().UnixMilli()}
}

// waitState polls a state event until cond holds or the deadline passes.
func waitState(t *testing.T, c *mxtest.Client, path string, within time.Duration, cond func(mxtest.Response) bool) mxtest.Response {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := c.Do("GET", path, nil)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: condition not met within %s; last %d %s", path, within, r.Status, r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCallMembershipAndDelayedEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		state := func(key string) string {
			return mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.matrix.msc3401.call.member/%s", room, key)
		}

		// A member (power level 0) joins the call; nobody can write another's membership.
		bob.Must(200, "PUT", state(callKey(bob)), callMember(bob))
		for _, forged := range []string{callKey(alice), "_" + alice.UserID + "_X_m.call", alice.UserID + "_" + alice.DeviceID + "_m.call", alice.UserID, "_@alice:localhost.evil_D_m.call"} {
			bob.MustErr(403, "M_FORBIDDEN", "PUT", state(forged), map[string]any{})
		}
		// Bob schedules his own leave (delayed), as Element Call does.
		v := bob.Must(200, "GET", "/_matrix/client/versions", nil)
		if v.Body["unstable_features"].(map[string]any)["org.matrix.msc4140"] != true {
			t.Fatalf("msc4140 not advertised: %s", v.Raw)
		}
		d := bob.Must(200, "PUT", state(callKey(bob))+"?org.matrix.msc4140.delay=1500", map[string]any{})
		delayID := d.Str("delay_id")
		if delayID == "" || d.Body["event_id"] != nil {
			t.Fatalf("delayed answer = %s", d.Raw)
		}
		list := bob.Must(200, "GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events", nil)
		if !strings.Contains(string(list.Raw), delayID) {
			t.Fatalf("list = %s", list.Raw)
		}
		// Heartbeats keep it from firing.
		for i := 0; i < 4; i++ {
			time.Sleep(500 * time.Millisecond)
			bob.Must(200, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"+delayID, map[string]any{"action": "restart"})
		}
		if r := alice.Must(200, "GET", state(callKey(bob)), nil); r.Str("application") != "m.call" {
			t.Fatalf("membership gone while heartbeating: %s", r.Raw)
		}
		// Alice cannot look at Bob's delayed event; acting on it takes its
		// delay ID, the capability (TestDelayedEventActionsByDelayID).
		alice.MustErr(404, "M_NOT_FOUND", "GET", "/_matrix/client/v1/delayed_events/"+delayID, nil)
		// The heartbeat stops (client crashed): the leave fires.
		start := time.Now()
		waitState(t, alice, state(callKey(bob)), 5*time.Second, func(r mxtest.Response) bool { return r.Status == 200 && len(r.Body) == 0 })
		if el := time.Since(start); el < time.Second {
			t.Fatalf("fired after %s, before its delay", el)
		}
		bob.MustErr(404, "M_NOT_FOUND", "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"+delayID, map[string]any{"action": "restart"})

		// cancel and send.
		msgPath := mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/", room)
		c := bob.Must(200, "PUT", msgPath+"d1?org.matrix.msc4140.delay=300", map[string]any{"msgtype": "m.text", "body": "annulé"}).Str("delay_id")
		bob.Must(200, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"+c, map[string]any{"action": "cancel"})
		s := bob.Must(200, "PUT", msgPath+"d2?org.matrix.msc4140.delay=3600000", map[string]any{"msgtype": "m.text", "body": "envoyé"}).Str("delay_id")
		bob.Must(200, "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"+s+"/send", map[string]any{})
		time.Sleep(500 * time.Millisecond)
		got := strings.Join(bodies(alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=20", room), nil)), "|")
		if got != "envoyé" {
			t.Fatalf("messages = %q", got)
		}

		// Bad delays.
		for _, q := range []string{"0", "-5", "abc", "1.5", ""} {
			bob.MustErr(400, "M_INVALID_PARAM", "PUT", msgPath+"bad?org.matrix.msc4140.delay="+q, map[string]any{"body": "x"})
		}
		r := bob.MustErr(400, "M_MAX_DELAY_EXCEEDED", "PUT", msgPath+"huge?org.matrix.msc4140.delay=999999999999", map[string]any{"body": "x"})
		if r.Body["org.matrix.msc4140.max_delay"] == nil {
			t.Fatalf("no max_delay: %s", r.Raw)
		}
		bob.MustErr(400, "M_INVALID_PARAM", "POST", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"+s, map[string]any{"action": "explode"})
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		eve.MustErr(403, "M_FORBIDDEN", "PUT", msgPath+"e1?org.matrix.msc4140.delay=1000", map[string]any{"body": "x"})
	})
}

// TestDelayedEventActionsByDelayID: MSC4140's unstable management
// endpoints act for whoever holds the delay ID, with no access token (as
// Synapse serves them, and as a JWT service needs to act for a client),
// rate limited per delay ID, and so do the v1 ones; an unknown action in
// the path is an unknown endpoint; a retried delayed
// send with the same transaction ID gets the same delay_id and schedules
// nothing new. Both backends.
func TestDelayedEventActionsByDelayID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		anon := mxtest.New(t, srv.URL)
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		unstable := "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"
		msgPath := mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/", room)
		count := func() int {
			return len(bob.Must(200, "GET", unstable[:len(unstable)-1], nil).Body["delayed_events"].([]any))
		}

		// Transaction replay: the retry (without a body, as Complement
		// sends it) gets the first answer.
		id := bob.Must(200, "PUT", msgPath+"t1?org.matrix.msc4140.delay=3600000", map[string]any{"msgtype": "m.text", "body": "plus tard"}).Str("delay_id")
		again := bob.Must(200, "PUT", msgPath+"t1?org.matrix.msc4140.delay=3600000", nil).Str("delay_id")
		if again != id || count() != 1 {
			t.Fatalf("retry gave %q (first %q), %d scheduled", again, id, count())
		}
		// Another transaction ID is another event.
		other := bob.Must(200, "PUT", msgPath+"t2?org.matrix.msc4140.delay=3600000", map[string]any{"msgtype": "m.text", "body": "autre"}).Str("delay_id")
		if other == id || count() != 2 {
			t.Fatalf("second transaction: %q, %d scheduled", other, count())
		}

		// No access token: the delay ID is enough.
		anon.Must(200, "POST", unstable+id+"/restart", map[string]any{})
		anon.Must(200, "POST", unstable+other, map[string]any{"action": "cancel"})
		anon.Must(200, "POST", unstable+id+"/send", map[string]any{})
		waitMessages := func(want string) {
			deadline := time.Now().Add(10 * time.Second)
			for {
				got := strings.Join(bodies(alice.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=20", room), nil)), "|")
				if got == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("messages = %q, want %q", got, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		waitMessages("plus tard")
		if count() != 0 {
			t.Fatalf("%d still scheduled after send and cancel", count())
		}
		anon.MustErr(404, "M_NOT_FOUND", "POST", unstable+id+"/restart", map[string]any{})
		anon.MustErr(404, "M_NOT_FOUND", "POST", unstable+"abc/cancel", map[string]any{})
		anon.MustErr(404, "M_UNRECOGNIZED", "POST", unstable+"abc/oops", map[string]any{})
		anon.MustErr(400, "M_INVALID_PARAM", "POST", unstable+"abc", map[string]any{"action": "oops"})
		anon.MustErr(400, "M_MISSING_PARAM", "POST", unstable+"abc", map[string]any{})

		// The v1 paths too, as the MSC's current text has them.
		v1 := bob.Must(200, "PUT", msgPath+"t3?org.matrix.msc4140.delay=3600000", map[string]any{"body": "x"}).Str("delay_id")
		anon.Must(200, "POST", "/_matrix/client/v1/delayed_events/"+v1+"/restart", map[string]any{})
		alice.Must(200, "POST", "/_matrix/client/v1/delayed_events/"+v1+"/restart", map[string]any{})
		anon.MustErr(404, "M_NOT_FOUND", "POST", "/_matrix/client/v1/delayed_events/abc/restart", map[string]any{})
		anon.MustErr(404, "M_UNRECOGNIZED", "POST", "/_matrix/client/v1/delayed_events/abc/oops", map[string]any{})

		// The scheduling endpoint of the MSC's current text: the body
		// carries delay, state_key and content (delay_ms, an earlier
		// text's name, too); a retry replays. (Alice created the room: she
		// may set its topic.)
		dpath := mxtest.Path("/_matrix/client/v3/rooms/%s/delayed_event/m.room.topic/", room)
		st := alice.Must(200, "PUT", dpath+"s1", map[string]any{"delay": 200, "state_key": "", "content": map[string]any{"topic": "plus tard"}}).Str("delay_id")
		if again := alice.Must(200, "PUT", dpath+"s1", nil).Str("delay_id"); again != st {
			t.Fatalf("delayed_event retry: %q, first %q", again, st)
		}
		waitState(t, alice, mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.topic/", room), 10*time.Second, func(r mxtest.Response) bool {
			return r.Status == 200 && r.Str("topic") == "plus tard"
		})
		alice.MustErr(400, "M_MISSING_PARAM", "PUT", dpath+"s2", map[string]any{"content": map[string]any{}})
		alice.MustErr(400, "M_INVALID_PARAM", "PUT", dpath+"s3", map[string]any{"delay_ms": 0, "content": map[string]any{}})
		alice.MustErr(400, "M_BAD_JSON", "PUT", dpath+"s4", map[string]any{"delay_ms": 10, "content": "x"})
		r := alice.MustErr(400, "M_MAX_DELAY_EXCEEDED", "PUT", dpath+"s5", map[string]any{"delay": 999999999999, "state_key": "", "content": map[string]any{}})
		if r.Body["max_delay"] == nil {
			t.Fatalf("no max_delay: %s", r.Raw)
		}
		// Its unstable path.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/unstable/org.matrix.msc4140/rooms/%s/delayed_event/m.room.topic/s6", room),
			map[string]any{"delay": 3600000, "state_key": "", "content": map[string]any{"topic": "bien plus tard"}})

		// Rate limited per delay ID.
		limited := false
		for i := 0; i < 60 && !limited; i++ {
			r := anon.Do("POST", unstable+v1+"/restart", map[string]any{})
			switch {
			case r.Status == 429 && r.Errcode() == "M_LIMIT_EXCEEDED":
				limited = true
			case r.Status != 200:
				t.Fatalf("restart %d: %d %s", i, r.Status, r.Raw)
			}
		}
		if !limited {
			t.Fatal("60 restarts of one delay ID in a row were not rate limited")
		}
	})
}

func TestDelayedEventCap(t *testing.T) {
	forEachBackend(t, testDelayedEventCap)
}

func testDelayedEventCap(t *testing.T, db string) {
	srv := startServer(t, db, func(c *Config) { c.MatrixRTC.MaxDelayedPerUser = 5 })
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
	p := mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/", room)
	for i := 0; i < 5; i++ {
		alice.Must(200, "PUT", fmt.Sprintf("%sc%d?org.matrix.msc4140.delay=3600000", p, i), map[string]any{"body": "x"})
	}
	alice.MustErr(429, "M_LIMIT_EXCEEDED", "PUT", p+"c6?org.matrix.msc4140.delay=3600000", map[string]any{"body": "x"})
}

// TestDelayedEventsSurviveRestart: a delayed event whose time passed while
// the server was down fires at start; one still pending fires on time.
func TestDelayedEventsSurviveRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dir := t.TempDir()
		p := startProcess(t, "--data-dir", dir, "--database", db)
		alice := mxtest.Register(t, p.url, "alice", "password alice")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
		msg := mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/", room)
		alice.Must(200, "PUT", msg+"a?org.matrix.msc4140.delay=800", map[string]any{"msgtype": "m.text", "body": "pendant la panne"})
		// The server counts the delay from when it got the request, in
		// whole milliseconds: no earlier than this.
		scheduled := time.Now().Truncate(time.Millisecond)
		alice.Must(200, "PUT", msg+"b?org.matrix.msc4140.delay=6000", map[string]any{"msgtype": "m.text", "body": "après le redémarrage"})
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		time.Sleep(time.Second)
		p2 := startProcess(t, "--data-dir", dir, "--database", db)
		alice.Base = p2.url
		path := mxtest.Path("/_matrix/client/v3/rooms/%s/messages?limit=20", room)
		r := waitState(t, alice, path, 3*time.Second, func(r mxtest.Response) bool { return len(bodies(r)) == 1 })
		if bodies(r)[0] != "pendant la panne" {
			t.Fatalf("first fired: %v", bodies(r))
		}
		waitState(t, alice, path, 10*time.Second, func(r mxtest.Response) bool { return len(bodies(r)) == 2 })
		if el := time.Since(scheduled); el < 6*time.Second {
			t.Fatalf("second fired after %s, before its 6 s delay", el)
		}
	})
}

func TestOpenID(t *testing.T) {
	forEachBackend(t, testOpenID)
}

func testOpenID(t *testing.T, db string) {
	srv := startServer(t, db)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	tok := alice.Must(200, "POST", mxtest.Path("/_matrix/client/v3/user/%s/openid/request_token", alice.UserID), map[string]any{})
	if tok.Str("token_type") != "Bearer" || tok.Str("matrix_server_name") != "localhost" || tok.Body["expires_in"].(float64) <= 0 {
		t.Fatalf("openid = %s", tok.Raw)
	}
	anon := mxtest.New(t, srv.URL)
	info := anon.Must(200, "GET", "/_matrix/federation/v1/openid/userinfo?access_token="+tok.Str("access_token"), nil)
	if info.Str("sub") != alice.UserID {
		t.Fatalf("userinfo = %s", info.Raw)
	}
	anon.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/federation/v1/openid/userinfo?access_token=salon_oid_forged", nil)
	anon.MustErr(401, "M_UNKNOWN_TOKEN", "GET", "/_matrix/federation/v1/openid/userinfo?access_token="+alice.Token, nil)
	bob.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/user/%s/openid/request_token", alice.UserID), map[string]any{})
}
