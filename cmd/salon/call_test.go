package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"

	"github.com/salonhq/salon/homeserver/mxtest"
)

// callPeer is one side of a legacy Matrix 1:1 call (m.call.*, MSC2746):
// a pion PeerConnection forced onto TURN relay candidates, signalled
// through room events over the Client-Server API.
type callPeer struct {
	t      *testing.T
	c      *mxtest.Client
	room   string
	pc     *webrtc.PeerConnection
	party  string
	callID string

	mu      sync.Mutex
	pending []webrtc.ICECandidateInit
	remote  bool
	got     map[string]int // codec MIME type → RTP packets received
	events  chan map[string]any
	txn     int
}

func newCallPeer(t *testing.T, c *mxtest.Client, room, transport string) *callPeer {
	turnAns := c.Must(200, "GET", "/_matrix/client/v3/voip/turnServer", nil)
	var uris []string
	for _, u := range turnAns.Body["uris"].([]any) {
		if strings.HasSuffix(u.(string), "transport="+transport) {
			uris = append(uris, u.(string))
		}
	}
	if len(uris) == 0 {
		t.Fatalf("no %s TURN URI in %s", transport, turnAns.Raw)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: uris, Username: turnAns.Str("username"), Credential: turnAns.Str("password")}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p := &callPeer{t: t, c: c, room: room, pc: pc, party: c.DeviceID, got: map[string]int{}, events: make(chan map[string]any, 100)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			p.mu.Lock()
			p.got[tr.Codec().MimeType]++
			p.mu.Unlock()
		}
	})
	// Trickle: each candidate is sent as an m.call.candidates event.
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil || p.callID == "" {
			return
		}
		init := cand.ToJSON()
		p.send("m.call.candidates", map[string]any{"candidates": []any{map[string]any{
			"candidate": init.Candidate, "sdpMid": init.SDPMid, "sdpMLineIndex": init.SDPMLineIndex}}})
	})
	for _, codec := range []struct{ mime, id string }{{webrtc.MimeTypeOpus, "audio"}, {webrtc.MimeTypeVP8, "video"}} {
		track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: codec.mime}, codec.id, "stream-"+c.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTrack(track); err != nil {
			t.Fatal(err)
		}
		go func() {
			payload := make([]byte, 160)
			for pc.ConnectionState() != webrtc.PeerConnectionStateClosed {
				_ = track.WriteSample(media.Sample{Data: payload, Duration: 20 * time.Millisecond})
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return p
}

func (p *callPeer) send(typ string, content map[string]any) {
	p.mu.Lock()
	p.txn++
	txn := fmt.Sprintf("%s-%d", typ, p.txn)
	p.mu.Unlock()
	content["call_id"], content["party_id"], content["version"] = p.callID, p.party, "1"
	r := p.c.Do("PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/%s/%s", p.room, typ, txn), content)
	if r.Status != 200 {
		p.t.Errorf("send %s: %d %s", typ, r.Status, r.Raw)
	}
}

// listen long-polls /sync and passes the other party's call events on.
func (p *callPeer) listen(ctx context.Context) {
	since := ""
	for ctx.Err() == nil {
		q := "/_matrix/client/v3/sync?timeout=5000"
		if since != "" {
			q += "&since=" + since
		}
		r := p.c.Do("GET", q, nil)
		if r.Status != 200 {
			continue
		}
		since = r.Str("next_batch")
		var s syncResp
		_ = json.Unmarshal(r.Raw, &s)
		for _, e := range s.Rooms.Join[p.room].Timeline.Events {
			typ, _ := e["type"].(string)
			if strings.HasPrefix(typ, "m.call.") && e["sender"] != p.c.UserID {
				p.events <- e
			}
		}
	}
}

func (p *callPeer) addCandidates(content map[string]any) {
	for _, c := range content["candidates"].([]any) {
		m := c.(map[string]any)
		mid, _ := m["sdpMid"].(string)
		idx := uint16(m["sdpMLineIndex"].(float64))
		init := webrtc.ICECandidateInit{Candidate: m["candidate"].(string), SDPMid: &mid, SDPMLineIndex: &idx}
		p.mu.Lock()
		if !p.remote {
			p.pending = append(p.pending, init)
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		if err := p.pc.AddICECandidate(init); err != nil {
			p.t.Errorf("add candidate: %v", err)
		}
	}
}

func (p *callPeer) setRemote(desc webrtc.SessionDescription) {
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		p.t.Fatalf("set remote: %v", err)
	}
	p.mu.Lock()
	p.remote = true
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.t.Errorf("add candidate: %v", err)
		}
	}
}

