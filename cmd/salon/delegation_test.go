package main

import (
	"context"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/sfu/lktest"
)

// TestDelegatedDelayedLeave (MSC4195): a member hands its delayed leave
// (an hour's delay, so only the delegation can make it fire soon) to the
// SFU — one through the client-server endpoint, one through the JWT
// service's — joins the call, and is killed (signal WebSocket and peer
// connections closed without a leave). Its membership is left within a
// couple of seconds, not after the delay. While connected, the SFU
// restarts the delayed event. A member who stays keeps its membership.
// Real HTTP, WebSocket and UDP, both backends.
func TestDelegatedDelayedLeave(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		alice := mxtest.Register(t, srv.URL, "alice", "password alice")
		bob := mxtest.Register(t, srv.URL, "bob", "password bob")
		carol := mxtest.Register(t, srv.URL, "carol", "password carol")
		dave := mxtest.Register(t, srv.URL, "dave", "password dave")
		room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
		bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		carol.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		dave.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
		state := func(c *mxtest.Client) string {
			return mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.matrix.msc3401.call.member/%s", room, callKey(c))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const slot = "m.call#ROOM"
		member := func(c *mxtest.Client) map[string]any {
			return map[string]any{"id": "member-" + c.DeviceID, "claimed_user_id": c.UserID, "claimed_device_id": c.DeviceID}
		}
		type joined struct {
			c       *mxtest.Client
			lk      *lktest.Client
			delayID string
			since   float64 // running_since when scheduled
		}
		var runningSince func(j joined) float64
		connect := func(c *mxtest.Client, tokenReq map[string]any) *lktest.Client {
			r := c.Must(200, "POST", "/livekit/jwt/get_token", tokenReq)
			lk, err := lktest.Connect(ctx, r.Str("url"), r.Str("jwt"), lktest.Options{AutoSubscribe: true, SinglePeerConnection: true})
			if err != nil {
				t.Fatalf("%s joins the SFU: %v", c.UserID, err)
			}
			t.Cleanup(lk.Close)
			if err := lk.WaitFor(ctx, "connected", func() bool { return lk.PublisherState() == webrtc.PeerConnectionStateConnected }); err != nil {
				t.Fatal(err)
			}
			return lk
		}
		join := func(c *mxtest.Client, how string) joined {
			c.Must(200, "PUT", state(c), callMember(c))
			delayID := c.Must(200, "PUT", state(c)+"?org.matrix.msc4140.delay=3600000", map[string]any{}).Str("delay_id")
			since := runningSince(joined{c: c, delayID: delayID})
			tokenReq := map[string]any{"room_id": room, "slot_id": slot, "openid_token": openIDToken(t, c), "member": member(c)}
			if how == "get_token" {
				// lk-jwt-service's older form: the delegation rides on
				// the token request.
				tokenReq["delay_id"], tokenReq["delay_timeout"], tokenReq["delay_cs_api_url"] = delayID, 3600000, srv.URL
			}
			lk := connect(c, tokenReq)
			switch how {
			case "client-server":
				c.Must(200, "POST", "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave", map[string]any{
					"room_id": room, "slot_id": slot, "member": member(c), "delay_id": delayID,
				})
			case "jwt":
				c.Must(200, "POST", "/livekit/jwt/delegate_delayed_leave", map[string]any{
					"room_id": room, "slot_id": slot, "openid_token": openIDToken(t, c), "member": member(c),
					"delay_id": delayID, "delay_timeout": "3600000",
				})
			}
			return joined{c, lk, delayID, since}
		}
		runningSince = func(j joined) float64 {
			list := j.c.Must(200, "GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events", nil)
			for _, e := range list.Body["delayed_events"].([]any) {
				if m := e.(map[string]any); m["delay_id"] == j.delayID {
					return m["running_since"].(float64)
				}
			}
			return -1
		}

		a := join(alice, "client-server")
		b := join(bob, "jwt")
		c := join(carol, "")
		d := join(dave, "get_token")
		// The SFU restarts a delegated leave once it sees the member.
		deadline := time.Now().Add(10 * time.Second)
		for runningSince(a) <= a.since || runningSince(b) <= b.since || runningSince(d) <= d.since {
			if time.Now().After(deadline) {
				t.Fatalf("delegated leave not restarted: alice %v (was %v), bob %v (was %v), dave %v (was %v)",
					runningSince(a), a.since, runningSince(b), b.since, runningSince(d), d.since)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if runningSince(c) != c.since {
			t.Fatal("carol's leave, not delegated, was restarted")
		}

		// Dave's client gives up its SFU connection (a leave) and joins
		// again at once, as Element Call does after its first connection
		// attempt: he is still in the call, his delegated leave unsent.
		if err := d.lk.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}}); err != nil {
			t.Fatal(err)
		}
		d.lk.Close()
		time.Sleep(500 * time.Millisecond) // its second attempt comes a moment later
		d.lk = connect(dave, map[string]any{"room_id": room, "slot_id": slot, "openid_token": openIDToken(t, dave), "member": member(dave)})
		time.Sleep(4 * time.Second) // past the SFU's grace for a new session
		if r := carol.Must(200, "GET", state(dave), nil); r.Str("application") != "m.call" {
			t.Fatalf("dave's membership after rejoining: %s", r.Raw)
		}
		if runningSince(d) == -1 {
			t.Fatal("dave's delegated leave was sent while he rejoined")
		}

		// Bad delegations.
		alice.MustErr(404, "M_NOT_FOUND", "POST", "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave", map[string]any{
			"room_id": room, "slot_id": slot, "member": member(alice), "delay_id": c.delayID, // carol's
		})
		alice.MustErr(400, "M_MISSING_PARAM", "POST", "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave", map[string]any{
			"room_id": room, "slot_id": slot, "member": member(alice),
		})
		alice.MustErr(403, "M_FORBIDDEN", "POST", "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave", map[string]any{
			"room_id": room, "slot_id": slot, "member": member(bob), "delay_id": a.delayID,
		})

		// Alice's and Bob's tabs are killed.
		killed := time.Now()
		a.lk.Close()
		b.lk.Close()
		d.lk.Close()
		for _, j := range []joined{a, b, d} {
			waitState(t, carol, state(j.c), 15*time.Second, func(r mxtest.Response) bool { return r.Status == 200 && len(r.Body) == 0 })
		}
		t.Logf("the three memberships left %v after the kill", time.Since(killed))
		if n := runningSince(a); n != -1 {
			t.Fatalf("alice's delayed leave still pending")
		}
		// Carol (no delegation) is still in the call.
		if r := carol.Must(200, "GET", state(carol), nil); r.Str("application") != "m.call" {
			t.Fatalf("carol's membership: %s", r.Raw)
		}
	})
}
