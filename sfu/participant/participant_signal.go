package participant

// Signal requests from the client, other than SDP: trickle, mute, track settings, metadata.

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v3"
)

// HandleRequest acts on one request from the client. An error wrapping
// ErrProtocol or ErrLeft ends the session.
func (p *Participant) HandleRequest(req *livekit.SignalRequest) error {
	switch m := req.Message.(type) {
	case *livekit.SignalRequest_Offer:
		if p.single {
			return p.handleSingleOffer(m.Offer)
		}
		return p.handleOffer(m.Offer)
	case *livekit.SignalRequest_Answer:
		if p.single {
			return nil // the SFU never offers on the single connection
		}
		answer := m.Answer
		p.enqueue(func() { p.handleSubscriberAnswer(answer) })
	case *livekit.SignalRequest_Trickle:
		return p.handleTrickle(m.Trickle)
	case *livekit.SignalRequest_AddTrack:
		return p.handleAddTrack(m.AddTrack)
	case *livekit.SignalRequest_Mute:
		p.handleMute(m.Mute)
	case *livekit.SignalRequest_Subscription:
		sids := slices.Clone(m.Subscription.TrackSids)
		for _, pt := range m.Subscription.ParticipantTracks {
			sids = append(sids, pt.TrackSids...)
		}
		p.params.Listener.OnSubscriptionRequest(p, sids, m.Subscription.Subscribe)
	case *livekit.SignalRequest_TrackSetting:
		p.handleTrackSettings(m.TrackSetting)
	case *livekit.SignalRequest_Leave:
		return ErrLeft
	case *livekit.SignalRequest_UpdateMetadata:
		p.handleUpdateMetadata(m.UpdateMetadata)
	default:
		// Ping is answered by the signal connection; sync state, layer
		// updates, subscription permissions and simulations are accepted
		// and ignored.
	}
	return nil
}

func (p *Participant) handleTrickle(t *livekit.TrickleRequest) error {
	if t == nil || t.CandidateInit == "" {
		return nil
	}
	var c webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(t.CandidateInit), &c); err != nil {
		return fmt.Errorf("%w: malformed ICE candidate", ErrProtocol)
	}
	if c.Candidate == "" {
		return nil // end of candidates
	}
	if t.Target == livekit.SignalTarget_SUBSCRIBER && !p.single {
		p.enqueue(func() {
			if !p.subRemoteSet {
				p.subCandidates = append(p.subCandidates, c)
				return
			}
			if err := p.sub.AddICECandidate(c); err != nil {
				p.log.Debug("subscriber candidate refused", "err", err)
			}
		})
		return nil
	}
	p.mu.Lock()
	if !p.pubRemoteSet {
		if len(p.pubCandidates) < 64 {
			p.pubCandidates = append(p.pubCandidates, c)
		}
		p.mu.Unlock()
		return nil
	}
	pub := p.pub
	p.mu.Unlock()
	if err := pub.AddICECandidate(c); err != nil {
		p.log.Debug("publisher candidate refused", "err", err)
	}
	return nil
}

func (p *Participant) sendCandidate(c *webrtc.ICECandidate, target livekit.SignalTarget) {
	if c == nil {
		return
	}
	b, err := json.Marshal(c.ToJSON())
	if err != nil {
		return
	}
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Trickle{Trickle: &livekit.TrickleRequest{
		CandidateInit: string(b), Target: target,
	}}})
}

func (p *Participant) handleMute(m *livekit.MuteTrackRequest) {
	p.mu.Lock()
	t, ok := p.published[m.Sid]
	if !ok {
		for _, info := range p.pending {
			if info.Sid == m.Sid {
				info.Muted = m.Muted
			}
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if !t.setMuted(m.Muted) {
		return
	}
	p.mu.Lock()
	p.bumpLocked()
	p.mu.Unlock()
	p.params.Listener.OnParticipantChanged(p)
}

func (p *Participant) handleTrackSettings(s *livekit.UpdateTrackSettings) {
	p.log.Debug("track settings", "tracks", s.TrackSids, "disabled", s.Disabled, "width", s.Width, "height", s.Height, "quality", s.Quality.String())
	for _, sid := range s.TrackSids {
		p.mu.Lock()
		d := p.subscribed[sid]
		p.mu.Unlock()
		if d != nil {
			d.UpdateSettings(s)
		}
	}
}

func (p *Participant) handleUpdateMetadata(m *livekit.UpdateParticipantMetadata) {
	p.mu.Lock()
	if !p.permission.CanUpdateMetadata {
		p.mu.Unlock()
		p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
			RequestId: m.RequestId, Reason: livekit.RequestResponse_NOT_ALLOWED, Message: "may not update metadata",
			Request: &livekit.RequestResponse_UpdateMetadata{UpdateMetadata: m},
		}}})
		return
	}
	if m.Name != "" {
		p.name = m.Name
	}
	if m.Metadata != "" {
		p.metadata = m.Metadata
	}
	if len(m.Attributes) > 0 {
		attrs := make(map[string]string, len(p.attributes)+len(m.Attributes))
		for k, v := range p.attributes {
			attrs[k] = v
		}
		for k, v := range m.Attributes {
			if v == "" {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		p.attributes = attrs
	}
	p.bumpLocked()
	p.mu.Unlock()
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		RequestId: m.RequestId, Reason: livekit.RequestResponse_OK,
	}}})
	p.params.Listener.OnParticipantChanged(p)
}
