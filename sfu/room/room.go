// Package room owns one call: who is in it, the limits on it, who is
// subscribed to what, and the call-wide messages (participant updates,
// active speakers, connection quality, data packets). It knows nothing of
// Matrix or of the signal transport.
package room

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/sfu/participant"
)

var (
	// ErrFull: the call has its maximum of participants.
	ErrFull = errors.New("room: call is full")
	// ErrClosed: the call ended.
	ErrClosed = errors.New("room: closed")
	// ErrTooManyPublishers: the call has its maximum of publishers.
	ErrTooManyPublishers = errors.New("room: too many publishers")
)

// Limits are the per-call limits (-1: none).
type Limits struct {
	MaxParticipants int
	MaxPublishers   int
}

// Listener hears when a room empties, so its registry can drop it.
type Listener interface {
	OnRoomEmpty(r *Room)
}

// Params configures a room.
type Params struct {
	Name            string
	Limits          Limits
	Logger          *slog.Logger
	Listener        Listener
	SpeakerInterval time.Duration
	QualityInterval time.Duration
	LayerInterval   time.Duration
}

// Room is one call.
type Room struct {
	params    Params
	sid       string
	log       *slog.Logger
	createdAt time.Time

	mu           sync.RWMutex
	participants map[string]*participant.Participant // by identity
	closed       bool
	speaking     map[string]float32 // participant sid → level, for change detection

	stop chan struct{}
	done sync.WaitGroup
}

// New creates a call and starts its periodic work.
func New(p Params) *Room {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.SpeakerInterval <= 0 {
		p.SpeakerInterval = 300 * time.Millisecond
	}
	if p.QualityInterval <= 0 {
		p.QualityInterval = 5 * time.Second
	}
	if p.LayerInterval <= 0 {
		p.LayerInterval = 500 * time.Millisecond
	}
	r := &Room{
		params:       p,
		sid:          participant.NewID("RM_"),
		createdAt:    time.Now(),
		participants: map[string]*participant.Participant{},
		speaking:     map[string]float32{},
		stop:         make(chan struct{}),
	}
	r.log = p.Logger.With("room", p.Name, "room_sid", r.sid)
	r.done.Add(1)
	go r.run()
	return r
}

// Name is the LiveKit room name from the token.
func (r *Room) Name() string { return r.params.Name }

// SID is the room's server ID.
func (r *Room) SID() string { return r.sid }

// ToProto describes the room.
func (r *Room) ToProto() *livekit.Room {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.toProtoLocked()
}

func (r *Room) toProtoLocked() *livekit.Room {
	pubs := 0
	for _, p := range r.participants {
		if p.IsPublisher() {
			pubs++
		}
	}
	max := r.params.Limits.MaxParticipants
	if max < 0 {
		max = 0
	}
	return &livekit.Room{
		Sid:             r.sid,
		Name:            r.params.Name,
		MaxParticipants: uint32(max),
		CreationTime:    r.createdAt.Unix(),
		CreationTimeMs:  r.createdAt.UnixMilli(),
		NumParticipants: uint32(len(r.participants)),
		NumPublishers:   uint32(pubs),
		EnabledCodecs:   participant.AnnouncedCodecs(),
	}
}

// CheckJoin reports whether identity could join now.
func (r *Room) CheckJoin(identity string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	_, replacing := r.participants[identity]
	if max := r.params.Limits.MaxParticipants; max >= 0 && !replacing && len(r.participants) >= max {
		return fmt.Errorf("%w: at most %d participants", ErrFull, max)
	}
	return nil
}

// Join admits p: it sends p the join response built by joinResponse,
// tells the others, starts p's subscriber negotiation and subscribes it
// to the tracks already published. A participant with the same identity
// is replaced (returned, for the caller to disconnect).
func (r *Room) Join(p *participant.Participant, joinResponse func(room *livekit.Room, others []*livekit.ParticipantInfo) *livekit.SignalResponse) (replaced *participant.Participant, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	old := r.participants[p.Identity()]
	if max := r.params.Limits.MaxParticipants; max >= 0 && old == nil && len(r.participants) >= max {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: at most %d participants", ErrFull, max)
	}
	others := make([]*livekit.ParticipantInfo, 0, len(r.participants))
	var tracks []*participant.MediaTrack
	for _, o := range r.participants {
		if o == old {
			continue
		}
		tracks = append(tracks, o.PublishedTracks()...)
		if o.Permission().Hidden {
			continue // recorders and the like are not announced
		}
		others = append(others, o.ToProto())
	}
	r.participants[p.Identity()] = p
	// The join response must be the first message: queue it before any
	// broadcast can see p (Send only queues).
	p.Send(joinResponse(r.toProtoLocked(), others))
	r.mu.Unlock()

	if old != nil {
		r.log.Info("participant replaced by a new session", "identity", p.Identity())
	}
	r.broadcastUpdate(p, p.ToProto())
	p.Start()
	if p.AutoSubscribe() {
		for _, t := range tracks {
			p.Subscribe(t)
		}
	}
	return old, nil
}

