package sfu

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

type discardSink struct{}

func (discardSink) SendSignal(*livekit.SignalResponse) bool { return true }
func (discardSink) CloseSignal(string)                      {}

// offerSDP is a browser-like offer (audio, video and a data channel) made
// by pion, for the seed corpus.
func offerSDP(f *testing.F) string {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := pc.CreateDataChannel("_reliable", nil); err != nil {
		f.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		f.Fatal(err)
	}
	return o.SDP
}

// FuzzSignalRequest: any SignalRequest a participant sends over the
// signal WebSocket (the protobuf decoded as /rtc decodes it), and any
// DataPacket it sends on its data channel, is acted on, or ends the
// session with ErrLeft or ErrProtocol; nothing panics and the SFU still
// admits and removes participants afterwards.
func FuzzSignalRequest(f *testing.F) {
	sdp := offerSDP(f)
	cand, _ := json.Marshal(webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"})
	for _, m := range []*livekit.SignalRequest{
		{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "a", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE}}},
		{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "v", Type: livekit.TrackType_VIDEO, Width: 1280, Height: 720,
			Layers: []*livekit.VideoLayer{{Quality: livekit.VideoQuality_LOW}, {Quality: livekit.VideoQuality_HIGH}}}}},
		{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: sdp}}},
		{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: "v=0\r\n"}}},
		{Message: &livekit.SignalRequest_Answer{Answer: &livekit.SessionDescription{Type: "answer", Sdp: sdp}}},
		{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: string(cand), Target: livekit.SignalTarget_PUBLISHER}}},
		{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: "{", Target: livekit.SignalTarget_SUBSCRIBER}}},
		{Message: &livekit.SignalRequest_Mute{Mute: &livekit.MuteTrackRequest{Sid: "TR_x", Muted: true}}},
		{Message: &livekit.SignalRequest_Subscription{Subscription: &livekit.UpdateSubscription{TrackSids: []string{"TR_x"}, Subscribe: true,
			ParticipantTracks: []*livekit.ParticipantTracks{{ParticipantSid: "PA_x", TrackSids: []string{"TR_y"}}}}}},
		{Message: &livekit.SignalRequest_TrackSetting{TrackSetting: &livekit.UpdateTrackSettings{TrackSids: []string{"TR_x"}, Width: 1 << 30, Quality: 7}}},
		{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: &livekit.UpdateParticipantMetadata{Name: "n", Metadata: "m", Attributes: map[string]string{"k": "v"}}}},
		{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}},
		{Message: &livekit.SignalRequest_SyncState{SyncState: &livekit.SyncState{}}},
	} {
		b, _ := proto.Marshal(m)
		dp, _ := proto.Marshal(&livekit.DataPacket{Kind: livekit.DataPacket_RELIABLE, DestinationIdentities: []string{"other"},
			Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("x"), DestinationIdentities: []string{"b"}}}})
		f.Add(b, dp, false)
		f.Add(b, []byte{0xff}, true)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	cfg := Defaults()
	cfg.TCPPort = -1
	s, err := New(Params{Config: cfg, UDPConn: udp})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	perm := Permission{CanPublish: true, CanSubscribe: true, CanPublishData: true, CanUpdateMetadata: true}
	other, err := s.Join(JoinRequest{Room: "r", Identity: "other", Permission: perm, AutoSubscribe: true, Sink: discardSink{}})
	if err != nil {
		f.Fatal(err)
	}
	_ = other
	f.Fuzz(func(t *testing.T, reqBytes, dataBytes []byte, single bool) {
		req := &livekit.SignalRequest{}
		if proto.Unmarshal(reqBytes, req) != nil {
			return // refused by the signal connection before the SFU
		}
		ss, err := s.Join(JoinRequest{Room: "r", Identity: "fuzz", Permission: perm, AutoSubscribe: true,
			Sink: discardSink{}, SinglePeerConnection: single})
		if err != nil {
			t.Fatal(err)
		}
		defer ss.Leave()
		if err := ss.HandleRequest(req); err != nil {
			return // ErrLeft, ErrProtocol or a logged failure: the connection ends or goes on
		}
		dp := &livekit.DataPacket{}
		if proto.Unmarshal(dataBytes, dp) == nil {
			ss.room.OnDataPacket(ss.p, livekit.DataPacket_RELIABLE, dp)
		}
		_ = ss.HandleRequest(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}})
	})
}
