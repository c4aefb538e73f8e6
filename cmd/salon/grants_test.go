package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/sfu/lktest"
)

// joinCall gets a LiveKit token from the MatrixRTC JWT service (OpenID →
// get_token, for the given slot) and connects to the embedded SFU with it.
func joinCall(t *testing.T, ctx context.Context, c *mxtest.Client, room, slot string) *lktest.Client {
	t.Helper()
	r := c.Must(200, "POST", "/livekit/jwt/get_token", map[string]any{
		"room_id": room, "slot_id": slot, "openid_token": openIDToken(t, c),
		"member": map[string]any{"id": "member-" + c.DeviceID, "claimed_user_id": c.UserID, "claimed_device_id": c.DeviceID},
	})
	lk, err := lktest.Connect(ctx, r.Str("url"), r.Str("jwt"), lktest.Options{AutoSubscribe: true, KeepMessages: true})
	if err != nil {
		t.Fatalf("%s joins the call: %v", c.UserID, err)
	}
	t.Cleanup(lk.Close)
	if err := lk.WaitFor(ctx, "subscriber connected", func() bool { return lk.SubscriberState() == webrtc.PeerConnectionStateConnected }); err != nil {
		t.Fatal(err)
	}
	return lk
}

// selfUpdate matches a ParticipantUpdate about lk's own participant whose
// version is above after and whose permission satisfies ok.
func selfUpdate(lk *lktest.Client, after uint32, ok func(*livekit.ParticipantPermission) bool) func(*livekit.SignalResponse) bool {
	sid := lk.Join.Participant.Sid
	return func(m *livekit.SignalResponse) bool {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.Sid == sid && p.Version > after && p.Permission != nil && ok(p.Permission) {
				return true
			}
		}
		return false
	}
}

func mayPublish(src livekit.TrackSource) func(*livekit.ParticipantPermission) bool {
	return func(p *livekit.ParticipantPermission) bool {
		return p.CanPublish && (len(p.CanPublishSources) == 0 || slices.Contains(p.CanPublishSources, src))
	}
}

func mayNotPublish(src livekit.TrackSource) func(*livekit.ParticipantPermission) bool {
	return func(p *livekit.ParticipantPermission) bool { return !mayPublish(src)(p) }
}

// versionOf is the version of the self update that m carries.
func versionOf(lk *lktest.Client, m *livekit.SignalResponse) uint32 {
	for _, p := range m.GetUpdate().GetParticipants() {
		if p.Sid == lk.Join.Participant.Sid {
			return p.Version
		}
	}
	return 0
}

// hears waits until lk receives packets of the track sid.
func hears(t *testing.T, ctx context.Context, lk *lktest.Client, sid, what string) {
	t.Helper()
	if err := lk.WaitPackets(ctx, what, sid, 3); err != nil {
		t.Fatal(err)
	}
}

func waitMsg(t *testing.T, ctx context.Context, lk *lktest.Client, what string, match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	t.Helper()
	m, err := lk.WaitMessage(ctx, what, match)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func unpublished(sid string) func(*livekit.SignalResponse) bool {
	return func(m *livekit.SignalResponse) bool { return m.GetTrackUnpublished().GetTrackSid() == sid }
}

// flushed waits until everything the server queued for lk before now has
// arrived: a ping's answer comes after it on the same connection.
func flushed(t *testing.T, ctx context.Context, lk *lktest.Client, n int64) {
	t.Helper()
	if err := lk.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: n}}}); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, ctx, lk, "pong", func(m *livekit.SignalResponse) bool { return m.GetPongResp().GetLastPingTimestamp() == n })
}

// TestTeachingModeLiveGrants: a class in a Matrix room's call. Teaching
// mode, the speakers list, a demotion and a kick — each an ordinary Matrix
// state change — reach the participants already connected to the SFU:
// grants change under them (ParticipantUpdate, tracks unpublished by the
// server), and a kicked student is removed from the call. Real HTTP,
// WebSocket and UDP, both backends.
func TestTeachingModeLiveGrants(t *testing.T) {
	forEachBackend(t, testTeachingModeLiveGrants)
}

