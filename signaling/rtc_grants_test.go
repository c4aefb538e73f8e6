package signaling_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

// policy is a CallPolicy whose answers the test sets.
type policy struct {
	mu    sync.Mutex
	perms map[string]signaling.CallPermissions
	fail  map[string]bool
	asked []string
	// afterAnswer, when set, runs once an answer is decided and before it
	// is returned (what happens in the room while a client is admitted).
	afterAnswer func(userID string)
}

func (p *policy) CallPermissions(_ context.Context, userID, roomID string) (signaling.CallPermissions, error) {
	p.mu.Lock()
	p.asked = append(p.asked, userID+" "+roomID)
	if p.fail[userID] {
		p.mu.Unlock()
		return signaling.CallPermissions{}, errors.New("database down")
	}
	answer, after := p.perms[userID], p.afterAnswer
	p.mu.Unlock()
	if after != nil {
		after(userID)
	}
	return answer, nil
}

// JoinedRooms: the policy is per user; a joined user is in every room the
// tests use.
func (p *policy) JoinedRooms(_ context.Context, userID string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail[userID] {
		return nil, errors.New("database down")
	}
	if !p.perms[userID].Joined {
		return nil, nil
	}
	return []string{"!class:hs", "!other:hs"}, nil
}

func (p *policy) set(userID string, c signaling.CallPermissions) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.perms[userID] = c
}

var speaker = signaling.CallPermissions{Joined: true, PublishAudio: true, PublishVideo: true, PublishScreen: true, PublishData: true}

// matrixToken is a token as the JWT service makes it: the Matrix user as
// name, the Matrix room as an attribute (none when matrixRoom is "", as in
// tokens from before it), the slot's LiveKit room, the grant of speaker
// (admin for moderators), own metadata updates allowed.
func matrixToken(t *testing.T, matrixRoom, room, identity, user string, admin bool) string {
	return token(t, room, identity, func(at *auth.AccessToken, g *auth.VideoGrant) {
		at.SetName(user)
		if matrixRoom != "" {
			at.SetAttributes(map[string]string{signaling.MatrixRoomAttribute: matrixRoom})
		}
		g.RoomAdmin = admin
		g.SetCanPublish(true)
		g.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_MICROPHONE, livekit.TrackSource_CAMERA,
			livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO})
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		g.SetCanUpdateOwnMetadata(true)
	})
}

func connectWith(t *testing.T, s *server, tok string) *lktest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lktest.Connect(ctx, s.base, tok, lktest.Options{AutoSubscribe: true, KeepMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	subscriberUp(t, ctx, c)
	return c
}

// subscriberUp waits for the subscriber connection the SFU offers at join
// (closing a client while pion still starts it is a race inside pion).
func subscriberUp(t *testing.T, ctx context.Context, c *lktest.Client) {
	t.Helper()
	if err := c.WaitFor(ctx, "subscriber connected", func() bool { return c.SubscriberState() == webrtc.PeerConnectionStateConnected }); err != nil {
		t.Fatal(err)
	}
}

// flush returns once everything the server queued for c before now has
// arrived (a ping's answer follows it on the connection).
func flush(t *testing.T, ctx context.Context, c *lktest.Client, n int64) {
	t.Helper()
	if err := c.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: n}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitMessage(ctx, "pong", func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == n }); err != nil {
		t.Fatal(err)
	}
}

// selfUpdates counts the updates c was sent about itself.
func selfUpdates(c *lktest.Client) int {
	n := 0
	now, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = c.WaitMessage(now, "", func(m *livekit.SignalResponse) bool {
		if update(c.Join.Participant.Sid)(m) != nil {
			n++
		}
		return false
	})
	return n
}