func (p *callPeer) received(mime string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got[mime]
}

// TestOneToOneCallThroughTURN: two pion peers place a 1:1 call in a DM
// room. Invite, candidates, answer and hangup travel as room events over
// the Client-Server API; ICE is forced onto Salon's TURN relay with
// credentials from /voip/turnServer; Opus and VP8 flow both ways; the
// relay's metrics count the bytes. Over TURN/UDP and TURN/TCP.
func TestOneToOneCallThroughTURN(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			srv := startServer(t, backends(t)["sqlite"](t), func(c *Config) { c.TURN.AllowPeers = []string{"127.0.0.0/8"} })
			alice := mxtest.Register(t, srv.URL, "alice", "password alice")
			bob := mxtest.Register(t, srv.URL, "bob", "password bob")
			room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob.UserID}}).Str("room_id")
			bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

			caller, callee := newCallPeer(t, alice, room, transport), newCallPeer(t, bob, room, transport)
			caller.callID, callee.callID = "call-"+transport, "call-"+transport
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, p := range []*callPeer{caller, callee} {
				wg.Add(1)
				go func(p *callPeer) { defer wg.Done(); p.listen(ctx) }(p)
			}
			defer func() { cancel(); wg.Wait() }()

			offer, err := caller.pc.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := caller.pc.SetLocalDescription(offer); err != nil {
				t.Fatal(err)
			}
			caller.send("m.call.invite", map[string]any{"lifetime": 60000, "invitee": bob.UserID,
				"offer": map[string]any{"type": "offer", "sdp": offer.SDP}})

			deadline := time.After(30 * time.Second)
			answered := false
			for !answered {
				select {
				case e := <-callee.events:
					c := e["content"].(map[string]any)
					switch e["type"] {
					case "m.call.invite":
						callee.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: c["offer"].(map[string]any)["sdp"].(string)})
						ans, err := callee.pc.CreateAnswer(nil)
						if err != nil {
							t.Fatal(err)
						}
						if err := callee.pc.SetLocalDescription(ans); err != nil {
							t.Fatal(err)
						}
						callee.send("m.call.answer", map[string]any{"answer": map[string]any{"type": "answer", "sdp": ans.SDP}})
					case "m.call.candidates":
						callee.addCandidates(c)
					}
				case e := <-caller.events:
					c := e["content"].(map[string]any)
					switch e["type"] {
					case "m.call.answer":
						caller.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: c["answer"].(map[string]any)["sdp"].(string)})
						caller.send("m.call.select_answer", map[string]any{"selected_party_id": e["content"].(map[string]any)["party_id"]})
						answered = true
					case "m.call.candidates":
						caller.addCandidates(c)
					}
				case <-deadline:
					t.Fatal("no answer within 30 s")
				}
			}
			// Keep feeding late candidates until media flows both ways.
			for {
				if caller.received(webrtc.MimeTypeOpus) > 5 && caller.received(webrtc.MimeTypeVP8) > 5 &&
					callee.received(webrtc.MimeTypeOpus) > 5 && callee.received(webrtc.MimeTypeVP8) > 5 {
					break
				}
				select {
				case e := <-callee.events:
					if e["type"] == "m.call.candidates" {
						callee.addCandidates(e["content"].(map[string]any))
					}
				case e := <-caller.events:
					if e["type"] == "m.call.candidates" {
						caller.addCandidates(e["content"].(map[string]any))
					}
				case <-time.After(100 * time.Millisecond):
				case <-deadline:
					t.Fatalf("media did not flow: caller %v callee %v (ICE %s/%s)", caller.got, callee.got,
						caller.pc.ICEConnectionState(), callee.pc.ICEConnectionState())
				}
			}
			pair, err := caller.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err == nil && pair != nil && pair.Local.Typ != webrtc.ICECandidateTypeRelay {
				t.Fatalf("selected pair is not relayed: %v", pair)
			}
			caller.send("m.call.hangup", map[string]any{"reason": "user_hangup"})
			m := mxtest.New(t, srv.MetricsURL).Must(200, "GET", "/metrics", nil)
			if !strings.Contains(string(m.Raw), "salon_turn_relayed_bytes_total") || strings.Contains(string(m.Raw), `salon_turn_relayed_bytes_total{direction="client_to_peer"} 0`) {
				t.Fatalf("relay metrics show no bytes")
			}
		})
	}
}
