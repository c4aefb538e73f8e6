package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func sendToDevice(c *mxtest.Client, status int, errcode, evType, txn string, messages map[string]any) {
	c.T.Helper()
	path := mxtest.Path("/_matrix/client/v3/sendToDevice/%s/%s", evType, txn)
	if errcode == "" {
		c.Must(status, "PUT", path, map[string]any{"messages": messages})
		return
	}
	c.MustErr(status, errcode, "PUT", path, map[string]any{"messages": messages})
}

// seqs lists the "seq" of the to-device events of a sync.
func seqs(s keysSync) []int {
	var out []int
	for _, e := range s.ToDevice.Events {
		if n, ok := e.Content["seq"].(float64); ok {
			out = append(out, int(n))
		}
	}
	return out
}

// TestToDeviceOverHTTP: messages reach the named device, or all of them,
// in the order sent, at least once (until the client syncs past them, a
// restart included); a long-poll wakes for them; retransmissions are not
// queued twice; bad requests queue nothing.
func TestToDeviceOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		bob2 := mxtest.Login(t, srv.URL, "bob", "password bob")
		tok := syncKeys(t, bob, "", 0).NextBatch

		// A long-poll wakes for a message.
		woke := make(chan keysSync, 1)
		go func() { woke <- syncKeys(t, bob, tok, 30*time.Second) }()
		waitPolling(t, srv, bob.UserID)
		sendToDevice(alice, 200, "", "m.test", "t0", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 0}}})
		var first keysSync
		select {
		case first = <-woke:
		case <-time.After(30 * time.Second):
			t.Fatal("long-poll did not wake for a to-device message")
		}
		if got := seqs(first); len(got) != 1 || got[0] != 0 || first.ToDevice.Events[0].Sender != alice.UserID || first.ToDevice.Events[0].Type != "m.test" {
			t.Fatalf("first message: %+v", first.ToDevice)
		}
		// The same transaction again: answered, not queued twice; another
		// body under the same ID is refused.
		sendToDevice(alice, 200, "", "m.test", "t0", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 0}}})
		sendToDevice(alice, 400, "M_INVALID_PARAM", "m.test", "t0", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 99}}})

		// 150 messages in order, some to every device ("*"): more than one
		// sync carries, so the rest follow in the next.
		for i := 1; i <= 150; i++ {
			target := bob.DeviceID
			if i%10 == 0 {
				target = "*"
			}
			sendToDevice(alice, 200, "", "m.test", fmt.Sprint("t", i), map[string]any{bob.UserID: map[string]any{target: map[string]any{"seq": i}}})
		}
		// At least once: syncing again from the old token gives the first
		// message again, then the rest.
		var all []int
		since := tok
		for len(all) < 151 {
			s := syncKeys(t, bob, since, 0)
			if len(s.ToDevice.Events) == 0 {
				t.Fatalf("sync ended early after %d messages: %v", len(all), all)
			}
			all = append(all, seqs(s)...)
			since = s.NextBatch
		}
		for i, n := range all {
			if n != i {
				t.Fatalf("messages out of order or lost: %v", all)
			}
		}
		if s := syncKeys(t, bob, since, 0); len(s.ToDevice.Events) != 0 {
			t.Fatalf("delivered messages came again: %v", seqs(s))
		}
		// bob2 got only the "*" ones.
		var b2 []int
		since2 := ""
		for {
			s := syncKeys(t, bob2, since2, 0)
			if len(s.ToDevice.Events) == 0 {
				break
			}
			b2 = append(b2, seqs(s)...)
			since2 = s.NextBatch
		}
		if len(b2) != 15 || b2[0] != 10 || b2[14] != 150 {
			t.Fatalf("bob's second device got %v", b2)
		}

		// Not acknowledged before a restart: still there after it.
		sendToDevice(alice, 200, "", "m.test", "r1", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 1000}}})
		before := syncKeys(t, bob, since, 0)
		if got := seqs(before); len(got) != 1 || got[0] != 1000 {
			t.Fatalf("before restart: %v", got)
		}
		srv.Stop()
		srv = startServer(t, db)
		bob.Base, alice.Base = srv.URL, srv.URL
		again := syncKeys(t, bob, since, 0)
		if got := seqs(again); len(got) != 1 || got[0] != 1000 {
			t.Fatalf("after restart, with the token from before the message: %v", got)
		}
		sendToDevice(alice, 200, "", "m.test", "r2", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 1001}}})
		next := syncKeys(t, bob, again.NextBatch, 0)
		if got := seqs(next); len(got) != 1 || got[0] != 1001 {
			t.Fatalf("after restart, next message: %v (token %s)", got, again.NextBatch)
		}

		// Bad requests queue nothing.
		big := strings.Repeat("x", 100<<10)
		sendToDevice(alice, 413, "M_TOO_LARGE", "m.test", "big", map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"blob": big}}})
		many := map[string]any{}
		for i := range 10_000 {
			many[fmt.Sprintf("@u%d:localhost", i)] = map[string]any{"*": map[string]any{}}
		}
		many[bob.UserID] = map[string]any{"*": map[string]any{"seq": -1}}
		sendToDevice(alice, 413, "M_TOO_LARGE", "m.test", "many", many)
		devs := map[string]any{}
		for i := range 10_000 {
			devs[fmt.Sprint("DEV", i)] = map[string]any{"seq": -1}
		}
		devs[bob.DeviceID] = map[string]any{"seq": -1}
		sendToDevice(alice, 413, "M_TOO_LARGE", "m.test", "manydevs", map[string]any{bob.UserID: devs})
		sendToDevice(alice, 400, "M_BAD_JSON", "m.test", "notobj", map[string]any{bob.UserID: map[string]any{bob.DeviceID: "text"}})
		s := syncKeys(t, bob, next.NextBatch, 0)
		if got := seqs(s); len(got) != 0 {
			t.Fatalf("bad requests queued messages: %v", got)
		}

		// A deleted device's queue goes with it, and new messages to it
		// are dropped.
		sendToDevice(alice, 200, "", "m.test", "d1", map[string]any{bob.UserID: map[string]any{bob2.DeviceID: map[string]any{"seq": 2000}}})
		bob2.Base = srv.URL
		bob2.Must(200, "POST", "/_matrix/client/v3/logout", map[string]any{})
		sendToDevice(alice, 200, "", "m.test", "d2", map[string]any{bob.UserID: map[string]any{bob2.DeviceID: map[string]any{"seq": 2001}}})
		bob3 := mxtest.New(t, srv.URL)
		r := bob3.Must(200, "POST", "/_matrix/client/v3/login", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "bob"},
			"password": "password bob", "device_id": bob2.DeviceID,
		})
		bob3.Token, bob3.UserID, bob3.DeviceID = r.Str("access_token"), r.Str("user_id"), r.Str("device_id")
		if got := seqs(syncKeys(t, bob3, "", 0)); len(got) != 0 {
			t.Fatalf("a re-login with a deleted device's ID got its old messages: %v", got)
		}
	})
}

