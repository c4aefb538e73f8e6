package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

type ssE2EE struct {
	ToDevice *struct {
		NextBatch string `json:"next_batch"`
		Events    []struct {
			Sender  string         `json:"sender"`
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	} `json:"to_device"`
	E2EE *struct {
		DeviceLists *struct {
			Changed []string `json:"changed"`
			Left    []string `json:"left"`
		} `json:"device_lists"`
		OTKCount  map[string]int `json:"device_one_time_keys_count"`
		Fallbacks []string       `json:"device_unused_fallback_key_types"`
	} `json:"e2ee"`
}

func e2eeExt(t *testing.T, r ssResp) ssE2EE {
	t.Helper()
	var out ssE2EE
	b, _ := json.Marshal(r.Extensions)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSlidingSyncE2EEExtensions: the to_device extension delivers a
// device's queue at least once (a message leaves it only when the client
// comes back with a since past it), and the e2ee extension reports key
// counts when they change and room-mates' device changes; both wake a
// long-poll.
func TestSlidingSyncE2EEExtensions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		eve := mxtest.Register(t, srv.URL, "eve", "password eve")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/join", room), map[string]any{})
		bd := newE2EDevice(t, bob)

		req := func(since string) map[string]any {
			td := map[string]any{"enabled": true}
			if since != "" {
				td["since"] = since
			}
			return map[string]any{
				"lists":      map[string]any{"all": list([2]int{0, 10}, 1, [][2]string{{"m.room.name", ""}}, nil)},
				"extensions": map[string]any{"to_device": td, "e2ee": map[string]any{"enabled": true}},
			}
		}
		// A new connection gets the key counts at once.
		r := slide(t, bob, "", 0, req(""))
		x := e2eeExt(t, r)
		if x.E2EE == nil || x.E2EE.OTKCount["signed_curve25519"] != 0 || x.E2EE.Fallbacks == nil {
			t.Fatalf("first e2ee: %+v", x.E2EE)
		}
		// Unchanged counts are not sent again: a long-poll waits.
		r = slide(t, bob, r.Pos, 100*time.Millisecond, req(""))
		if x := e2eeExt(t, r); x.E2EE != nil || x.ToDevice != nil {
			t.Fatalf("nothing changed, yet: %+v", r.Extensions)
		}
		bob.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": bd.deviceKeys(t), "one_time_keys": bd.otks(t, "B", 3)})
		r = waitSlide(t, bob, r.Pos, req(""), func(r ssResp) bool { return e2eeExt(t, r).E2EE != nil })
		if n := e2eeExt(t, r).E2EE.OTKCount["signed_curve25519"]; n != 3 {
			t.Fatalf("one-time keys after the upload: %d", n)
		}

		// alice's new device keys: bob is told, eve (no shared room) is not.
		eveConn := slide(t, eve, "", 0, req(""))
		ad := newE2EDevice(t, alice)
		alice.Must(200, "POST", "/_matrix/client/v3/keys/upload", map[string]any{"device_keys": ad.deviceKeys(t)})
		r = waitSlide(t, bob, r.Pos, req(""), func(r ssResp) bool {
			x := e2eeExt(t, r)
			return x.E2EE != nil && x.E2EE.DeviceLists != nil
		})
		if c := e2eeExt(t, r).E2EE.DeviceLists.Changed; !slices.Contains(c, alice.UserID) {
			t.Fatalf("device_lists.changed = %v", c)
		}
		e := slide(t, eve, eveConn.Pos, 0, req(""))
		if x := e2eeExt(t, e); x.E2EE != nil && x.E2EE.DeviceLists != nil && slices.Contains(x.E2EE.DeviceLists.Changed, alice.UserID) {
			t.Fatal("eve learns of alice's devices without sharing a room")
		}

		// To-device: delivered, delivered again while not acknowledged,
		// gone once acknowledged.
		for i := range 3 {
			sendToDevice(alice, 200, "", "m.test", fmt.Sprint("td", i), map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": i}}})
		}
		r = waitSlide(t, bob, r.Pos, req(""), func(r ssResp) bool { x := e2eeExt(t, r); return x.ToDevice != nil && len(x.ToDevice.Events) == 3 })
		td := e2eeExt(t, r).ToDevice
		if td.Events[0].Sender != alice.UserID || td.Events[0].Type != "m.test" || td.Events[2].Content["seq"] != float64(2) || td.NextBatch == "" {
			t.Fatalf("to_device: %+v", td)
		}
		// The client did not process that response: the same since
		// gets them again.
		again := slide(t, bob, r.Pos, 0, req(""))
		if x := e2eeExt(t, again); x.ToDevice == nil || len(x.ToDevice.Events) != 3 {
			t.Fatalf("not redelivered: %+v", x.ToDevice)
		}
		// With since = next_batch they are acknowledged and deleted.
		done := slide(t, bob, again.Pos, 0, req(td.NextBatch))
		if x := e2eeExt(t, done); x.ToDevice != nil {
			t.Fatalf("acknowledged messages sent again: %+v", x.ToDevice)
		}
		// A limit pages the queue.
		for i := range 5 {
			sendToDevice(alice, 200, "", "m.test", fmt.Sprint("pg", i), map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"seq": 10 + i}}})
		}
		lim := func(since string) map[string]any {
			q := req(since)
			q["extensions"].(map[string]any)["to_device"].(map[string]any)["limit"] = 2
			return q
		}
		pos, since, seen := done.Pos, td.NextBatch, []float64{}
		for len(seen) < 5 {
			r := waitSlide(t, bob, pos, lim(since), func(r ssResp) bool { return e2eeExt(t, r).ToDevice != nil })
			x := e2eeExt(t, r).ToDevice
			if len(x.Events) > 2 {
				t.Fatalf("limit 2 sent %d", len(x.Events))
			}
			for _, ev := range x.Events {
				seen = append(seen, ev.Content["seq"].(float64))
			}
			pos, since = r.Pos, x.NextBatch
		}
		if !slices.Equal(seen, []float64{10, 11, 12, 13, 14}) {
			t.Fatalf("paged to-device: %v", seen)
		}
		// A since this server did not make is refused.
		if r := slideRaw(t, bob, pos, 0, req("x1")); r.Status != 400 || r.Errcode() != "M_INVALID_PARAM" {
			t.Fatalf("bad since: %d %s", r.Status, r.Raw)
		}
	})
}
