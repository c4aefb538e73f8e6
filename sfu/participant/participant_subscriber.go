package participant

// The subscriber side: the tracks this participant receives and their fit to its bandwidth.

import (
	"time"

	"github.com/pion/webrtc/v3"
)

// Subscription returns the down track of a subscribed track, or nil.
func (p *Participant) Subscription(trackSID string) *DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subscribed[trackSID]
}

// Subscriptions returns the participant's down tracks.
func (p *Participant) Subscriptions() []*DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*DownTrack, 0, len(p.subscribed))
	for _, d := range p.subscribed {
		out = append(out, d)
	}
	return out
}

// Subscribe adds t to the subscriber connection and renegotiates.
func (p *Participant) Subscribe(t *MediaTrack) {
	p.mu.Lock()
	if p.closed || t.owner == p || p.subscribed[t.sid] != nil || !p.permission.CanSubscribe {
		p.mu.Unlock()
		return
	}
	d := newDownTrack(t, p)
	p.subscribed[t.sid] = d
	p.mu.Unlock()
	p.enqueue(func() {
		if p.isClosed() {
			return
		}
		// AddTrack reuses the media section of a removed track, so the
		// subscriber SDP does not grow with every publication in a long
		// call.
		sender, err := p.sub.AddTrack(d)
		var tr *webrtc.RTPTransceiver
		if err == nil {
			for _, x := range p.sub.GetTransceivers() {
				if x.Sender() == sender {
					tr = x
				}
			}
		}
		if err != nil || tr == nil {
			p.log.Warn("cannot add down track", "track", t.sid, "err", err)
			p.mu.Lock()
			delete(p.subscribed, t.sid)
			p.mu.Unlock()
			return
		}
		d.transceiver, d.sender = tr, sender
		p.preferCodec(tr, t)
		d.rtcpDone = make(chan struct{})
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			d.readRTCP()
		}()
		if !t.addDownTrack(d) {
			p.removeDownTrackOp(d)
			return
		}
		p.renegotiate()
	})
}

// Unsubscribe removes a subscribed track.
func (p *Participant) Unsubscribe(trackSID string) {
	p.mu.Lock()
	d := p.subscribed[trackSID]
	// Forget it now, so that a subscribe right behind finds no stale entry.
	delete(p.subscribed, trackSID)
	p.mu.Unlock()
	if d != nil {
		d.track.removeDownTrack(d)
		p.RemoveSubscription(d)
	}
}

// RemoveSubscription drops d (its track was unpublished or unsubscribed).
func (p *Participant) RemoveSubscription(d *DownTrack) {
	p.enqueue(func() { p.removeDownTrackOp(d) })
}

func (p *Participant) removeDownTrackOp(d *DownTrack) {
	p.mu.Lock()
	if p.subscribed[d.track.sid] == d {
		delete(p.subscribed, d.track.sid)
	}
	closed := p.closed
	p.mu.Unlock()
	d.bound.Store(false)
	if closed || d.sender == nil {
		return
	}
	if err := p.sub.RemoveTrack(d.sender); err != nil {
		p.log.Debug("remove down track", "err", err)
	}
	p.renegotiate()
}

// Bandwidth adaptation: how much headroom to keep under the estimate,
// and how long to wait before trying a better layer again (doubling after
// each attempt that congested the link, up to bweRetryMax).
const (
	bweRetry    = 10 * time.Second
	bweRetryMax = 80 * time.Second
)

// AdaptToBandwidth fits the simulcast layers this participant receives
// into its connection's bandwidth estimate: when the estimator sees
// congestion and what the chosen layers need exceeds its estimate, the
// most expensive video steps down one layer; after a while without congestion, one capped video is allowed a
// layer back (which, with no probing, is how a better estimate is found).
// Called periodically by the room.
func (p *Participant) AdaptToBandwidth(now time.Time) {
	if p.params.BWE == nil {
		return
	}
	est := p.params.BWE()
	if est == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	downs := make([]*DownTrack, 0, len(p.subscribed))
	for _, d := range p.subscribed {
		if d.track.simulcst {
			downs = append(downs, d)
		}
	}
	p.mu.Unlock()
	if len(downs) == 0 {
		return
	}
	// The estimate without probing only climbs towards what is sent, so it
	// is acted on only when it reports congestion (delay overuse, a
	// decrease, or loss), not merely for being low.
	congested := est.Congested()
	target := uint64(est.GetTargetBitrate())
	var need uint64
	var top *DownTrack
	var topRate uint64
	for _, d := range downs {
		r := d.targetBitrate()
		need += r
		if r > topRate {
			top, topRate = d, r
		}
	}
	if congested && need > target && top != nil {
		top.capBandwidth(now)
		return
	}
	if congested {
		return
	}
	for _, d := range downs {
		if d.uncapBandwidth(now) {
			return // one step at a time
		}
	}
}