// Participant finds a participant by identity.
func (r *Room) Participant(identity string) *participant.Participant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.participants[identity]
}

// Participants returns everyone in the call.
func (r *Room) Participants() []*participant.Participant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*participant.Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// Leave removes p, closes it and tells the others. When the call is then
// empty, the room closes and its listener hears of it.
func (r *Room) Leave(p *participant.Participant) {
	r.mu.Lock()
	if r.participants[p.Identity()] == p {
		delete(r.participants, p.Identity())
	}
	delete(r.speaking, p.SID())
	empty := len(r.participants) == 0 && !r.closed
	r.mu.Unlock()

	p.Close()
	info := p.ToProto()
	info.State = livekit.ParticipantInfo_DISCONNECTED
	r.broadcastUpdate(p, info)
	if empty {
		r.Close()
		if r.params.Listener != nil {
			r.params.Listener.OnRoomEmpty(r)
		}
	}
}

// Close ends the call for everyone still in it.
func (r *Room) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	ps := make([]*participant.Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	r.participants = map[string]*participant.Participant{}
	r.mu.Unlock()
	close(r.stop)
	r.done.Wait()
	for _, p := range ps {
		p.Close()
	}
}

// Empty reports whether nobody is in the call.
func (r *Room) Empty() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.participants) == 0
}

// broadcastUpdate sends a participant update about from to everyone else
// (nobody, for a hidden participant).
func (r *Room) broadcastUpdate(from *participant.Participant, info *livekit.ParticipantInfo) {
	if info.GetPermission().GetHidden() {
		return
	}
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{
		Participants: []*livekit.ParticipantInfo{info},
	}}}
	for _, o := range r.Participants() {
		// A replaced session shares its identity with its successor, which
		// must not read the old one's departure as its own.
		if o != from && o.Identity() != info.Identity {
			o.Send(msg)
		}
	}
}

// broadcastAll sends msg to every participant.
func (r *Room) broadcastAll(msg *livekit.SignalResponse) {
	for _, o := range r.Participants() {
		o.Send(msg)
	}
}

// UpdatePermission applies a live grant change to identity. It reports
// whether the participant was found.
func (r *Room) UpdatePermission(identity string, perm *livekit.ParticipantPermission) bool {
	return r.UpdateParticipantPermission(r.Participant(identity), perm)
}

// UpdateParticipantPermission applies a live grant change to p, if p is
// still this room's participant for its identity (not one who left and
// was replaced by a new join of the same identity).
func (r *Room) UpdateParticipantPermission(p *participant.Participant, perm *livekit.ParticipantPermission) bool {
	if p == nil || r.Participant(p.Identity()) != p {
		return false
	}
	hadSubscribe := p.CanSubscribe()
	p.SetPermission(perm)
	if hadSubscribe && !perm.CanSubscribe {
		for _, d := range p.Subscriptions() {
			p.Unsubscribe(d.Track().SID())
		}
	}
	info := p.ToProto()
	// The participant learns its new permission through an update about
	// itself, as livekit-client expects.
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{Participants: []*livekit.ParticipantInfo{info}}}})
	r.broadcastUpdate(p, info)
	if !hadSubscribe && perm.CanSubscribe && p.AutoSubscribe() {
		for _, o := range r.Participants() {
			if o != p {
				for _, t := range o.PublishedTracks() {
					p.Subscribe(t)
				}
			}
		}
	}
	return true
}

// --- participant.Listener

// CanPublish enforces the call's publisher limit.
func (r *Room) CanPublish(p *participant.Participant) error {
	max := r.params.Limits.MaxPublishers
	if max < 0 || p.IsPublisher() {
		return nil
	}
	n := 0
	for _, o := range r.Participants() {
		if o.IsPublisher() {
			n++
		}
	}
	if n >= max {
		return fmt.Errorf("%w: at most %d publishers in this call", ErrTooManyPublishers, max)
	}
	return nil
}

// OnTrackPublished announces the track and subscribes those who
// auto-subscribe.
func (r *Room) OnTrackPublished(p *participant.Participant, t *participant.MediaTrack) {
	info := p.ToProto()
	p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{Participants: []*livekit.ParticipantInfo{info}}}})
	r.broadcastUpdate(p, info)
	for _, o := range r.Participants() {
		if o != p && o.AutoSubscribe() {
			o.Subscribe(t)
		}
	}
}

// OnTrackUnpublished announces that a track is gone.
func (r *Room) OnTrackUnpublished(p *participant.Participant, _ *participant.MediaTrack) {
	r.broadcastUpdate(p, p.ToProto())
}

// OnParticipantChanged announces mute, metadata and state changes.
func (r *Room) OnParticipantChanged(p *participant.Participant) {
	r.broadcastUpdate(p, p.ToProto())
}

