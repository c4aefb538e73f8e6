package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// fakeGateway is a push gateway on loopback that records notifications
// and rejects the pushkeys it is told to.
type fakeGateway struct {
	mu       sync.Mutex
	got      []map[string]any
	reject   map[string]bool
	srv      *httptest.Server
	received chan struct{}
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{reject: map[string]bool{}, received: make(chan struct{}, 100)}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/push/v1/notify" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Notification map[string]any `json:"notification"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("gateway got %s", b)
		}
		g.mu.Lock()
		g.got = append(g.got, body.Notification)
		var rejected []string
		for _, d := range body.Notification["devices"].([]any) {
			if key := d.(map[string]any)["pushkey"].(string); g.reject[key] {
				rejected = append(rejected, key)
			}
		}
		g.mu.Unlock()
		g.received <- struct{}{}
		_ = json.NewEncoder(w).Encode(map[string]any{"rejected": append([]string{}, rejected...)})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// waitFor returns the notification for event id ("" for any) and
// pushkey, failing after a generous deadline.
func (g *fakeGateway) waitFor(t *testing.T, eventID, pushkey string) map[string]any {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		g.mu.Lock()
		for _, n := range g.got {
			d := n["devices"].([]any)[0].(map[string]any)
			if (eventID == "" || n["event_id"] == eventID) && d["pushkey"] == pushkey {
				g.mu.Unlock()
				return n
			}
		}
		g.mu.Unlock()
		select {
		case <-g.received:
		case <-deadline:
			t.Fatalf("no notification of %s for %s", eventID, pushkey)
		}
	}
}

// TestPushGateway: a message that notifies reaches each of the user's
// http pushers at their gateway (full format with content, event_id_only
// without); the sender's own messages do not; a rejected pushkey's pusher
// is removed.
func TestPushGateway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		gw := newFakeGateway(t)
		srv := startServer(t, db, func(c *Config) { c.Push.AllowPrivateGateways = true })
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		pusher := func(key, format string) map[string]any {
			data := map[string]any{"url": gw.srv.URL + "/_matrix/push/v1/notify", "custom": "kept"}
			if format != "" {
				data["format"] = format
			}
			return map[string]any{"kind": "http", "app_id": "org.example.app", "pushkey": key,
				"app_display_name": "Example", "device_display_name": "Phone", "lang": "en", "data": data}
		}
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", pusher("full-key", ""))
		alice.Must(200, "POST", "/_matrix/client/v3/pushers/set", pusher("idonly-key", "event_id_only"))
		gw.mu.Lock()
		gw.reject["idonly-key"] = true
		gw.mu.Unlock()
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		own := sendMsg(alice, room, "a1", map[string]any{"msgtype": "m.text", "body": "mine"})
		msg := sendMsg(bob, room, "b1", map[string]any{"msgtype": "m.text", "body": "ping"})

		full := gw.waitFor(t, msg, "full-key")
		if full["room_id"] != room || full["sender"] != bob.UserID || full["type"] != "m.room.message" ||
			full["content"].(map[string]any)["body"] != "ping" || full["prio"] != "high" {
			t.Fatalf("full notification: %v", full)
		}
		dev := full["devices"].([]any)[0].(map[string]any)
		data := dev["data"].(map[string]any)
		if dev["app_id"] != "org.example.app" || data["url"] != nil || data["custom"] != "kept" || dev["tweaks"].(map[string]any)["sound"] == nil {
			t.Fatalf("device: %v", dev)
		}
		if full["counts"].(map[string]any)["unread"].(float64) < 1 {
			t.Fatalf("counts: %v", full["counts"])
		}
		short := gw.waitFor(t, msg, "idonly-key")
		for _, k := range []string{"content", "sender", "type"} {
			if _, ok := short[k]; ok {
				t.Fatalf("event_id_only notification has %s: %v", k, short)
			}
		}
		// The gateway rejected idonly-key: its pusher goes.
		deadline := time.Now().Add(60 * time.Second)
		for {
			keys := pusherKeys(alice)
			if len(keys) == 1 && keys[0] == "full-key" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rejected pusher kept: %v", keys)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// An invitee is pushed their invite, and nothing else of the room.
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		carol.Must(200, "POST", "/_matrix/client/v3/pushers/set", pusher("carol-key", ""))
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/invite", room), map[string]any{"user_id": carol.UserID})
		invite := gw.waitFor(t, "", "carol-key")
		inviteID := invite["event_id"]
		if invite["user_is_target"] != true || invite["type"] != "m.room.member" || invite["content"].(map[string]any)["membership"] != "invite" {
			t.Fatalf("invite notification: %v", invite)
		}
		// Alice's own message was never pushed to her, and carol got
		// nothing of the room but her invite.
		msg2 := sendMsg(bob, room, "b2", map[string]any{"msgtype": "m.text", "body": "again"})
		gw.waitFor(t, msg2, "full-key")
		gw.mu.Lock()
		defer gw.mu.Unlock()
		for _, n := range gw.got {
			if n["event_id"] == own {
				t.Fatalf("own message pushed: %v", n)
			}
			if key := n["devices"].([]any)[0].(map[string]any)["pushkey"]; key == "carol-key" && n["event_id"] != inviteID {
				t.Fatalf("invitee pushed a room event: %v", n)
			}
		}
	})
}
