package turn

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
)

// Two pion/webrtc peer connections in this process, each forced onto relay
// candidates (ICETransportPolicyRelay), connect through the server and
// exchange data channel messages: over TURN/UDP and over TURN/TCP. Loopback
// peers are refused by default, so the test allow-lists 127.0.0.0/8.
func TestWebRTCThroughRelay(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ts := startServer(t, testConfig("127.0.0.0/8"), nil)
			var uris []string
			for _, u := range ts.URIs("127.0.0.1") {
				if strings.HasSuffix(u, "transport="+transport) {
					uris = append(uris, u)
				}
			}
			newPC := func(user string) *webrtc.PeerConnection {
				username, password, _ := ts.Credentials(user, time.Now())
				m := &webrtc.MediaEngine{}
				if err := m.RegisterDefaultCodecs(); err != nil {
					t.Fatal(err)
				}
				se := webrtc.SettingEngine{}
				se.SetIncludeLoopbackCandidate(true)
				se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
				api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
				pc, err := api.NewPeerConnection(webrtc.Configuration{
					ICEServers:         []webrtc.ICEServer{{URLs: uris, Username: username, Credential: password}},
					ICETransportPolicy: webrtc.ICETransportPolicyRelay,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close() })
				return pc
			}
			offerer := newPC("@alice:test.example")
			answerer := newPC("@bob:test.example")

			got := make(chan string, 10)
			answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
				dc.OnMessage(func(msg webrtc.DataChannelMessage) {
					got <- string(msg.Data)
					dc.SendText("pong: " + string(msg.Data))
				})
			})
			dc, err := offerer.CreateDataChannel("chat", nil)
			if err != nil {
				t.Fatal(err)
			}
			replies := make(chan string, 10)
			dc.OnMessage(func(msg webrtc.DataChannelMessage) { replies <- string(msg.Data) })
			opened := make(chan struct{})
			dc.OnOpen(func() { close(opened) })

			// Non-trickle: wait for gathering so the descriptions carry
			// the relay candidates.
			offer, err := offerer.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(offerer)
			if err := offerer.SetLocalDescription(offer); err != nil {
				t.Fatal(err)
			}
			<-gathered
			if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}
			answer, err := answerer.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered = webrtc.GatheringCompletePromise(answerer)
			if err := answerer.SetLocalDescription(answer); err != nil {
				t.Fatal(err)
			}
			<-gathered
			if !strings.Contains(offerer.LocalDescription().SDP, "typ relay") ||
				!strings.Contains(answerer.LocalDescription().SDP, "typ relay") {
				t.Fatalf("no relay candidates gathered:\n%s", offerer.LocalDescription().SDP)
			}
			if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}

			select {
			case <-opened:
			case <-time.After(15 * time.Second):
				t.Fatalf("data channel did not open; ICE state %s", offerer.ICEConnectionState())
			}
			for i := range 5 {
				msg := fmt.Sprintf("hello %d via TURN/%s", i, transport)
				if err := dc.SendText(msg); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-got:
					if m != msg {
						t.Fatalf("answerer got %q, want %q", m, msg)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("message not delivered")
				}
				select {
				case m := <-replies:
					if m != "pong: "+msg {
						t.Fatalf("reply %q", m)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("reply not delivered")
				}
			}

			// The selected pair is relay to relay, and the bytes went
			// through this server on the chosen transport.
			pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("selected pair: %v", err)
			}
			if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
				t.Errorf("selected pair %s ↔ %s, want relay ↔ relay", pair.Local, pair.Remote)
			}
			if n := ts.metric(t, "salon_turn_allocations_created_total", "transport", transport); n < 2 {
				t.Errorf("allocations_created_total{%s} = %v, want ≥ 2", transport, n)
			}
			for _, dir := range []string{"client_to_peer", "peer_to_client"} {
				if n := ts.metric(t, "salon_turn_relayed_packets_total", "direction", dir); n < 10 {
					t.Errorf("relayed_packets_total{%s} = %v", dir, n)
				}
			}
		})
	}
}
