package signaling_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
	"github.com/salonhq/salon/signaling"
)

// TestCallEndToEnd: two pion clients speaking the LiveKit protocol join a
// call; A publishes Opus and three-layer simulcast VP8; B receives both,
// asks for a smaller size and gets the low layer; A mutes, sends data and
// leaves; B sees each.
func TestCallEndToEnd(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")

	j := b.Join
	if j.ServerInfo.GetVersion() == "" || j.ServerVersion == "" || !j.SubscriberPrimary || j.PingInterval == 0 || j.PingTimeout == 0 || !j.FastPublish {
		t.Fatalf("join response lacks what livekit-client needs: %+v", j)
	}
	if len(j.IceServers) != 1 || j.IceServers[0].Username != "1:bob" {
		t.Fatalf("ice servers: %v", j.IceServers)
	}
	if len(j.OtherParticipants) != 1 || j.OtherParticipants[0].Identity != "alice" || !strings.HasPrefix(j.Participant.Sid, "PA_") || !strings.HasPrefix(j.Room.Sid, "RM_") {
		t.Fatalf("join response participants: %+v / %+v", j.Participant, j.OtherParticipants)
	}

	ctx := ctxT(t, 30*time.Second)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	video, err := a.PublishVideo(ctx, "cam", lktest.DefaultSimulcast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(audio.Info.Sid, "TR_") || len(video.Info.Layers) != 3 {
		t.Fatalf("track published responses: %v / %v", audio.Info, video.Info)
	}

	var at, vt *lktest.RemoteTrack
	if err := b.WaitFor(ctx, "both tracks on B", func() bool {
		at, vt = b.Track(audio.Info.Sid), b.Track(video.Info.Sid)
		return at != nil && vt != nil && at.Packets.Load() > 10 && vt.Packets.Load() > 10
	}); err != nil {
		t.Fatal(err)
	}
	if want := a.Join.Participant.Sid + "|" + video.Info.Sid; vt.StreamID != want {
		t.Errorf("stream id %q, want %q", vt.StreamID, want)
	}
	if !strings.EqualFold(at.Mime, "audio/opus") || !strings.EqualFold(vt.Mime, "video/VP8") {
		t.Errorf("codecs %s / %s", at.Mime, vt.Mime)
	}
	if err := b.WaitFor(ctx, "high layer by default", func() bool { return vt.LastLayer.Load() == 2 }); err != nil {
		t.Fatal(err)
	}

	// Adaptive stream: a 320×180 element gets the low layer.
	if err := b.UpdateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: []string{video.Info.Sid}, Width: 320, Height: 180}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "switch to the low layer", func() bool { return vt.LastLayer.Load() == 0 }); err != nil {
		t.Fatal(err)
	}
	low := vt.LayerPackets[0].Load()
	time.Sleep(300 * time.Millisecond)
	if vt.LayerPackets[0].Load() <= low || vt.LastLayer.Load() != 0 {
		t.Fatalf("low layer does not keep flowing: %d → %d, last %d", low, vt.LayerPackets[0].Load(), vt.LastLayer.Load())
	}
	if g := vt.Gaps.Load(); g > 2 {
		t.Errorf("%d sequence gaps across the layer switch", g)
	}
	// Dynacast: nobody wants the high layer any more, so after a hold the
	// publisher is told to stop encoding it.
	if _, err := a.WaitMessage(ctx, "subscribed quality update", func(m *livekit.SignalResponse) bool {
		u := m.GetSubscribedQualityUpdate()
		if u.GetTrackSid() != video.Info.Sid || len(u.SubscribedCodecs) != 1 || u.SubscribedCodecs[0].Codec != "vp8" {
			return false
		}
		q := u.SubscribedCodecs[0].Qualities
		return len(q) == 3 && q[0].Enabled && !q[2].Enabled
	}); err != nil {
		t.Fatal(err)
	}
	// And back up through the quality field.
	if err := b.UpdateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: []string{video.Info.Sid}, Quality: livekit.VideoQuality_MEDIUM}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "switch to the medium layer", func() bool { return vt.LastLayer.Load() == 1 }); err != nil {
		t.Fatal(err)
	}

	// Mute.
	if err := a.Mute(audio.Info.Sid, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitMessage(ctx, "TrackMuted in a participant update", func(m *livekit.SignalResponse) bool {
		p := update(a.Join.Participant.Sid)(m)
		for _, tr := range p.GetTracks() {
			if tr.Sid == audio.Info.Sid && tr.Muted {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}

	// Data over _reliable, stamped with the sender's identity.
	if err := a.WaitFor(ctx, "publisher connected", func() bool { return a.PublisherState().String() == "connected" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // data channels open after SCTP
	if err := a.SendData(&livekit.DataPacket{ParticipantIdentity: "mallory", Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("hi"), Topic: strPtr("chat")}}}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "data packet", func() bool {
		for _, d := range b.Data() {
			if string(d.GetUser().GetPayload()) == "hi" && d.ParticipantIdentity == "alice" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}

	// Leave.
	aSID := a.Join.Participant.Sid
	audio.Stop()
	video.Stop()
	a.Leave()
	if _, err := b.WaitMessage(ctx, "DISCONNECTED update", func(m *livekit.SignalResponse) bool {
		p := update(aSID)(m)
		return p != nil && p.State == livekit.ParticipantInfo_DISCONNECTED
	}); err != nil {
		t.Fatal(err)
	}
	b.Leave()
	waitRooms(t, s, 0)
}

func strPtr(s string) *string { return &s }

func waitRooms(t *testing.T, s *server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.sfu.Stats().Rooms != n {
		if time.Now().After(deadline) {
			t.Fatalf("rooms = %d, want %d", s.sfu.Stats().Rooms, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTokensRefused: forged, expired and wrong-room tokens are refused by
// /rtc, and /rtc/validate says why.
func TestTokensRefused(t *testing.T) {
	s := startServer(t, sfu.Config{})
	forged := func() string {
		at := auth.NewAccessToken(testKey, "not-the-secret-not-the-secret-not-it")
		at.SetIdentity("eve").SetValidFor(time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "call"})
		j, _ := at.ToJWT()
		return j
	}()
	unknownKey := func() string {
		at := auth.NewAccessToken("other-key", testSecret)
		at.SetIdentity("eve").SetValidFor(time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "call"})
		j, _ := at.ToJWT()
		return j
	}()
	expired := expiredToken(t, "call", "eve")
	noJoin := token(t, "call", "eve", func(_ *auth.AccessToken, g *auth.VideoGrant) { g.RoomJoin = false })
	tests := []struct {
		name, token, query string
		status             int
		says               string
	}{
		{"forged signature", forged, "", 401, "signature is invalid"},
		{"unknown key", unknownKey, "", 401, "invalid API key"},
		{"expired", expired, "", 401, "expired"},
		{"no join grant", noJoin, "", 401, "does not grant joining"},
		{"wrong room", token(t, "call", "eve"), "&room=other", 401, "another room"},
		{"garbage", "not.a.jwt", "", 401, "invalid token"},
		{"missing", "", "", 401, "missing access token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t, 5*time.Second)
			u := s.base + "/rtc?access_token=" + url.QueryEscape(tc.token) + tc.query
			ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
			if err == nil {
				ws.Close()
				t.Fatal("connection accepted")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("/rtc: %v %v", resp, err)
			}
			res, err := http.Get(s.http + "/rtc/validate?access_token=" + url.QueryEscape(tc.token) + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Fatalf("/rtc/validate: %d %q, want %d containing %q", res.StatusCode, body, tc.status, tc.says)
			}
			if strings.Contains(string(body), tc.token) && tc.token != "" {
				t.Fatal("the token is echoed back")
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		res, err := http.Get(s.http + "/rtc/validate?access_token=" + url.QueryEscape(token(t, "call", "ann")))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "success" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
	})
	t.Run("authorization scheme in any case", func(t *testing.T) {
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			req, _ := http.NewRequest(http.MethodGet, s.http+"/rtc/validate", nil)
			req.Header.Set("Authorization", scheme+" "+token(t, "call", "ann"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(body) != "success" {
				t.Fatalf("%s: %d %q", scheme, res.StatusCode, body)
			}
		}
	})
}

// TestMalformedFrameDisconnectsOnlyTheOffender: a client sending a frame
// that is not a SignalRequest is disconnected with a reason; the others'
// media keeps flowing.
func TestMalformedFrameDisconnectsOnlyTheOffender(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, 20*time.Second)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	var at *lktest.RemoteTrack
	if err := b.WaitFor(ctx, "audio on B", func() bool {
		at = b.Track(audio.Info.Sid)
		return at != nil && at.Packets.Load() > 5
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		mt    int
		frame []byte
	}{
		{"not protobuf", websocket.BinaryMessage, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"empty", websocket.BinaryMessage, nil},
		{"text", websocket.TextMessage, []byte(`{"offer":{}}`)},
		{"hostile sdp", websocket.BinaryMessage, mustMarshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n" + strings.Repeat("a=candidate:x\r\n", 1000)}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := connect(t, s, "call", "mallory-"+strings.ReplaceAll(tc.name, " ", "-"))
			if err := m.SendRaw(tc.mt, tc.frame); err != nil {
				t.Fatal(err)
			}
			if err := m.WaitFor(ctx, "disconnect", func() bool { _, _, closed := m.Closed(); return closed }); err != nil {
				t.Fatal(err)
			}
			code, text, _ := m.Closed()
			if code != websocket.ClosePolicyViolation || text == "" {
				t.Fatalf("close %d %q, want a policy violation with a reason", code, text)
			}
			if _, err := m.WaitMessage(ctx, "leave", func(r *livekit.SignalResponse) bool { return r.GetLeave() != nil }); err != nil {
				t.Fatal(err)
			}
			before := at.Packets.Load()
			if err := b.WaitFor(ctx, "audio still flowing to B", func() bool { return at.Packets.Load() > before+10 }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTrackPublicationFlood: a client announcing 1,000 tracks is told no
// past the limit, then disconnected; the call goes on.
func TestTrackPublicationFlood(t *testing.T) {
	s := startServer(t, sfu.Config{MaxTracksPerParticipant: 4})
	b := connect(t, s, "call", "bob")
	m := connect(t, s, "call", "mallory")
	ctx := ctxT(t, 20*time.Second)
	sent := 0
	for i := 0; i < 1000; i++ {
		if err := m.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
			Cid: "t" + itoa(i), Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE,
		}}}); err != nil {
			break
		}
		sent++
		time.Sleep(time.Millisecond)
	}
	if err := m.WaitFor(ctx, "disconnect", func() bool { _, _, c := m.Closed(); return c }); err != nil {
		t.Fatalf("after %d publications: %v", sent, err)
	}
	if _, err := m.WaitMessage(ctx, "limit exceeded", func(r *livekit.SignalResponse) bool {
		return r.GetRequestResponse().GetReason() == livekit.RequestResponse_LIMIT_EXCEEDED
	}); err != nil {
		t.Fatal(err)
	}
	_, text, _ := m.Closed()
	t.Logf("closed after %d publications: %q", sent, text)
	// Bob is still in the call and hears about Mallory leaving.
	if _, err := b.WaitMessage(ctx, "mallory disconnected", func(r *livekit.SignalResponse) bool {
		p := update(m.Join.Participant.Sid)(r)
		return p != nil && p.State == livekit.ParticipantInfo_DISCONNECTED
	}); err != nil {
		t.Fatal(err)
	}
	if s.sfu.Stats().Participants != 1 {
		t.Fatalf("participants = %d", s.sfu.Stats().Participants)
	}
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestSignalFlood: a client that sends faster than any real client is
// disconnected.
func TestSignalFlood(t *testing.T) {
	s := startServer(t, sfu.Config{})
	m := connect(t, s, "call", "mallory")
	ping := mustMarshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 1}})
	for i := 0; i < 2000; i++ {
		if m.SendRaw(websocket.BinaryMessage, ping) != nil {
			break
		}
	}
	ctx := ctxT(t, 10*time.Second)
	if err := m.WaitFor(ctx, "disconnect", func() bool { _, _, c := m.Closed(); return c }); err != nil {
		t.Fatal(err)
	}
	if _, text, _ := m.Closed(); !strings.Contains(text, "flood") {
		t.Fatalf("reason %q", text)
	}
}

// TestRoomLimits: over max_participants the join is refused with a reason
// (and /rtc/validate says so); over max_publishers the publication is
// refused with the protocol's LIMIT_EXCEEDED; the others notice nothing.
func TestRoomLimits(t *testing.T) {
	s := startServer(t, sfu.Config{MaxParticipants: 2, MaxPublishers: 1})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, 20*time.Second)
	tok := token(t, "call", "carol")
	if _, err := lktest.Connect(ctx, s.base, tok, lktest.Options{}); err == nil {
		t.Fatal("third participant admitted")
	}
	res, err := http.Get(s.http + "/rtc/validate?access_token=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || !strings.Contains(string(body), "full") {
		t.Fatalf("validate: %d %q", res.StatusCode, body)
	}
	if _, err := a.PublishAudio(ctx, "mic", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "b-mic", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitMessage(ctx, "limit exceeded", func(r *livekit.SignalResponse) bool {
		return r.GetRequestResponse().GetReason() == livekit.RequestResponse_LIMIT_EXCEEDED
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, closed := b.Closed(); closed {
		t.Fatal("bob was disconnected")
	}
}

// TestLiveGrantChange: revoking publish unpublishes the participant's
// tracks without a rejoin; the participant learns its new permission.
func TestLiveGrantChange(t *testing.T) {
	s, a, b, audio, ctx := audioCall(t, 20*time.Second)
	if !s.rtc.UpdatePermissions("call", "alice", signalingPermission(false)) {
		t.Fatal("alice not found")
	}
	if _, err := a.WaitMessage(ctx, "track unpublished", func(r *livekit.SignalResponse) bool {
		return r.GetTrackUnpublished().GetTrackSid() == audio.Info.Sid
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitMessage(ctx, "own permission update", func(r *livekit.SignalResponse) bool {
		p := update(a.Join.Participant.Sid)(r)
		return p != nil && p.Permission != nil && !p.Permission.CanPublish
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitMessage(ctx, "alice without tracks", func(r *livekit.SignalResponse) bool {
		p := update(a.Join.Participant.Sid)(r)
		return p != nil && p.Permission != nil && !p.Permission.CanPublish && len(p.Tracks) == 0
	}); err != nil {
		t.Fatal(err)
	}
	// A new publication is now refused.
	if err := a.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "again", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitMessage(ctx, "not allowed", func(r *livekit.SignalResponse) bool {
		return r.GetRequestResponse().GetReason() == livekit.RequestResponse_NOT_ALLOWED
	}); err != nil {
		t.Fatal(err)
	}
}

// TestResume: the signal connection drops (a network change) and the
// client resumes with reconnect=1: same participant, media keeps flowing.
func TestResume(t *testing.T) {
	s, a, b, audio, ctx := audioCall(t, 30*time.Second)
	b.DropSignal()
	time.Sleep(200 * time.Millisecond)
	if s.sfu.Stats().Participants != 2 {
		t.Fatal("bob removed at once instead of kept for a resume")
	}
	if err := b.Resume(ctx, s.base, token(t, "call", "bob")); err != nil {
		t.Fatal(err)
	}
	if b.Reconnect == nil {
		t.Fatal("no reconnect response")
	}
	tr := b.Track(audio.Info.Sid)
	before := tr.Packets.Load()
	if err := b.WaitFor(ctx, "audio after resume", func() bool { return tr.Packets.Load() > before+10 }); err != nil {
		t.Fatal(err)
	}
	// Signalling works on the new connection.
	if err := a.Mute(audio.Info.Sid, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitMessage(ctx, "mute after resume", func(m *livekit.SignalResponse) bool {
		for _, tr := range update(a.Join.Participant.Sid)(m).GetTracks() {
			if tr.Muted {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	// Resuming an unknown session is answered with a full-reconnect leave.
	if _, err := lktest.Connect(ctx, s.base, token(t, "call", "bob"), lktest.Options{Reconnect: true, ParticipantSID: "PA_nope"}); err == nil || !strings.Contains(err.Error(), "STATE_MISMATCH") {
		t.Fatalf("unknown session: %v", err)
	}
}

// TestActiveSpeaker: a participant whose audio level says it speaks is
// announced in SpeakersChanged, and announced silent again after.
func TestActiveSpeaker(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, 20*time.Second)
	var speaking atomic.Bool
	speaking.Store(true)
	audio, err := a.PublishAudio(ctx, "mic", &speaking)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	sid := a.Join.Participant.Sid
	if _, err := b.WaitMessage(ctx, "alice speaking", func(m *livekit.SignalResponse) bool {
		for _, sp := range m.GetSpeakersChanged().GetSpeakers() {
			if sp.Sid == sid && sp.Active && sp.Level > 0 {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	speaking.Store(false)
	if _, err := b.WaitMessage(ctx, "alice silent", func(m *livekit.SignalResponse) bool {
		for _, sp := range m.GetSpeakersChanged().GetSpeakers() {
			if sp.Sid == sid && !sp.Active {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
}

var _ = context.Background

// TestSilentClientDropped: a WebSocket that goes quiet (no pings, a dead
// network) is closed after the ping timeout; the participant is kept for
// the resume window, then leaves, and the others hear of it.
func TestSilentClientDropped(t *testing.T) {
	s := startServer(t, sfu.Config{PingInterval: time.Second, PingTimeout: 2 * time.Second, ResumeWindow: 500 * time.Millisecond})
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, 10*time.Second)
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, s.base+"/rtc?access_token="+url.QueryEscape(token(t, "call", "zombie")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// Read (the server must not block on us) but never send.
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if _, err := b.WaitMessage(ctx, "zombie gone", func(r *livekit.SignalResponse) bool {
		for _, p := range r.GetUpdate().GetParticipants() {
			if p.Identity == "zombie" && p.State == livekit.ParticipantInfo_DISCONNECTED {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
}

// TestICETCP: a client whose network blocks UDP reaches the SFU over its
// one ICE-TCP port, publishes, and a UDP client receives.
func TestICETCP(t *testing.T) {
	s := startServer(t, sfu.Config{})
	b := connect(t, s, "call", "bob")
	ctx := ctxT(t, 20*time.Second)
	a, err := lktest.Connect(ctx, s.base, token(t, "call", "alice"), lktest.Options{AutoSubscribe: true, KeepMessages: true, TCPOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.WaitFor(ctx, "subscriber connected over TCP", func() bool { return a.SubscriberState().String() == "connected" }); err != nil {
		t.Fatalf("%v (%s)", err, a.Debug())
	}
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	if err := b.WaitPackets(ctx, "audio from the TCP client", audio.Info.Sid, 10); err != nil {
		t.Fatal(err)
	}
}

// TestNAT1To1: behind a 1:1 NAT the SFU advertises the public address in
// its candidates, never the private one.
func TestNAT1To1(t *testing.T) {
	s := startServer(t, sfu.Config{NAT1To1IPs: []string{"203.0.113.7"}})
	c := connect(t, s, "call", "alice")
	ctx := ctxT(t, 10*time.Second)
	m, err := c.WaitMessage(ctx, "a server candidate", func(r *livekit.SignalResponse) bool { return r.GetTrickle() != nil })
	if err != nil {
		t.Fatal(err)
	}
	cand := m.GetTrickle().CandidateInit
	if !strings.Contains(cand, "203.0.113.7") || strings.Contains(cand, "127.0.0.1") {
		t.Fatalf("candidate %s", cand)
	}
}

// TestUnsupportedCodec: an offer whose only codec the SFU does not forward
// gets an answer that rejects the section (or, if unusable, a disconnect
// with a reason); the call goes on for everyone else.
func TestUnsupportedCodec(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	m := connect(t, s, "call", "mallory")
	ctx := ctxT(t, 20*time.Second)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	if err := b.WaitPackets(ctx, "audio on B", audio.Info.Sid, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddTrack(ctx, &livekit.AddTrackRequest{Cid: "h265", Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_CAMERA}); err != nil {
		t.Fatal(err)
	}
	sdp := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
		"a=setup:actpass\r\na=rtpmap:120 H265/90000\r\na=msid:s h265\r\n"
	if err := m.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: sdp, Id: 1}}}); err != nil {
		t.Fatal(err)
	}
	var outcome string
	if err := m.WaitFor(ctx, "answer or disconnect", func() bool {
		if _, text, closed := m.Closed(); closed {
			outcome = "disconnected: " + text
			return true
		}
		ans, _ := m.WaitMessage(ctxT(t, 10*time.Millisecond), "answer", func(r *livekit.SignalResponse) bool { return r.GetAnswer() != nil })
		if ans != nil {
			outcome = "answered"
			if !strings.Contains(ans.GetAnswer().Sdp, "m=video 0") && strings.Contains(ans.GetAnswer().Sdp, "H265") {
				outcome = "accepted H265"
			}
			return true
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("unsupported codec: %s", outcome)
	if outcome == "accepted H265" {
		t.Fatal("the answer accepts a codec the SFU does not forward")
	}
	before := b.Track(audio.Info.Sid).Packets.Load()
	if err := b.WaitFor(ctx, "audio still flowing", func() bool { return b.Track(audio.Info.Sid).Packets.Load() > before+10 }); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateIdentity: joining again with the same identity (the same
// device reconnecting from scratch) replaces the old session, which is
// told why.
func TestDuplicateIdentity(t *testing.T) {
	s := startServer(t, sfu.Config{})
	b := connect(t, s, "call", "bob")
	a1 := connect(t, s, "call", "alice")
	a2 := connect(t, s, "call", "alice")
	ctx := ctxT(t, 10*time.Second)
	if _, err := a1.WaitMessage(ctx, "leave", func(r *livekit.SignalResponse) bool {
		return r.GetLeave().GetReason() == livekit.DisconnectReason_DUPLICATE_IDENTITY
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitMessage(ctx, "old alice gone", func(r *livekit.SignalResponse) bool {
		p := update(a1.Join.Participant.Sid)(r)
		return p != nil && p.State == livekit.ParticipantInfo_DISCONNECTED
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := s.sfu.Stats().Participants; n != 2 {
		t.Fatalf("participants = %d, want 2", n)
	}
	if _, _, closed := a2.Closed(); closed {
		t.Fatal("the new session was closed")
	}
}

// TestDataDestinations: a data packet for one identity reaches only it;
// one without destinations reaches everyone else; a sender without the
// publish-data grant is not forwarded.
func TestDataDestinations(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	b := connect(t, s, "call", "bob")
	c := connect(t, s, "call", "carol")
	ctx := ctxT(t, 15*time.Second)
	// The data channels ride on the publisher connection (fast publish).
	if err := a.Negotiate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitFor(ctx, "publisher connected", func() bool { return a.PublisherState().String() == "connected" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	send := func(payload string, dest ...string) {
		if err := a.SendData(&livekit.DataPacket{DestinationIdentities: dest, Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte(payload)}}}, false); err != nil {
			t.Fatal(err)
		}
	}
	got := func(cl interface{ Data() []*livekit.DataPacket }, payload string) bool {
		for _, d := range cl.Data() {
			if string(d.GetUser().GetPayload()) == payload {
				return true
			}
		}
		return false
	}
	// A subscriber's data channel may open a moment after its connection
	// (more so on a loaded machine), and the SFU does not hold packets for
	// a channel not yet open: send until carol has both and bob his.
	for {
		send("for carol", "carol")
		send("for all")
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.WaitFor(wctx, "carol's and bob's packets", func() bool {
			return got(c, "for carol") && got(c, "for all") && got(b, "for all")
		})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	if got(b, "for carol") {
		t.Fatal("bob received carol's packet")
	}
}

// TestHiddenParticipant: a participant whose grant is hidden (a recorder)
// is neither in others' join responses nor announced.
func TestHiddenParticipant(t *testing.T) {
	s := startServer(t, sfu.Config{})
	ctx := ctxT(t, 10*time.Second)
	h, err := lktest.Connect(ctx, s.base, token(t, "call", "recorder", func(_ *auth.AccessToken, g *auth.VideoGrant) { g.Hidden = true }), lktest.Options{AutoSubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b := connect(t, s, "call", "bob")
	for _, p := range b.Join.OtherParticipants {
		if p.Identity == "recorder" {
			t.Fatal("hidden participant in the join response")
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := b.WaitMessage(ctxT(t, 300*time.Millisecond), "recorder", func(r *livekit.SignalResponse) bool {
		return update(h.Join.Participant.Sid)(r) != nil
	}); err == nil {
		t.Fatal("hidden participant announced")
	}
}

// TestTokenRefresh: a connected client is sent fresh tokens that carry
// its current grant, so it can resume after its first token expired.
func TestTokenRefresh(t *testing.T) {
	s := startServerWith(t, sfu.Config{}, func(p *signaling.RTCParams) { p.TokenRefresh = 200 * time.Millisecond })
	a := connect(t, s, "call", "alice")
	ctx := ctxT(t, 10*time.Second)
	verify := func(tok string) *auth.ClaimGrants {
		v, err := auth.ParseAPIToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		_, g, err := v.Verify(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	m, err := a.WaitMessage(ctx, "refresh token", func(r *livekit.SignalResponse) bool { return r.GetRefreshToken() != "" })
	if err != nil {
		t.Fatal(err)
	}
	g := verify(m.GetRefreshToken())
	if g.Identity != "alice" || g.Video.Room != "call" || !g.Video.RoomJoin || !g.Video.GetCanPublish() {
		t.Fatalf("refreshed grant: %+v %+v", g, g.Video)
	}
	s.rtc.UpdatePermissions("call", "alice", signaling.Permission{CanSubscribe: true})
	if _, err := a.WaitMessage(ctx, "refresh token without publish", func(r *livekit.SignalResponse) bool {
		return r.GetRefreshToken() != "" && !verify(r.GetRefreshToken()).Video.GetCanPublish()
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTrackSubscribedSentToPublisher: the publisher hears when its track
// gets its first subscriber.
func TestTrackSubscribedSentToPublisher(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connect(t, s, "call", "alice")
	connect(t, s, "call", "bob")
	ctx := ctxT(t, 10*time.Second)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	if _, err := a.WaitMessage(ctx, "track subscribed", func(r *livekit.SignalResponse) bool {
		return r.GetTrackSubscribed().GetTrackSid() == audio.Info.Sid
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriberRTCPReadOffTheSocket: in a call over the SFU's UDP socket,
// the subscriber's RTCP (receiver reports, TWCC feedback) is read off that
// socket by the SFU's router, not through pion's connection.
func TestSubscriberRTCPReadOffTheSocket(t *testing.T) {
	s, _, b, _, ctx := audioCall(t, 20*time.Second)
	if err := b.WaitFor(ctx, "the subscriber's RTCP on the direct read path", func() bool {
		return s.sfu.Stats().RTCPDirect > 0
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUnsubscribeResubscribe: a subscriber drops a track and takes it
// again at once; media comes back.
func TestUnsubscribeResubscribe(t *testing.T) {
	s, _, b, audio, ctx := audioCall(t, 20*time.Second)
	sub := func(on bool) {
		if err := b.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Subscription{Subscription: &livekit.UpdateSubscription{TrackSids: []string{audio.Info.Sid}, Subscribe: on}}}); err != nil {
			t.Fatal(err)
		}
	}
	sub(false)
	sub(true)
	time.Sleep(500 * time.Millisecond)
	if s.sfu.Stats().PacketsOut == 0 {
		t.Fatal("nothing forwarded")
	}
	tr := b.Track(audio.Info.Sid)
	before := tr.Packets.Load()
	if err := b.WaitFor(ctx, "audio after resubscribing", func() bool {
		tr = b.Track(audio.Info.Sid)
		return tr != nil && tr.Packets.Load() > before+10
	}); err != nil {
		t.Fatal(err)
	}
}
