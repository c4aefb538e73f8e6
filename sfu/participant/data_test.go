package participant

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
	"google.golang.org/protobuf/proto"
)

// dataListener records the data packets a participant passes on.
type dataListener struct {
	Listener
	mu  sync.Mutex
	got []*livekit.DataPacket
}

func (l *dataListener) OnDataPacket(_ *Participant, _ livekit.DataPacket_Kind, dp *livekit.DataPacket) {
	l.mu.Lock()
	l.got = append(l.got, dp)
	l.mu.Unlock()
}

func (l *dataListener) OnParticipantChanged(*Participant) {}

func (l *dataListener) packets() []*livekit.DataPacket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*livekit.DataPacket(nil), l.got...)
}

// TestDataChannelsRead: data packets of every size up to the limit reach
// the room, in order, through the participant's own read loop (detached
// channels, small buffer, large messages read again) as through pion's;
// the SFU's own channel is drained; the loops end with the connection.
func TestDataChannelsRead(t *testing.T) {
	for _, detach := range []bool{true, false} {
		name := "pion's read loop"
		if detach {
			name = "detached"
		}
		t.Run(name, func(t *testing.T) {
			se := loopbackSettings()
			if detach {
				se.DetachDataChannels()
			}
			sfuPC, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			client, err := webrtc.NewAPI(webrtc.WithSettingEngine(loopbackSettings())).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			l := &dataListener{}
			p := testParticipant("PA_data")
			p.params.Identity, p.params.Listener = "alice", l
			p.permission = &livekit.ParticipantPermission{CanPublishData: true}
			sfuPC.OnDataChannel(p.onDataChannel)
			out, err := sfuPC.CreateDataChannel(ReliableLabel, nil)
			if err != nil {
				t.Fatal(err)
			}
			p.readData(out, nil)

			ordered := true
			in, err := client.CreateDataChannel(ReliableLabel, &webrtc.DataChannelInit{Ordered: &ordered})
			if err != nil {
				t.Fatal(err)
			}
			opened := make(chan struct{})
			in.OnOpen(func() { close(opened) })
			fromSFU := make(chan *webrtc.DataChannel, 1)
			client.OnDataChannel(func(dc *webrtc.DataChannel) { fromSFU <- dc })
			negotiate(t, client, sfuPC, nil)
			<-opened

			sizes := []int{10, dataReadSize, dataReadSize + 1, 20_000, maxDataMessage - 100}
			for i, n := range sizes {
				b, err := proto.Marshal(&livekit.DataPacket{ParticipantIdentity: "mallory", Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: bytes.Repeat([]byte{byte(i)}, n)}}})
				if err != nil {
					t.Fatal(err)
				}
				if err := in.Send(b); err != nil {
					t.Fatalf("send %d bytes: %v", n, err)
				}
			}
			// The client writing on the SFU's channel must not block it.
			dc := <-fromSFU
			waitFor(t, "the SFU's channel open", func() bool { return dc.ReadyState() == webrtc.DataChannelStateOpen })
			if err := dc.Send(make([]byte, 5000)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "every data packet", func() bool { return len(l.packets()) == len(sizes) })
			for i, dp := range l.packets() {
				if got := dp.GetUser().GetPayload(); !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, sizes[i])) {
					t.Fatalf("packet %d: %d bytes of payload, want %d of %d", i, len(got), sizes[i], i)
				}
				if dp.ParticipantIdentity != "alice" {
					t.Fatalf("packet %d sent as %q", i, dp.ParticipantIdentity)
				}
			}
			if err := out.Send([]byte("to the client")); err != nil {
				t.Fatal(err)
			}

			_ = client.Close()
			_ = sfuPC.Close()
			done := make(chan struct{})
			go func() { p.workers.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("data channel read loops still running after the connection closed")
			}
		})
	}
}

// negotiate connects offerer and answerer with complete (non-trickle)
// descriptions; beforeAnswer, when set, runs once the answerer has the
// offer (to add what it sends).
func negotiate(tb testing.TB, offerer, answerer *webrtc.PeerConnection, beforeAnswer func()) {
	tb.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	if beforeAnswer != nil {
		beforeAnswer()
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
}

// signalSink keeps the signal responses a participant sends.
type signalSink struct {
	mu  sync.Mutex
	got []*livekit.SignalResponse
}

func (s *signalSink) SendSignal(r *livekit.SignalResponse) bool {
	s.mu.Lock()
	s.got = append(s.got, r)
	s.mu.Unlock()
	return true
}

func (s *signalSink) CloseSignal(string) {}

func (s *signalSink) answer() *livekit.SessionDescription {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.got {
		if a := r.GetAnswer(); a != nil {
			return a
		}
	}
	return nil
}

// TestPublisherConnectionOnFirstOffer: a participant that never publishes
// has no publisher connection; the client's first offer creates it, and
// publisher candidates that came before the offer are still added.
// Data flows on it (the client's channel), and Close closes it.
func TestPublisherConnectionOnFirstOffer(t *testing.T) {
	me, ir, err := NewPublisherMediaEngine()
	if err != nil {
		t.Fatal(err)
	}
	se := loopbackSettings()
	se.DetachDataChannels()
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	sink, l := &signalSink{}, &dataListener{}
	p, err := New(Params{SID: "PA_lazy", Identity: "bob", API: api, Sink: sink, Listener: l})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.pub != nil {
		t.Fatal("publisher connection created before any offer")
	}

	client, err := webrtc.NewAPI(webrtc.WithSettingEngine(loopbackSettings())).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dc, err := client.CreateDataChannel(ReliableLabel, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	// Trickle: the client's candidates are sent before its offer.
	client.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		b, _ := json.Marshal(c.ToJSON())
		_ = p.HandleRequest(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: string(b), Target: livekit.SignalTarget_PUBLISHER}}})
	})
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if p.pub != nil {
		t.Fatal("publisher connection created by candidates alone")
	}
	// The offer without its candidates: only the trickled ones connect it.
	if err := p.HandleRequest(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: offer.SDP}}}); err != nil {
		t.Fatal(err)
	}
	a := sink.answer()
	if a == nil {
		t.Fatal("no answer sent")
	}
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.Sdp}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher connection did not connect")
	}
	b, _ := proto.Marshal(&livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("hi")}}})
	if err := dc.Send(b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the data packet", func() bool { return len(l.packets()) == 1 })

	pub := p.pub
	p.Close()
	if s := pub.ConnectionState(); s != webrtc.PeerConnectionStateClosed {
		t.Fatalf("publisher connection %v after Close", s)
	}
}
