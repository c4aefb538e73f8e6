package signaling_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/sfu/lktest"
)

func connectSingle(t testing.TB, s *server, room, identity string, gz bool) *lktest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lktest.Connect(ctx, s.base, token(t, room, identity), lktest.Options{
		AutoSubscribe: true, KeepMessages: true, SinglePeerConnection: true, GzipJoinRequest: gz,
	})
	if err != nil {
		t.Fatalf("%s: connect through /rtc/v1: %v", identity, err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestSinglePeerConnection: participants joining through /rtc/v1 (one
// peer connection, the first offer in the join request) publish and
// receive audio, simulcast video and data with each other and with a
// participant on /rtc (two connections); more tracks than the client's
// initial receive sections make the SFU ask for more.
func TestSinglePeerConnection(t *testing.T) {
	s := startServer(t, sfu.Config{})
	a := connectSingle(t, s, "call", "alice", true)
	b := connectSingle(t, s, "call", "bob", false)
	d := connect(t, s, "call", "dora") // /rtc, two connections

	if b.Join.SubscriberPrimary {
		t.Fatal("a single connection is the client's to offer: subscriber_primary must be off")
	}
	ctx := ctxT(t, 40*time.Second)
	audio, err := a.PublishAudio(ctx, "mic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audio.Stop()
	video, err := a.PublishVideo(ctx, "cam", lktest.DefaultSimulcast)
	if err != nil {
		t.Fatal(err)
	}
	defer video.Stop()
	for _, c := range []*lktest.Client{b, d} {
		if err := c.WaitFor(ctx, "alice's audio and video", func() bool {
			at, vt := c.Track(audio.Info.Sid), c.Track(video.Info.Sid)
			return at != nil && vt != nil && at.Packets.Load() > 10 && vt.Packets.Load() > 10
		}); err != nil {
			t.Fatalf("%v (%s)", err, c.Debug())
		}
	}
	vt := b.Track(video.Info.Sid)
	if want := a.Join.Participant.Sid + "|" + video.Info.Sid; vt.StreamID != want {
		t.Errorf("stream id %q, want %q", vt.StreamID, want)
	}
	named := map[string]bool{}
	for _, sid := range b.MidToTrack() {
		named[sid] = true
	}
	if !named[audio.Info.Sid] || !named[video.Info.Sid] {
		t.Errorf("the answer's mid_to_track_id %v does not name alice's tracks", b.MidToTrack())
	}
	// Layer selection works on the single connection too.
	if err := b.UpdateTrackSettings(&livekit.UpdateTrackSettings{TrackSids: []string{video.Info.Sid}, Width: 320, Height: 180}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "switch to the low layer", func() bool { return vt.LastLayer.Load() == 0 }); err != nil {
		t.Fatal(err)
	}

	// Dora (two connections) publishes three videos: bob has two receive
	// sections for video, one already used, so the SFU asks for more.
	var sids []string
	for _, cid := range []string{"cam1", "cam2", "cam3"} {
		src, err := d.PublishVideo(ctx, cid, []lktest.VideoLayerSpec{{Quality: livekit.VideoQuality_HIGH, Width: 640, Height: 360, PacketsPerFrame: 1, PacketSize: 600}})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Stop()
		sids = append(sids, src.Info.Sid)
	}
	if err := b.WaitFor(ctx, "dora's three videos", func() bool {
		for _, sid := range sids {
			if tr := b.Track(sid); tr == nil || tr.Packets.Load() < 5 {
				return false
			}
		}
		return true
	}); err != nil {
		var got []string
		for _, sid := range sids {
			if tr := b.Track(sid); tr != nil {
				got = append(got, sid)
			}
		}
		t.Fatalf("%v (%s; got %v of %v; section requests %d; mids %v)", err, b.Debug(), got, sids, b.SectionRequests(), b.MidToTrack())
	}
	if b.SectionRequests() == 0 {
		t.Error("no MediaSectionsRequirement answered")
	}
	if _, err := b.WaitMessage(ctx, "media sections requirement", func(m *livekit.SignalResponse) bool {
		return m.GetMediaSectionsRequirement().GetNumVideos() > 0
	}); err != nil {
		t.Fatal(err)
	}

	// Bob publishes; alice (single) and dora (two) receive it.
	baudio, err := b.PublishAudio(ctx, "bmic", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer baudio.Stop()
	for _, c := range []*lktest.Client{a, d} {
		if err := c.WaitPackets(ctx, "bob's audio", baudio.Info.Sid, 10); err != nil {
			t.Fatal(err)
		}
	}

	// Data both ways over the client's own channels.
	if err := a.SendData(&livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("hi from alice")}}}, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*lktest.Client{b, d} {
		if err := c.WaitFor(ctx, "alice's data", func() bool {
			for _, dp := range c.Data() {
				if string(dp.GetUser().GetPayload()) == "hi from alice" && dp.ParticipantIdentity == "alice" {
					return true
				}
			}
			return false
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Unsubscribing takes the track off bob's connection: the SFU asks for
	// a new offer and its answer no longer names the track.
	if err := b.Send(&livekit.SignalRequest{Message: &livekit.SignalRequest_Subscription{Subscription: &livekit.UpdateSubscription{
		TrackSids: []string{video.Info.Sid}, Subscribe: false,
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, "alice's video off bob's connection", func() bool {
		for _, sid := range b.MidToTrack() {
			if sid == video.Info.Sid {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}

	// A resume through /rtc/v1 keeps the session and its media.
	b.DropSignal()
	if err := b.Resume(ctx, s.base, token(t, "call", "bob")); err != nil {
		t.Fatal(err)
	}
	if b.Reconnect == nil {
		t.Fatal("no reconnect response on /rtc/v1")
	}
	at := b.Track(audio.Info.Sid)
	before := at.Packets.Load()
	if err := b.WaitFor(ctx, "audio after resume", func() bool { return at.Packets.Load() > before+10 }); err != nil {
		t.Fatal(err)
	}
}

// TestSinglePeerConnectionValidate: /rtc/v1/validate answers like
// /rtc/validate for a good join request, and refuses a missing or
// undecodable one with 400; /rtc/v1 without a WebSocket upgrade is 404.
func TestSinglePeerConnectionValidate(t *testing.T) {
	s := startServer(t, sfu.Config{})
	jr, err := proto.Marshal(&livekit.JoinRequest{ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: true}})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := proto.Marshal(&livekit.WrappedJoinRequest{JoinRequest: jr})
	if err != nil {
		t.Fatal(err)
	}
	good := base64.URLEncoding.EncodeToString(wrapped)
	notGzip, _ := proto.Marshal(&livekit.WrappedJoinRequest{JoinRequest: jr, Compression: livekit.WrappedJoinRequest_GZIP})
	tok := token(t, "call", "ann")
	tests := []struct {
		name, query string
		status      int
		says        string
	}{
		{"good", "&join_request=" + good, 200, "success"},
		{"unpadded", "&join_request=" + strings.TrimRight(good, "="), 200, "success"},
		{"missing", "", 400, "join_request is required"},
		{"not base64", "&join_request=%21%21%21", 400, "base64"},
		{"not a protobuf", "&join_request=" + base64.URLEncoding.EncodeToString([]byte{0xff, 0xff, 0xff}), 400, "unmarshal"},
		{"gzip that is not", "&join_request=" + base64.URLEncoding.EncodeToString(notGzip), 400, "compressed"},
		{"bad token", "&join_request=" + good, 401, "invalid token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := tok
			if tc.name == "bad token" {
				tk = "x"
			}
			res, err := http.Get(s.http + "/rtc/v1/validate?access_token=" + url.QueryEscape(tk) + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Fatalf("%d %q, want %d containing %q", res.StatusCode, body, tc.status, tc.says)
			}
		})
	}
	res, err := http.Get(s.http + "/rtc/v1?access_token=" + url.QueryEscape(tok) + "&join_request=" + good)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("plain GET of /rtc/v1: %d", res.StatusCode)
	}
}