// TestDehydratedDeviceOverHTTP: bob puts a dehydrated device, alice sends
// it a message, bob's next login reads it through the events endpoint
// and the device can be replaced and deleted.
func TestDehydratedDeviceOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		v := alice.Must(200, "GET", "/_matrix/client/versions", nil)
		if !strings.Contains(string(v.Raw), `"org.matrix.msc3814":true`) {
			t.Fatalf("versions: %s", v.Raw)
		}
		const base = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"
		bob.MustErr(404, "M_NOT_FOUND", "GET", base, nil)
		dh := &mxtest.Client{T: t, UserID: bob.UserID, DeviceID: "DEHYDRATED1"}
		d := newE2EDevice(t, dh)
		body := map[string]any{
			"device_id": "DEHYDRATED1", "device_data": map[string]any{"algorithm": "test", "ciphertext": "opaque"},
			"initial_device_display_name": "dehydrated", "device_keys": d.deviceKeys(t), "one_time_keys": d.otks(t, "D", 3),
		}
		bob.MustErr(400, "M_BAD_JSON", "PUT", base, map[string]any{"device_id": "X", "device_data": "not an object"})
		bob.MustErr(400, "M_INVALID_PARAM", "PUT", base, map[string]any{"device_id": bob.DeviceID, "device_data": map[string]any{}, "device_keys": d.deviceKeys(t)})
		bob.Must(200, "PUT", base, body)
		got := bob.Must(200, "GET", base, nil)
		if got.Str("device_id") != "DEHYDRATED1" || !strings.Contains(string(got.Raw), "opaque") {
			t.Fatalf("GET: %s", got.Raw)
		}
		// Others see its keys and can claim its one-time keys.
		c := alice.Must(200, "POST", "/_matrix/client/v3/keys/claim", map[string]any{"one_time_keys": map[string]any{bob.UserID: map[string]string{"DEHYDRATED1": "signed_curve25519"}}})
		if !strings.Contains(string(c.Raw), "signed_curve25519:D") {
			t.Fatalf("claim: %s", c.Raw)
		}
		for i := range 3 {
			sendToDevice(alice, 200, "", "m.room.encrypted", fmt.Sprint("dh", i), map[string]any{bob.UserID: map[string]any{"*": map[string]any{"seq": i}}})
		}
		// Bob logs in on a new device and reads the dehydrated device's
		// messages in batches.
		bobNew := mxtest.Login(t, srv.URL, "bob", "password bob")
		r := bobNew.Must(200, "POST", base+"/DEHYDRATED1/events", map[string]any{})
		if !strings.Contains(string(r.Raw), `"seq":0`) || !strings.Contains(string(r.Raw), `"seq":2`) {
			t.Fatalf("events: %s", r.Raw)
		}
		last := bobNew.Must(200, "POST", base+"/DEHYDRATED1/events", map[string]any{"next_batch": r.Str("next_batch")})
		if strings.Contains(string(last.Raw), `"seq"`) || last.Body["next_batch"] != nil {
			t.Fatalf("events after the last batch: %s", last.Raw)
		}
		// Nothing was deleted (MSC3814): an interrupted rehydration starts
		// again, here as matrix-js-sdk asks (GET with from).
		again := bobNew.Must(200, "GET", base+"/DEHYDRATED1/events", nil)
		if !strings.Contains(string(again.Raw), `"seq":0`) {
			t.Fatalf("events again: %s", again.Raw)
		}
		if g := bobNew.Must(200, "GET", base+"/DEHYDRATED1/events?from="+again.Str("next_batch"), nil); strings.Contains(string(g.Raw), `"seq"`) {
			t.Fatalf("GET after the last batch: %s", g.Raw)
		}
		alice.MustErr(404, "M_NOT_FOUND", "POST", base+"/DEHYDRATED1/events", map[string]any{})
		// Deleting it removes its device and keys.
		del := bob.Must(200, "DELETE", base, nil)
		if del.Str("device_id") != "DEHYDRATED1" {
			t.Fatalf("DELETE: %s", del.Raw)
		}
		q := alice.Must(200, "POST", "/_matrix/client/v3/keys/query", map[string]any{"device_keys": map[string]any{bob.UserID: []string{}}})
		if strings.Contains(string(q.Raw), "DEHYDRATED1") {
			t.Fatalf("deleted dehydrated device still has keys: %s", q.Raw)
		}
		bob.MustErr(404, "M_NOT_FOUND", "GET", base, nil)
	})
}
