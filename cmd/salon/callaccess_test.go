package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

// sfuGet asks the legacy endpoint of the JWT service for a token.
func sfuGet(t *testing.T, c *mxtest.Client, room string) mxtest.Response {
	t.Helper()
	return c.Do("POST", "/livekit/jwt/sfu/get", map[string]any{
		"room": room, "openid_token": openIDToken(t, c), "device_id": c.DeviceID,
	})
}

// sfuAnswers is what the embedded SFU answers a token: the HTTP status of
// the WebSocket upgrade at /livekit/sfu/rtc (101 when it connects) and of
// /livekit/sfu/rtc/validate.
func sfuAnswers(t *testing.T, ctx context.Context, srv *testServer, tok string) (rtc, valid int) {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + sfuPath
	rtc, _, err := lktest.Dial(ctx, ws, tok)
	if err != nil {
		t.Fatal(err)
	}
	return rtc, validate(t, srv, tok)
}

// validate is the status of /livekit/sfu/rtc/validate for a token.
func validate(t *testing.T, srv *testServer, tok string) int {
	t.Helper()
	res, err := http.Get(srv.URL + sfuPath + "/rtc/validate?access_token=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestCallNeedsMembership: a call token is worth something only while its
// user is joined to the room. A member who got one and was then kicked,
// or who left, is refused by the SFU (403 at the WebSocket upgrade and at
// /rtc/validate), whichever endpoint issued the token; so is a token
// without the Matrix room attribute (from before it) once its user left.
// A member still in the room connects and hears the others. Real HTTP,
// WebSocket and UDP, both backends.
func TestCallNeedsMembership(t *testing.T) {
	forEachBackend(t, testCallNeedsMembership)
}

func testCallNeedsMembership(t *testing.T, db string) {
	srv := startServer(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := mxtest.Register(t, srv.URL, "owner", "password owner")
	kicked := mxtest.Register(t, srv.URL, "kicked", "password kicked")
	leaver := mxtest.Register(t, srv.URL, "leaver", "password leaver")
	stays := mxtest.Register(t, srv.URL, "stays", "password stays")
	room := owner.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	for _, c := range []*mxtest.Client{kicked, leaver, stays} {
		c.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	}

	// Tokens while everyone is a member: the legacy endpoint, the current
	// one, and one as tokens were before they named the Matrix room.
	kickedTok := sfuGet(t, kicked, room)
	if kickedTok.Status != 200 {
		t.Fatalf("member's token: %d %s", kickedTok.Status, kickedTok.Raw)
	}
	leaverTok := getToken(leaver, room, openIDToken(t, leaver))
	if leaverTok.Status != 200 {
		t.Fatalf("member's token: %d %s", leaverTok.Status, leaverTok.Raw)
	}
	oldTok := oldStyleToken(t, srv, room, leaver.UserID, leaver.DeviceID)
	for name, tok := range map[string]string{"sfu/get": kickedTok.Str("jwt"), "get_token": leaverTok.Str("jwt"), "old style": oldTok} {
		if ws, v := sfuAnswers(t, ctx, srv, tok); ws != http.StatusSwitchingProtocols || v != http.StatusOK {
			t.Fatalf("%s token of a member: /rtc %d, /rtc/validate %d; want 101 and 200", name, ws, v)
		}
	}

	// One is kicked, the other leaves: no new token, and the old ones are
	// refused.
	owner.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": kicked.UserID, "reason": "out"})
	leaver.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/leave", room), map[string]any{})
	if r := sfuGet(t, kicked, room); r.Status != 403 {
		t.Fatalf("a kicked member got a new token: %d %s", r.Status, r.Raw)
	}
	for name, tok := range map[string]string{"kicked, sfu/get": kickedTok.Str("jwt"), "left, get_token": leaverTok.Str("jwt"), "left, old style": oldTok} {
		if ws, v := sfuAnswers(t, ctx, srv, tok); ws != http.StatusForbidden || v != http.StatusForbidden {
			t.Errorf("%s: /rtc %d, /rtc/validate %d; want 403 and 403", name, ws, v)
		}
	}

	// The members still in the room talk.
	oLK := joinCall(t, ctx, owner, room, "m.call#ROOM")
	sLK := joinCall(t, ctx, stays, room, "m.call#ROOM")
	mic, err := oLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mic.Stop()
	hears(t, ctx, sLK, mic.Info.Sid, "the owner's voice")
}

// oldStyleToken signs, with the server's own keys, a token as the JWT
// service made them before they named the Matrix room: the call of the
// room's m.call#ROOM slot, the user as name, no attributes.
func oldStyleToken(t *testing.T, srv *testServer, room, userID, deviceID string) string {
	t.Helper()
	key, secret := srv.srv.livekitKeys.Current()
	g := &auth.VideoGrant{RoomJoin: true, Room: signaling.LiveKitRoomAlias(room, signaling.LegacySlotID)}
	g.SetCanPublish(true)
	g.SetCanSubscribe(true)
	tok, err := auth.NewAccessToken(key, secret).SetIdentity(signaling.LegacyLiveKitIdentity(userID, deviceID)).
		SetName(userID).SetValidFor(time.Hour).SetVideoGrant(g).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenExpiry reads a LiveKit token's expiry (verified with the server's
// keys).
func tokenExpiry(t *testing.T, srv *testServer, tok string) time.Time {
	t.Helper()
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := srv.srv.livekitKeys.Secret(v.APIKey())
	if !ok {
		t.Fatalf("token signed with an unknown key %q", v.APIKey())
	}
	claims, _, err := v.Verify(secret)
	if err != nil {
		t.Fatal(err)
	}
	return claims.ExpiresAt.Time
}

// TestLongCallRefreshesTokens: call tokens live briefly (livekit.token_ttl,
// 10 s here) and a call goes on past their lifetime: the server sends each
// participant a fresh token well before its own expires, the SFU accepts
// it, and media keeps flowing. Both backends.
func TestLongCallRefreshesTokens(t *testing.T) {
	forEachBackend(t, testLongCallRefreshesTokens)
}

func testLongCallRefreshesTokens(t *testing.T, db string) {
	const ttl = 10 * time.Second
	srv := startServer(t, db, func(c *Config) { c.LiveKit.TokenTTL = ttl })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice := mxtest.Register(t, srv.URL, "alice", "password alice")
	bob := mxtest.Register(t, srv.URL, "bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

	r := getToken(bob, room, openIDToken(t, bob))
	if r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Raw)
	}
	first := tokenExpiry(t, srv, r.Str("jwt"))
	if d := time.Until(first); d > ttl+time.Second {
		t.Fatalf("the token is valid for %v, want at most %v", d, ttl)
	}
	bLK, err := lktest.Connect(ctx, r.Str("url"), r.Str("jwt"), lktest.Options{AutoSubscribe: true, KeepMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bLK.Close)
	aLK := joinCall(t, ctx, alice, room, "m.call#ROOM")
	mic, err := aLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mic.Stop()
	hears(t, ctx, bLK, mic.Info.Sid, "alice's voice")

	// A fresh token arrives before the first expires, and expires later.
	m := waitMsg(t, ctx, bLK, "a refreshed token", func(m *livekit.SignalResponse) bool { return m.GetRefreshToken() != "" })
	fresh := m.GetRefreshToken()
	exp := tokenExpiry(t, srv, fresh)
	if !exp.After(first) {
		t.Fatalf("the refreshed token expires at %v, not after the first (%v)", exp, first)
	}
	// It has the first one's lifetime, so it was made at exp-ttl: before
	// the first expired (the server's clock, not the test's delivery).
	if minted := exp.Add(-ttl); !minted.Before(first) {
		t.Fatalf("the refreshed token was made at %v, after the first expired (%v)", minted, first)
	}

	// The call goes on past the first token's lifetime.
	select {
	case <-time.After(time.Until(first) + time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	n := bLK.Track(mic.Info.Sid).Packets.Load()
	if err := bLK.WaitPackets(ctx, "alice's voice after the first token expired", mic.Info.Sid, n+10); err != nil {
		t.Fatal(err)
	}
	// The latest refreshed token resumes Bob's session after a network
	// change, and the call goes on.
	latest, latestExp := fresh, tokenExpiry(t, srv, fresh)
	peek, cancelPeek := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _ = bLK.WaitMessage(peek, "refresh tokens so far", func(m *livekit.SignalResponse) bool {
		if tok := m.GetRefreshToken(); tok != "" {
			if exp := tokenExpiry(t, srv, tok); exp.After(latestExp) {
				latest, latestExp = tok, exp
			}
		}
		return false
	})
	cancelPeek()
	if v := validate(t, srv, latest); v != http.StatusOK {
		t.Fatalf("the latest refreshed token: /rtc/validate %d, want 200", v)
	}
	bLK.DropSignal()
	if err := bLK.Resume(ctx, r.Str("url"), latest); err != nil {
		t.Fatalf("resume with the refreshed token: %v", err)
	}
	n = bLK.Track(mic.Info.Sid).Packets.Load()
	if err := bLK.WaitPackets(ctx, "alice's voice after the resume", mic.Info.Sid, n+10); err != nil {
		t.Fatal(err)
	}
}
