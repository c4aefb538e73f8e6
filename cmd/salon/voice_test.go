package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// TestVoiceChannel: a call room (org.matrix.msc3417.call) in a space is a
// voice channel. Space members join it through the space (restricted),
// drop into its call and out again; the call goes on while anyone is in
// it, closes when the last one leaves, and opens again on the next drop-in.
func TestVoiceChannel(t *testing.T) {
	forEachBackend(t, testVoiceChannel)
}

func testVoiceChannel(t *testing.T, db string) {
	srv := startServer(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	eve := mxtest.Register(t, srv.URL, "eve", "password eve")

	space := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
		"preset": "private_chat", "name": "Promo 2027", "invite": []string{bob.UserID},
		"creation_content": map[string]any{"type": "m.space"},
	}).Str("room_id")
	voice := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{
		"preset": "private_chat", "name": "Salon vocal",
		"creation_content": map[string]any{"type": "org.matrix.msc3417.call"},
		"initial_state": []any{map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
			"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}},
		}}},
	}).Str("room_id")
	addChild(t, alice, space, voice, nil)
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", space), map[string]any{})

	h := bob.Must(200, "GET", mxtest.Path("/_matrix/client/v1/rooms/%s/hierarchy", space), nil)
	listed := false
	for _, x := range h.Body["rooms"].([]any) {
		if m := x.(map[string]any); m["room_id"] == voice {
			listed = m["room_type"] == "org.matrix.msc3417.call"
		}
	}
	if !listed {
		t.Fatalf("the voice channel is not in the space's hierarchy with its type: %s", h.Raw)
	}
	// Bob joins through the space; Eve, not in it, cannot, nor get a token.
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", voice), map[string]any{})
	eve.MustErr(403, "M_FORBIDDEN", "POST", mxtest.Path("/_matrix/client/v3/join/%s", voice), map[string]any{})
	if r := getToken(eve, voice, openIDToken(t, eve)); r.Status != 403 {
		t.Fatalf("a non-member got a call token: %d %s", r.Status, r.Raw)
	}

	calls := func() (calls, participants int) {
		res, err := http.Get(srv.MetricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "salon_sfu_calls "); ok {
				calls, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "salon_sfu_participants "); ok {
				participants, _ = strconv.Atoi(v)
			}
		}
		return
	}
	waitCalls := func(wantCalls, wantParticipants int) {
		t.Helper()
		for {
			c, p := calls()
			if c == wantCalls && p == wantParticipants {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("calls %d participants %d, want %d and %d", c, p, wantCalls, wantParticipants)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	member := func(c *mxtest.Client, content map[string]any) {
		c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.matrix.msc3401.call.member/%s", voice, "_"+c.UserID+"_"+c.DeviceID+"_m.call"), content)
	}
	present := func(c *mxtest.Client) map[string]any {
		return map[string]any{"application": "m.call", "call_id": "", "scope": "m.room", "device_id": c.DeviceID,
			"expires": 3600000, "focus_active": map[string]any{"type": "livekit", "focus_selection": "oldest_membership"},
			"foci_preferred": []any{map[string]any{"type": "livekit", "livekit_service_url": srv.URL + "/livekit/jwt", "livekit_alias": voice}}}
	}

	waitCalls(0, 0)
	// Alice drops in and talks; Bob drops in and hears her.
	member(alice, present(alice))
	aLK := joinCall(t, ctx, alice, voice, "m.call#ROOM")
	mic, err := aLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	member(bob, present(bob))
	bLK := joinCall(t, ctx, bob, voice, "m.call#ROOM")
	hears(t, ctx, bLK, mic.Info.Sid, "alice's voice")
	waitCalls(1, 2)

	// Alice hangs up (a leave, as clients send); the channel goes on with
	// Bob in it.
	mic.Stop()
	aLK.Leave()
	member(alice, map[string]any{})
	waitCalls(1, 1)
	// Bob drops out: the call closes.
	bLK.Leave()
	member(bob, map[string]any{})
	waitCalls(0, 0)
	// And opens again at the next drop-in, for someone who was in it before.
	member(alice, present(alice))
	a2 := joinCall(t, ctx, alice, voice, "m.call#ROOM")
	waitCalls(1, 1)
	if len(a2.Join.OtherParticipants) != 0 {
		t.Fatalf("the reopened call still has participants: %v", a2.Join.OtherParticipants)
	}
}