// OnSubscriptionRequest handles explicit (un)subscriptions.
func (r *Room) OnSubscriptionRequest(p *participant.Participant, sids []string, subscribe bool) {
	for _, sid := range sids {
		if !subscribe {
			p.Unsubscribe(sid)
			continue
		}
		for _, o := range r.Participants() {
			if t := o.PublishedTrack(sid); t != nil && o != p {
				p.Subscribe(t)
			}
		}
	}
}

// OnDataPacket forwards a data packet to its destinations (everyone else
// when it names none).
func (r *Room) OnDataPacket(p *participant.Participant, kind livekit.DataPacket_Kind, dp *livekit.DataPacket) {
	dest := dp.DestinationIdentities
	if u := dp.GetUser(); u != nil && len(dest) == 0 {
		dest = u.DestinationIdentities
	}
	data, err := proto.Marshal(dp)
	if err != nil {
		return
	}
	for _, o := range r.Participants() {
		if o == p {
			continue
		}
		if len(dest) > 0 && !contains(dest, o.Identity()) {
			continue
		}
		o.SendData(kind, data)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run does the room's periodic work until Close.
func (r *Room) run() {
	defer r.done.Done()
	speakers := time.NewTicker(r.params.SpeakerInterval)
	defer speakers.Stop()
	quality := time.NewTicker(r.params.QualityInterval)
	defer quality.Stop()
	layers := time.NewTicker(r.params.LayerInterval)
	defer layers.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-speakers.C:
			r.updateSpeakers()
		case <-quality.C:
			r.updateQuality()
		case now := <-layers.C:
			for _, p := range r.Participants() {
				p.AdaptToBandwidth(now)
				for _, d := range p.Subscriptions() {
					d.SelectLayer(now)
				}
			}
			// Dynacast: tell publishers which simulcast layers anyone needs.
			for _, p := range r.Participants() {
				for _, t := range p.PublishedTracks() {
					if u := t.Dynacast(now); u != nil {
						p.Send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscribedQualityUpdate{SubscribedQualityUpdate: u}})
					}
				}
			}
		}
	}
}

// speakingLevel is the mean linear audio level (about -40 dBov) above
// which a participant counts as speaking.
const speakingLevel = 0.01

// updateSpeakers computes active speakers from the audio-level header
// extension and sends SpeakersChanged with the participants whose state
// changed.
func (r *Room) updateSpeakers() {
	var changed []*livekit.SpeakerInfo
	ps := r.Participants()
	r.mu.Lock()
	for _, p := range ps {
		var level float64
		for _, t := range p.PublishedTracks() {
			if t.Kind() != livekit.TrackType_AUDIO || t.Info().Muted {
				continue
			}
			if l, n := t.TakeAudioLevel(); n > 2 && l > level {
				level = l
			}
		}
		prev, was := r.speaking[p.SID()]
		if level >= speakingLevel {
			lvl := float32(min(1, level*4))
			if !was || abs32(prev-lvl) > 0.05 {
				changed = append(changed, &livekit.SpeakerInfo{Sid: p.SID(), Level: lvl, Active: true})
				r.speaking[p.SID()] = lvl
			}
		} else if was {
			changed = append(changed, &livekit.SpeakerInfo{Sid: p.SID(), Level: 0, Active: false})
			delete(r.speaking, p.SID())
		}
	}
	r.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].Level > changed[j].Level })
	r.broadcastAll(&livekit.SignalResponse{Message: &livekit.SignalResponse_SpeakersChanged{SpeakersChanged: &livekit.SpeakersChanged{Speakers: changed}}})
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// updateQuality scores each participant from the loss on what it sends
// (measured here) and what it receives (its receiver reports).
func (r *Room) updateQuality() {
	ps := r.Participants()
	if len(ps) == 0 {
		return
	}
	upd := &livekit.ConnectionQualityUpdate{}
	for _, p := range ps {
		worst := 0.0
		for _, t := range p.PublishedTracks() {
			if l, n := t.TakeLoss(); n > 10 && l > worst {
				worst = l
			}
		}
		for _, d := range p.Subscriptions() {
			if l := d.FractionLost(); l > worst {
				worst = l
			}
		}
		q, score := livekit.ConnectionQuality_EXCELLENT, float32(5)
		switch {
		case worst > 0.1:
			q, score = livekit.ConnectionQuality_POOR, 2
		case worst > 0.03:
			q, score = livekit.ConnectionQuality_GOOD, 3.5
		}
		upd.Updates = append(upd.Updates, &livekit.ConnectionQualityInfo{ParticipantSid: p.SID(), Quality: q, Score: score})
	}
	r.broadcastAll(&livekit.SignalResponse{Message: &livekit.SignalResponse_ConnectionQuality{ConnectionQuality: upd}})
}
