package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/signaling"
)

func openIDToken(t *testing.T, c *mxtest.Client) map[string]any {
	r := c.Must(200, "POST", mxtest.Path("/_matrix/client/v3/user/%s/openid/request_token", c.UserID), map[string]any{})
	return r.Body
}

func getToken(c *mxtest.Client, room string, oid map[string]any) mxtest.Response {
	return c.Do("POST", "/livekit/jwt/get_token", map[string]any{
		"room_id": room, "slot_id": "m.call#ROOM", "openid_token": oid,
		"member": map[string]any{"id": "member-" + c.DeviceID, "claimed_user_id": c.UserID, "claimed_device_id": c.DeviceID},
	})
}

// TestMatrixRTCTokens: focus discovery points at Salon's own JWT service,
// which gives a LiveKit token only to members of the room, with grants from
// the room's power levels.
func TestMatrixRTCTokens(t *testing.T) {
	forEachBackend(t, testMatrixRTCTokens)
}

func testMatrixRTCTokens(t *testing.T, db string) {
	srv := startServer(t, db)
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	eve := mxtest.Register(t, srv.URL, "eve", "password eve")

	wk := mxtest.New(t, srv.URL).Must(200, "GET", "/.well-known/matrix/client", nil)
	want := srv.URL + "/livekit/jwt"
	if !strings.Contains(string(wk.Raw), `"org.matrix.msc4143.rtc_foci":[{"livekit_service_url":"`+want+`","type":"livekit"}]`) {
		t.Fatalf("well-known = %s", wk.Raw)
	}
	for _, path := range []string{"/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", "/_matrix/client/v1/rtc/transports"} {
		tr := alice.Must(200, "GET", path, nil)
		if !strings.Contains(string(tr.Raw), `"rtc_transports":[{"livekit_service_url":"`+want+`","type":"livekit"}]`) {
			t.Fatalf("%s = %s", path, tr.Raw)
		}
		mxtest.New(t, srv.URL).MustErr(401, "M_MISSING_TOKEN", "GET", path, nil)
	}
	// /versions advertises what is served: delayed events, MatrixRTC
	// transports, delegated delayed leave.
	v := mxtest.New(t, srv.URL).Must(200, "GET", "/_matrix/client/versions", nil)
	for _, f := range []string{"org.matrix.msc4140", "org.matrix.msc4143", "io.element.msc4195"} {
		if v.Body["unstable_features"].(map[string]any)[f] != true {
			t.Fatalf("%s not advertised: %s", f, v.Raw)
		}
	}

	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	// Only moderators publish camera and screen in this room.
	plPath := mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", room)
	pl := alice.Must(200, "GET", plPath, nil).Body
	pl["events"].(map[string]any)["org.salonhq.call.publish.video"] = 50
	pl["events"].(map[string]any)["org.salonhq.call.publish.screen"] = 50
	alice.Must(200, "PUT", plPath, pl)

	check := func(c *mxtest.Client, wantSources []string, wantAdmin bool) {
		t.Helper()
		r := getToken(c, room, openIDToken(t, c))
		if r.Status != 200 || !strings.HasPrefix(r.Str("url"), "ws://127.0.0.1:") || !strings.HasSuffix(r.Str("url"), "/livekit/sfu") {
			t.Fatalf("get_token for %s: %d %s", c.UserID, r.Status, r.Raw)
		}
		v, err := auth.ParseAPIToken(r.Str("jwt"))
		if err != nil {
			t.Fatal(err)
		}
		secret, ok := srv.srv.livekitKeys.Secret(v.APIKey())
		if !ok {
			t.Fatal("token signed with an unknown key")
		}
		claims, grants, err := v.Verify(secret)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Subject != signaling.LiveKitIdentity(c.UserID, c.DeviceID, "member-"+c.DeviceID) ||
			grants.Video.Room != signaling.LiveKitRoomAlias(room, "m.call#ROOM") || !grants.Video.RoomJoin {
			t.Fatalf("claims %+v grants %+v", claims, grants.Video)
		}
		var got []string
		for _, src := range grants.Video.GetCanPublishSources() {
			got = append(got, strings.ToLower(src.String()))
		}
		slices.Sort(got)
		slices.Sort(wantSources)
		if strings.Join(got, ",") != strings.Join(wantSources, ",") || grants.Video.RoomAdmin != wantAdmin {
			t.Fatalf("%s: sources %v admin %v, want %v %v", c.UserID, got, grants.Video.RoomAdmin, wantSources, wantAdmin)
		}
	}
	check(alice, []string{"camera", "microphone", "screen_share", "screen_share_audio"}, true)
	check(bob, []string{"microphone"}, false) // only moderators publish video here

	// Non-members, leavers and forged tokens get nothing.
	if r := getToken(eve, room, openIDToken(t, eve)); r.Status != 403 {
		t.Fatalf("non-member: %d %s", r.Status, r.Raw)
	}
	oid := openIDToken(t, bob)
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
	if r := getToken(bob, room, oid); r.Status != 403 {
		t.Fatalf("a user who left: %d %s", r.Status, r.Raw)
	}
	forged := map[string]any{"access_token": "salon_oid_forged", "token_type": "Bearer", "matrix_server_name": "localhost", "expires_in": 3600}
	if r := getToken(alice, room, forged); r.Status != 401 || r.Str("jwt") != "" {
		t.Fatalf("forged openid token: %d %s", r.Status, r.Raw)
	}
	other := openIDToken(t, alice)
	other["matrix_server_name"] = "evil.example"
	if r := getToken(alice, room, other); r.Status != 403 {
		t.Fatalf("other server: %d %s", r.Status, r.Raw)
	}
	// The claimed user must be the token's user.
	r := alice.Do("POST", "/livekit/jwt/get_token", map[string]any{"room_id": room, "slot_id": "m.call#ROOM", "openid_token": openIDToken(t, eve),
		"member": map[string]any{"id": "x", "claimed_user_id": alice.UserID, "claimed_device_id": alice.DeviceID}})
	if r.Status != 401 {
		t.Fatalf("claimed another user: %d %s", r.Status, r.Raw)
	}
}

// TestSFUAcceptsSalonTokens: the token the JWT service hands a member is
// accepted by the embedded SFU at the URL it names; a forged one is not.
func TestSFUAcceptsSalonTokens(t *testing.T) {
	srv := startServer(t, backends(t)["sqlite"](t))
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{}).Str("room_id")
	r := getToken(alice, room, openIDToken(t, alice))
	if r.Status != 200 {
		t.Fatalf("get_token: %d %s", r.Status, r.Raw)
	}
	sfuHTTP := strings.Replace(r.Str("url"), "ws://", "http://", 1)
	anon := mxtest.New(t, "")
	if v := anon.Do("GET", sfuHTTP+"/rtc/validate?access_token="+r.Str("jwt"), nil); v.Status != 200 {
		t.Fatalf("SFU refuses Salon's token: %d %s", v.Status, v.Raw)
	}
	if v := anon.Do("GET", sfuHTTP+"/rtc/validate?access_token=forged.token.value", nil); v.Status != 401 {
		t.Fatalf("SFU accepts a forged token: %d %s", v.Status, v.Raw)
	}
}