func testTeachingModeLiveGrants(t *testing.T, db string) {
	srv := startServer(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	teacher := mxtest.Register(t, srv.URL, "teacher", "password teacher")
	assistant := mxtest.Register(t, srv.URL, "assistant", "password assistant")
	student := mxtest.Register(t, srv.URL, "student", "password student")
	other := mxtest.Register(t, srv.URL, "other", "password other")
	room := teacher.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	for _, c := range []*mxtest.Client{assistant, student, other} {
		c.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})
	}
	plPath := mxtest.Path("/_matrix/client/v3/rooms/%s/state/m.room.power_levels/", room)
	pl := teacher.Must(200, "GET", plPath, nil).Body
	pl["users"].(map[string]any)[assistant.UserID] = 50 // a moderator (kick is 50)
	teacher.Must(200, "PUT", plPath, pl)
	teachPath := mxtest.Path("/_matrix/client/v3/rooms/%s/state/org.salonhq.call.teaching/", room)

	// Everyone joins the call; the student and the assistant speak.
	tLK := joinCall(t, ctx, teacher, room, "m.call#ROOM")
	aLK := joinCall(t, ctx, assistant, room, "m.call#ROOM")
	sLK := joinCall(t, ctx, student, room, "m.call#ROOM")
	// Another slot of the same room (not Element Call's): the JWT service
	// remembers it, so live grants reach it too.
	oLK := joinCall(t, ctx, other, room, "m.call#breakout")
	sMic, err := sLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sMic.Stop()
	aMic, err := aLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer aMic.Stop()
	oMic, err := oLK.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer oMic.Stop()
	hears(t, ctx, tLK, sMic.Info.Sid, "the student's audio")
	hears(t, ctx, tLK, aMic.Info.Sid, "the assistant's audio")

	// A student may not turn teaching mode on.
	student.MustErr(403, "M_FORBIDDEN", "PUT", teachPath, map[string]any{"enabled": true, "speakers": []any{student.UserID}})

	// Teaching mode on: the student's microphone goes, the moderators keep theirs.
	teacher.Must(200, "PUT", teachPath, map[string]any{"enabled": true, "speakers": []any{}})
	waitMsg(t, ctx, sLK, "the student's audio unpublished", unpublished(sMic.Info.Sid))
	off := waitMsg(t, ctx, sLK, "the student's permission without microphone", selfUpdate(sLK, 0, mayNotPublish(livekit.TrackSource_MICROPHONE)))
	if p := firstSelf(sLK, off).Permission; p.CanPublish || !p.CanSubscribe || !p.CanPublishData {
		t.Fatalf("student's permission in teaching mode: %+v", p)
	}
	waitMsg(t, ctx, tLK, "the teacher sees the student without tracks", func(m *livekit.SignalResponse) bool {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.Sid == sLK.Join.Participant.Sid && p.Permission != nil && !p.Permission.CanPublish && len(p.Tracks) == 0 {
				return true
			}
		}
		return false
	})
	waitMsg(t, ctx, oLK, "the other slot's audio unpublished", unpublished(oMic.Info.Sid))
	// The student cannot publish again.
	if err := sLK.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
		Cid: "again", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE}}}); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, ctx, sLK, "publishing refused", func(m *livekit.SignalResponse) bool {
		return m.GetRequestResponse().GetReason() == livekit.RequestResponse_NOT_ALLOWED
	})

	// The teacher lets the student speak.
	teacher.Must(200, "PUT", teachPath, map[string]any{"enabled": true, "speakers": []any{student.UserID}})
	waitMsg(t, ctx, sLK, "the student's permission with microphone again", selfUpdate(sLK, versionOf(sLK, off), mayPublish(livekit.TrackSource_MICROPHONE)))
	sMic2, err := sLK.PublishAudio(ctx, "mic2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sMic2.Stop()
	hears(t, ctx, tLK, sMic2.Info.Sid, "the student's new audio")

	// The moderators' grants did not change: nothing was sent to them
	// about themselves. (Everything queued for them before the second
	// change was applied has arrived once a ping is answered.)
	for i, lk := range []*lktest.Client{tLK, aLK} {
		flushed(t, ctx, lk, int64(100+i))
		if m := seen(lk, selfUpdate(lk, 0, mayNotPublish(livekit.TrackSource_MICROPHONE))); m != nil {
			t.Fatalf("moderator %d was sent a permission without microphone: %v", i, m)
		}
	}
	if m := seen(tLK, selfUpdate(tLK, 0, func(*livekit.ParticipantPermission) bool { return true })); m != nil {
		t.Fatalf("the teacher was sent an update about itself: %v", m)
	}

	// The assistant is demoted: in teaching mode, not a speaker, they now listen.
	delete(pl["users"].(map[string]any), assistant.UserID)
	teacher.Must(200, "PUT", plPath, pl)
	waitMsg(t, ctx, aLK, "the demoted assistant's audio unpublished", unpublished(aMic.Info.Sid))
	waitMsg(t, ctx, aLK, "the demoted assistant's permission", selfUpdate(aLK, 0, mayNotPublish(livekit.TrackSource_MICROPHONE)))

	// The student is kicked from the room: out of the call too.
	teacher.Must(200, "POST", mxtest.Path("/_matrix/client/v3/rooms/%s/kick", room), map[string]any{"user_id": student.UserID})
	waitMsg(t, ctx, sLK, "the kicked student's leave", func(m *livekit.SignalResponse) bool {
		l := m.GetLeave()
		return l != nil && l.Reason == livekit.DisconnectReason_PARTICIPANT_REMOVED && l.Action == livekit.LeaveRequest_DISCONNECT
	})
	waitMsg(t, ctx, tLK, "the teacher sees the student leave", func(m *livekit.SignalResponse) bool {
		for _, p := range m.GetUpdate().GetParticipants() {
			if p.Sid == sLK.Join.Participant.Sid && p.State == livekit.ParticipantInfo_DISCONNECTED {
				return true
			}
		}
		return false
	})
	if err := sLK.WaitFor(ctx, "the student's signal connection closed", func() bool { _, _, closed := sLK.Closed(); return closed }); err != nil {
		t.Fatal(err)
	}

	// Teaching mode off: the demoted assistant and the other slot's
	// member speak again.
	aOff := seen(aLK, selfUpdate(aLK, 0, mayNotPublish(livekit.TrackSource_MICROPHONE)))
	oOff := waitMsg(t, ctx, oLK, "the other slot's permission", selfUpdate(oLK, 0, mayNotPublish(livekit.TrackSource_MICROPHONE)))
	teacher.Must(200, "PUT", teachPath, map[string]any{"enabled": false})
	waitMsg(t, ctx, aLK, "the assistant may publish again", selfUpdate(aLK, versionOf(aLK, aOff), mayPublish(livekit.TrackSource_MICROPHONE)))
	waitMsg(t, ctx, oLK, "the other slot may publish again", selfUpdate(oLK, versionOf(oLK, oOff), mayPublish(livekit.TrackSource_MICROPHONE)))
}

// seen returns a message lk already received that matches, or nil; it
// does not wait.
func seen(lk *lktest.Client, match func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	m, _ := lk.WaitMessage(now, "", match)
	return m
}

// firstSelf is lk's own ParticipantInfo in an update.
func firstSelf(lk *lktest.Client, m *livekit.SignalResponse) *livekit.ParticipantInfo {
	for _, p := range m.GetUpdate().GetParticipants() {
		if p.Sid == lk.Join.Participant.Sid {
			return p
		}
	}
	return nil
}
