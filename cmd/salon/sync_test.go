package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

type syncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events    []map[string]any `json:"events"`
				Limited   bool             `json:"limited"`
				PrevBatch string           `json:"prev_batch"`
			} `json:"timeline"`
			State     struct{ Events []map[string]any } `json:"state"`
			Ephemeral struct{ Events []map[string]any } `json:"ephemeral"`
			Unread    struct {
				Notifications int `json:"notification_count"`
				Highlights    int `json:"highlight_count"`
			} `json:"unread_notifications"`
		} `json:"join"`
		Invite map[string]any `json:"invite"`
		Leave  map[string]struct {
			Timeline struct {
				Events []map[string]any `json:"events"`
			} `json:"timeline"`
		} `json:"leave"`
	} `json:"rooms"`
	AccountData struct{ Events []map[string]any } `json:"account_data"`
}

func doSync(t *testing.T, c *mxtest.Client, since string, timeout time.Duration, filter string) syncResp {
	t.Helper()
	q := url.Values{"timeout": {itoa(timeout.Milliseconds())}}
	if since != "" {
		q.Set("since", since)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	r := c.Must(200, "GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var s syncResp
	if err := json.Unmarshal(r.Raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func timelineBodies(s syncResp, room string) []string {
	var out []string
	for _, e := range s.Rooms.Join[room].Timeline.Events {
		if e["type"] == "m.room.message" {
			out = append(out, e["content"].(map[string]any)["body"].(string))
		}
	}
	return out
}

func TestSyncOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": "Projet", "invite": []string{bob.UserID}}).Str("room_id")

		// The invite reaches bob's sync.
		s := doSync(t, bob, "", 0, "")
		if _, ok := s.Rooms.Invite[room]; !ok {
			t.Fatalf("invite not in bob's initial sync: %+v", s.Rooms)
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		s = doSync(t, bob, s.NextBatch, 0, "")
		if _, ok := s.Rooms.Join[room]; !ok {
			t.Fatal("joined room not in bob's sync")
		}
		since := s.NextBatch

		// A long-poll wakes as soon as a message is sent.
		var got syncResp
		var elapsed time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			got = doSync(t, bob, since, 20*time.Second, "")
			elapsed = time.Since(start)
		}()
		time.Sleep(300 * time.Millisecond)
		sent := time.Now()
		sendMsg(alice, room, "m1", map[string]any{"msgtype": "m.text", "body": "Bonjour"})
		wg.Wait()
		if b := timelineBodies(got, room); len(b) != 1 || b[0] != "Bonjour" {
			t.Fatalf("long-poll returned %v", b)
		}
		if lag := time.Since(sent); elapsed > 15*time.Second || lag > 2*time.Second {
			t.Fatalf("long-poll woke %s after the send", lag)
		}
		t.Logf("send→sync wake-up: %s", time.Since(sent))

		// Typing and receipts arrive as ephemeral events; the unread count follows the receipt.
		since = got.NextBatch
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/typing/%s", room, alice.UserID), map[string]any{"typing": true, "timeout": 10000})
		s = doSync(t, bob, since, 5*time.Second, "")
		eph, _ := json.Marshal(s.Rooms.Join[room].Ephemeral.Events)
		if !strings.Contains(string(eph), "m.typing") || !strings.Contains(string(eph), alice.UserID) {
			t.Fatalf("typing not synced: %s", eph)
		}
		m2 := sendMsg(alice, room, "m2", map[string]any{"msgtype": "m.text", "body": "Tu es là ?"})
		s = doSync(t, bob, s.NextBatch, 5*time.Second, "")
		if n := s.Rooms.Join[room].Unread.Notifications; n < 2 {
			t.Fatalf("unread notifications = %d, want ≥ 2 (a DM-like room notifies every message)", n)
		}
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/receipt/m.read/%s", room, m2), map[string]any{})
		s = doSync(t, bob, s.NextBatch, 5*time.Second, "")
		if n := s.Rooms.Join[room].Unread.Notifications; n != 0 {
			t.Fatalf("unread after receipt = %d", n)
		}
		s2 := doSync(t, alice, "", 0, "")
		rc, _ := json.Marshal(s2.Rooms.Join[room].Ephemeral.Events)
		if !strings.Contains(string(rc), "m.receipt") || !strings.Contains(string(rc), m2) {
			t.Fatalf("alice does not see bob's receipt: %s", rc)
		}

		// A mention highlights.
		sendMsg(alice, room, "m3", map[string]any{"msgtype": "m.text", "body": "bob: regarde",
			"m.mentions": map[string]any{"user_ids": []string{bob.UserID}}})
		s = doSync(t, bob, s.NextBatch, 5*time.Second, "")
		if h := s.Rooms.Join[room].Unread.Highlights; h != 1 {
			t.Fatalf("highlights = %d", h)
		}

		// Account data.
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/user/%s/account_data/m.direct", alice.UserID), map[string]any{bob.UserID: []string{room}})
		s2 = doSync(t, alice, s2.NextBatch, 5*time.Second, "")
		ad, _ := json.Marshal(s2.AccountData.Events)
		if !strings.Contains(string(ad), "m.direct") {
			t.Fatalf("account data not synced: %s", ad)
		}

		// A stored filter with a timeline limit: limited + prev_batch that /messages accepts.
		for i := 0; i < 5; i++ {
			sendMsg(alice, room, "f"+itoa(int64(i)), map[string]any{"msgtype": "m.text", "body": "n" + itoa(int64(i))})
		}
		fid := bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/user/%s/filter", bob.UserID), map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 2}}}).Str("filter_id")
		bob.MustErr(400, "M_BAD_JSON", "POST", mxtest.Path("/_matrix/client/v3/user/%s/filter", bob.UserID), map[string]any{"bogus_field": 1})
		s = doSync(t, bob, "", 0, fid)
		j := s.Rooms.Join[room]
		if len(j.Timeline.Events) != 2 || !j.Timeline.Limited || j.Timeline.PrevBatch == "" {
			t.Fatalf("limited timeline = %d events, limited %v, prev %q", len(j.Timeline.Events), j.Timeline.Limited, j.Timeline.PrevBatch)
		}
		back := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=3&from=", room)+j.Timeline.PrevBatch, nil)
		if b := bodies(back); len(b) != 3 || b[0] != "n2" {
			t.Fatalf("back-pagination from prev_batch = %v", b)
		}

		// Leaving: the room moves to leave and later messages never reach bob.
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
		s = doSync(t, bob, s.NextBatch, 5*time.Second, "")
		if _, ok := s.Rooms.Leave[room]; !ok {
			t.Fatal("left room not in rooms.leave")
		}
		sendMsg(alice, room, "after", map[string]any{"msgtype": "m.text", "body": "secret après départ"})
		s = doSync(t, bob, s.NextBatch, 500*time.Millisecond, "")
		raw, _ := json.Marshal(s)
		if strings.Contains(string(raw), "secret après départ") {
			t.Fatal("a user who left received a later message")
		}
		bad := bob.Do("GET", "/_matrix/client/v3/sync?since=garbage", nil)
		if bad.Status != 400 || bad.Errcode() != "M_INVALID_PARAM" {
			t.Fatalf("bad since: %d %s", bad.Status, bad.Raw)
		}
	})
}

// TestSyncHonoursHistoryVisibility: a newcomer's first sync of a room with
// joined visibility shows nothing from before they joined.
func TestSyncHonoursHistoryVisibility(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}}).Str("room_id")
	sendMsg(alice, room, "old", map[string]any{"msgtype": "m.text", "body": "avant ton arrivée"})
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	s := doSync(t, bob, "", 0, "")
	raw, _ := json.Marshal(s)
	if strings.Contains(string(raw), "avant ton arrivée") {
		t.Fatal("sync shows history from before joining a joined-visibility room")
	}
}

// TestSIGTERMEndsLongPolls: a /sync long-poll in flight does not hold the
// shutdown back; the process exits promptly and cleanly.
func TestSIGTERMEndsLongPolls(t *testing.T) {
	p := startProcess(t, "--data-dir", t.TempDir())
	c := mxtest.Register(t, p.url, "alice", "password alice")
	first := doSync(t, c, "", 0, "")
	done := make(chan mxtest.Response, 1)
	go func() {
		done <- c.Do("GET", "/_matrix/client/v3/sync?timeout=60000&since="+first.NextBatch, nil)
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.Status != 200 || r.Str("next_batch") == "" {
		t.Fatalf("long-poll at shutdown: %d %s", r.Status, r.Raw)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("shutdown took %s with a long-poll open", el)
	}
}