func verifyGrant(t *testing.T, tok string) *auth.VideoGrant {
	t.Helper()
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	_, g, err := v.Verify(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return g.Video
}

// TestRoomChanged: RoomChanged asks the policy again for the user each
// participant's token named (not the name the client set since), in every
// call whose token named the Matrix room and, for older tokens without
// that attribute, in the call of its legacy slot; it updates changed
// grants, removes users no longer joined, leaves the others and other
// calls alone, keeps grants when the policy fails, and the refresh token
// follows (including room admin).
func TestRoomChanged(t *testing.T) {
	const matrixRoom = "!class:hs"
	pol := &policy{perms: map[string]signaling.CallPermissions{}, fail: map[string]bool{}}
	teacher := speaker
	teacher.Moderate = true
	pol.set("@teacher:hs", teacher)
	pol.set("@student:hs", speaker)
	pol.set("@guest:hs", speaker)
	s := startServerWith(t, sfu.Config{}, func(p *signaling.RTCParams) {
		p.Authority = pol
		p.TokenRefresh = 200 * time.Millisecond
	})
	mainRoom := signaling.LiveKitRoomAlias(matrixRoom, signaling.LegacySlotID)
	side := signaling.LiveKitRoomAlias(matrixRoom, "m.call#side")
	elsewhere := signaling.LiveKitRoomAlias("!other:hs", signaling.LegacySlotID)
	ctx := ctxT(t, 30*time.Second)

	tc := connectWith(t, s, matrixToken(t, matrixRoom, mainRoom, "teacher-dev", "@teacher:hs", true))
	sc := connectWith(t, s, matrixToken(t, "", mainRoom, "student-dev", "@student:hs", false))
	gc := connectWith(t, s, matrixToken(t, matrixRoom, side, "guest-dev", "@guest:hs", false))
	oc := connectWith(t, s, matrixToken(t, "!other:hs", elsewhere, "student-dev", "@student:hs", false))
	// The guest renames itself to the teacher: the name is the client's,
	// the user the token named is not.
	if err := gc.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: &livekit.UpdateParticipantMetadata{Name: "@teacher:hs"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitMessage(ctx, "the guest renamed", func(m *livekit.SignalResponse) bool {
		return m.GetRequestResponse().GetReason() == livekit.RequestResponse_OK
	}); err != nil {
		t.Fatal(err)
	}
	mic, err := sc.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mic.Stop()
	if err := tc.WaitPackets(ctx, "the student's audio", mic.Info.Sid, 3); err != nil {
		t.Fatal(err)
	}

	// Nothing changed: nothing sent.
	s.rtc.RoomChanged(ctx, matrixRoom)
	for i, c := range []*lktest.Client{tc, sc, gc, oc} {
		flush(t, ctx, c, int64(10+i))
	}
	before := map[*lktest.Client]int{tc: selfUpdates(tc), gc: selfUpdates(gc), oc: selfUpdates(oc)}

	// The student now only listens; the guest has left the room; the
	// teacher is no moderator any more but publishes as before.
	listener := signaling.CallPermissions{Joined: true, PublishData: true}
	pol.set("@student:hs", listener)
	pol.set("@guest:hs", signaling.CallPermissions{})
	teacher.Moderate = false
	pol.set("@teacher:hs", teacher)
	s.rtc.RoomChanged(ctx, matrixRoom)

	if _, err := sc.WaitMessage(ctx, "the student's audio unpublished", func(m *livekit.SignalResponse) bool {
		return m.GetTrackUnpublished().GetTrackSid() == mic.Info.Sid
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.WaitMessage(ctx, "the student's new permission", func(m *livekit.SignalResponse) bool {
		p := update(sc.Join.Participant.Sid)(m)
		return p != nil && p.Permission != nil && !p.Permission.CanPublish && p.Permission.CanSubscribe && p.Permission.CanPublishData
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitMessage(ctx, "the guest removed", func(m *livekit.SignalResponse) bool {
		l := m.GetLeave()
		return l != nil && l.Reason == livekit.DisconnectReason_PARTICIPANT_REMOVED && l.Action == livekit.LeaveRequest_DISCONNECT
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*lktest.Client{tc, oc} {
		flush(t, ctx, c, int64(20+i))
		if n := selfUpdates(c); n != before[c] {
			t.Errorf("participant %d was sent %d updates about itself, want none", i, n-before[c])
		}
	}
	// The student in another Matrix room's call kept publishing rights.
	if p := s.sfu.Sessions(elsewhere); len(p) != 1 || !p[0].Permission().CanPublish {
		t.Fatalf("the other call's participant: %+v", p)
	}

	// Refresh tokens carry the new grants.
	if _, err := sc.WaitMessage(ctx, "the student's refresh token without publishing", func(m *livekit.SignalResponse) bool {
		return m.GetRefreshToken() != "" && !verifyGrant(t, m.GetRefreshToken()).GetCanPublish()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.WaitMessage(ctx, "the teacher's refresh token without admin", func(m *livekit.SignalResponse) bool {
		g := m.GetRefreshToken()
		return g != "" && !verifyGrant(t, g).RoomAdmin && verifyGrant(t, g).GetCanPublish()
	}); err != nil {
		t.Fatal(err)
	}
	// A resume with the token the teacher joined with (admin) does not
	// bring admin back: the refresh tokens after it still carry none.
	seen := map[string]bool{}
	peek, cancelPeek := context.WithTimeout(ctx, 100*time.Millisecond)
	_, _ = tc.WaitMessage(peek, "refresh tokens so far", func(m *livekit.SignalResponse) bool {
		seen[m.GetRefreshToken()] = true
		return false
	})
	cancelPeek()
	tc.DropSignal()
	if err := tc.Resume(ctx, s.base, matrixToken(t, matrixRoom, mainRoom, "teacher-dev", "@teacher:hs", true)); err != nil {
		t.Fatal(err)
	}
	after, err := tc.WaitMessage(ctx, "a refresh token after the resume", func(m *livekit.SignalResponse) bool {
		return m.GetRefreshToken() != "" && !seen[m.GetRefreshToken()]
	})
	if err != nil {
		t.Fatal(err)
	}
	if verifyGrant(t, after.GetRefreshToken()).RoomAdmin {
		t.Fatal("the resume with the old token made the teacher admin again")
	}

	// The policy fails: grants stay as they are.
	pol.mu.Lock()
	pol.fail["@student:hs"] = true
	pol.mu.Unlock()
	pol.set("@student:hs", speaker)
	n := selfUpdates(sc)
	s.rtc.RoomChanged(ctx, matrixRoom)
	flush(t, ctx, sc, 30)
	if selfUpdates(sc) != n {
		t.Fatal("a failing policy changed the student's grant")
	}
	if len(s.sfu.Sessions(mainRoom)) != 2 {
		t.Fatal("a failing policy removed someone")
	}
}

// TestLiveGrantRevokesAnnouncedTrack: a track announced (TrackPublished
// answered) whose media has not arrived yet is withdrawn too when the
// grant no longer allows its source, even though publishing as such stays
// allowed; its media is then ignored.
func TestLiveGrantRevokesAnnouncedTrack(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	ctx := ctxT(t, 10*time.Second)
	subscriberUp(t, ctx, a)
	info, err := a.AddTrack(ctx, &livekit.AddTrackRequest{Cid: "cam", Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA})
	if err != nil {
		t.Fatal(err)
	}
	mic, err := a.AddTrack(ctx, &livekit.AddTrackRequest{Cid: "mic", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE})
	if err != nil {
		t.Fatal(err)
	}
	if !s.rtc.UpdatePermissions("call", "alice", signaling.Permission{CanPublish: true, CanSubscribe: true,
		CanPublishSources: []livekit.TrackSource{livekit.TrackSource_MICROPHONE}}) {
		t.Fatal("alice not found")
	}
	if _, err := a.WaitMessage(ctx, "the announced camera withdrawn", func(m *livekit.SignalResponse) bool {
		return m.GetTrackUnpublished().GetTrackSid() == info.Sid
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, ctx, a, 1)
	if m := seenMsg(a, func(m *livekit.SignalResponse) bool { return m.GetTrackUnpublished().GetTrackSid() == mic.Sid }); m != nil {
		t.Fatal("the announced microphone, still allowed, was withdrawn")
	}
}

func seenMsg(c *lktest.Client, match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	m, _ := c.WaitMessage(now, "", match)
	return m
}

// dialStatus is the HTTP status /rtc answers a WebSocket upgrade with the
// token, and /rtc/validate's status for it.
func dialStatus(t *testing.T, s *server, tok string) (rtc, validate int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	st, _, err := lktest.Dial(ctx, s.base, tok)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(s.http + "/rtc/validate?access_token=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return st, res.StatusCode
}

// TestJoinNeedsMembership: with an Authority, a token that names a Matrix
// user connects, resumes and validates only while the user is joined to
// the token's Matrix room now (for a token without the room attribute,
// the room whose legacy-slot call it is for): a user who left or was
// kicked after getting the token is refused with 403 at the WebSocket
// upgrade and at /rtc/validate, and at a resume. A joined user joins with
// the grant the room gives now, not the token's. A failing homeserver is
// a 500, not an admission. A token naming no Matrix user (made with the
// keys, as salon loadtest does) is admitted on its signature.
func TestJoinNeedsMembership(t *testing.T) {
	const matrixRoom = "!class:hs"
	pol := &policy{perms: map[string]signaling.CallPermissions{}, fail: map[string]bool{}}
	pol.set("@member:hs", speaker)
	pol.set("@listener:hs", signaling.CallPermissions{Joined: true})
	s := startServerWith(t, sfu.Config{}, func(p *signaling.RTCParams) { p.Authority = pol })
	call := signaling.LiveKitRoomAlias(matrixRoom, signaling.LegacySlotID)
	ctx := ctxT(t, 30*time.Second)

	gone := matrixToken(t, matrixRoom, call, "gone-dev", "@gone:hs", false)
	goneLegacy := matrixToken(t, "", call, "gone-dev", "@gone:hs", false)
	for name, tok := range map[string]string{"with the room attribute": gone, "without it": goneLegacy} {
		if ws, v := dialStatus(t, s, tok); ws != http.StatusForbidden || v != http.StatusForbidden {
			t.Errorf("a user not in the room, token %s: /rtc %d, /rtc/validate %d; want 403 and 403", name, ws, v)
		}
	}
	// A legacy token of a room the user is not in is not admitted because
	// the user is in another room.
	if ws, _ := dialStatus(t, s, matrixToken(t, "", signaling.LiveKitRoomAlias("!elsewhere:hs", signaling.LegacySlotID),
		"member-dev", "@member:hs", false)); ws != http.StatusForbidden {
		t.Errorf("legacy token for a room the member is not in: /rtc %d, want 403", ws)
	}

	// Members join; the listener's token says it may publish, the room
	// says it may not: the room wins.
	m := connectWith(t, s, matrixToken(t, matrixRoom, call, "member-dev", "@member:hs", false))
	legacy := connectWith(t, s, matrixToken(t, "", call, "member-dev2", "@member:hs", false))
	l := connectWith(t, s, matrixToken(t, matrixRoom, call, "listener-dev", "@listener:hs", true))
	if p := l.Join.Participant.Permission; p == nil || p.CanPublish || !p.CanSubscribe {
		t.Errorf("the listener joined with %+v, want no publishing", p)
	}
	if sess := s.sfu.Sessions(call); len(sess) != 3 {
		t.Fatalf("%d sessions in the call, want 3", len(sess))
	}
	if ws, v := dialStatus(t, s, matrixToken(t, matrixRoom, call, "member-dev3", "@member:hs", false)); ws != http.StatusSwitchingProtocols || v != http.StatusOK {
		t.Errorf("member: /rtc %d, /rtc/validate %d; want 101 and 200", ws, v)
	}

	// The member leaves the room and the change is not (yet) applied to
	// the call: the dropped signal connection cannot resume, with either
	// token.
	pol.set("@member:hs", signaling.CallPermissions{})
	m.DropSignal()
	err := m.Resume(ctx, s.base, matrixToken(t, matrixRoom, call, "member-dev", "@member:hs", false))
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("resume after leaving the room: %v, want HTTP 403", err)
	}
	legacy.DropSignal()
	err = legacy.Resume(ctx, s.base, matrixToken(t, "", call, "member-dev2", "@member:hs", false))
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("resume with a legacy token after leaving the room: %v, want HTTP 403", err)
	}

	// The homeserver fails: no admission.
	pol.mu.Lock()
	pol.fail["@listener:hs"] = true
	pol.mu.Unlock()
	if ws, v := dialStatus(t, s, matrixToken(t, matrixRoom, call, "listener-dev2", "@listener:hs", false)); ws != http.StatusInternalServerError || v != http.StatusInternalServerError {
		t.Errorf("failing homeserver: /rtc %d, /rtc/validate %d; want 500", ws, v)
	}

	// Tokens that name no Matrix user are admitted on their signature.
	connect(t, s, call, "loadtest-1")
}

// TestLeaveWhileJoining: a member who leaves the room after the join was
// checked but before the session is in the call (the change applied by
// RoomChanged cannot see it yet) is removed as soon as it is in.
func TestLeaveWhileJoining(t *testing.T) {
	const matrixRoom = "!class:hs"
	pol := &policy{perms: map[string]signaling.CallPermissions{}, fail: map[string]bool{}}
	pol.set("@member:hs", speaker)
	var s *server
	var once sync.Once
	pol.afterAnswer = func(user string) {
		if user != "@member:hs" {
			return
		}
		once.Do(func() {
			// The kick lands between the admission and the join.
			pol.set("@member:hs", signaling.CallPermissions{})
			s.rtc.RoomChanged(context.Background(), matrixRoom)
		})
	}
	s = startServerWith(t, sfu.Config{}, func(p *signaling.RTCParams) { p.Authority = pol })
	call := signaling.LiveKitRoomAlias(matrixRoom, signaling.LegacySlotID)
	ctx := ctxT(t, 20*time.Second)
	c, err := lktest.Connect(ctx, s.base, matrixToken(t, matrixRoom, call, "member-dev", "@member:hs", false),
		lktest.Options{AutoSubscribe: true, KeepMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.WaitMessage(ctx, "removed from the call", func(m *livekit.SignalResponse) bool {
		l := m.GetLeave()
		return l != nil && l.Reason == livekit.DisconnectReason_PARTICIPANT_REMOVED && l.Action == livekit.LeaveRequest_DISCONNECT
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFor(ctx, "no session left", func() bool { return len(s.sfu.Sessions(call)) == 0 }); err != nil {
		t.Fatal(err)
	}
}
