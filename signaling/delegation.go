package signaling

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/salonhq/salon/sfu"
)

// MSC4195's delegated delayed leave. A MatrixRTC client schedules its own
// "leave the call" as an MSC4140 delayed event and restarts it every few
// seconds. Delegated, that is the SFU's job: the SFU knows whether the
// client is still there. While the client's SFU session is alive the
// delayed event is restarted here; when the session ends — left, removed,
// or its signal connection gone and not resumed within Grace (a closed or
// crashed tab) — the leave is sent at once instead of after the delay. A
// session that ended may be followed by a new one of the same member
// within Rejoin: a client that gives up a connection attempt and joins
// again (Element Call does, right after its first connect) is still in
// the call.

// DelayedLeaves is the homeserver's MSC4140 delayed events, as delegation
// uses them.
type DelayedLeaves interface {
	// Delay is the delay of the user's delayed event delayID, or
	// ErrUnknownDelay when the user has none such.
	Delay(ctx context.Context, userID, delayID string) (time.Duration, error)
	// Act restarts ("restart") or sends ("send") a delayed event.
	Act(ctx context.Context, delayID, action string) error
}

// Errors of Delegate.
var (
	ErrUnknownDelay  = errors.New("signaling: no such delayed event")
	ErrNotJoined     = errors.New("signaling: not joined to the room")
	ErrBadDelegation = errors.New("signaling: incomplete delegation")
)

// DelegatedLeave names a client's call membership and its delayed leave.
type DelegatedLeave struct {
	UserID, RoomID, SlotID, DeviceID, MemberID, DelayID string
}

// DelegationParams configure Delegations.
type DelegationParams struct {
	SFU     *sfu.SFU
	Delayed DelayedLeaves
	// Authority says whether the user is joined to the room.
	Authority interface {
		CallPermissions(ctx context.Context, userID, roomID string) (CallPermissions, error)
	}
	// Logger is narrowed here with component=delegation.
	Logger *slog.Logger
	// Grace is how long a session whose signal connection dropped may
	// take to resume before its leave is sent; default 1 s.
	Grace time.Duration
	// Rejoin is how long after a member's session ended (without a
	// dropped connection before it) a new session of the same member may
	// appear before its leave is sent; default 3 s.
	Rejoin time.Duration
	// Tick is how often sessions are looked at; default 200 ms.
	Tick time.Duration
	// Unseen is how long a delegation waits for its session to appear
	// before it is dropped; default 2 minutes.
	Unseen time.Duration
}

// Delegations keeps the delegated delayed leaves of the embedded SFU's
// participants. Run must run for them to be kept.
type Delegations struct {
	p   DelegationParams
	log *slog.Logger

	mu      sync.Mutex
	entries map[delegationKey]*delegation
}

// delegationKey: one delegation per member of a slot (MSC4195: "a single
// delegated event per room_id, slot_id, member and MXID").
type delegationKey struct{ user, room, slot, device, member string }

type delegation struct {
	DelegatedLeave
	delay      time.Duration
	lkRoom     string
	identities [2]string
	since      time.Time // delegated at
	seen       bool      // its session was found
	restarted  time.Time
	lostSince  time.Time // its signal connection dropped
	endedSince time.Time // its session was gone
}

// NewDelegations returns the registry.
func NewDelegations(p DelegationParams) *Delegations {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Grace <= 0 {
		p.Grace = time.Second
	}
	if p.Rejoin <= 0 {
		p.Rejoin = 3 * time.Second
	}
	if p.Tick <= 0 {
		p.Tick = 200 * time.Millisecond
	}
	if p.Unseen <= 0 {
		p.Unseen = 2 * time.Minute
	}
	return &Delegations{p: p, log: p.Logger.With("component", "delegation"), entries: map[delegationKey]*delegation{}}
}

// Delegate takes over the delayed leave l names: the user must be joined
// to the room and own the delayed event. A later delegation for the same
// member replaces it.
func (d *Delegations) Delegate(ctx context.Context, l DelegatedLeave) error {
	// MemberID is "" for a legacy (/sfu/get) member, known by user:device.
	if l.UserID == "" || l.RoomID == "" || l.SlotID == "" || l.DeviceID == "" || l.DelayID == "" {
		return ErrBadDelegation
	}
	perms, err := d.p.Authority.CallPermissions(ctx, l.UserID, l.RoomID)
	if err != nil {
		return err
	}
	if !perms.Joined {
		return ErrNotJoined
	}
	delay, err := d.p.Delayed.Delay(ctx, l.UserID, l.DelayID)
	if err != nil {
		return err
	}
	e := &delegation{
		DelegatedLeave: l, delay: delay, lkRoom: LiveKitRoomAlias(l.RoomID, l.SlotID),
		identities: [2]string{LiveKitIdentity(l.UserID, l.DeviceID, l.MemberID), LegacyLiveKitIdentity(l.UserID, l.DeviceID)},
		since:      time.Now(),
	}
	d.mu.Lock()
	d.entries[delegationKey{l.UserID, l.RoomID, l.SlotID, l.DeviceID, l.MemberID}] = e
	d.mu.Unlock()
	d.log.Debug("delayed leave delegated", "user", l.UserID, "matrix_room", l.RoomID, "slot", l.SlotID, "delay", delay)
	return nil
}

// Run keeps the delegations until ctx ends.
func (d *Delegations) Run(ctx context.Context) {
	t := time.NewTicker(d.p.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.check(ctx, now)
		}
	}
}

// check looks at each delegation's session and restarts or sends.
func (d *Delegations) check(ctx context.Context, now time.Time) {
	type act struct {
		key    delegationKey
		e      *delegation
		action string
	}
	var acts []act
	d.mu.Lock()
	for k, e := range d.entries {
		connected, found := d.session(e)
		switch {
		case found && connected:
			e.lostSince, e.endedSince = time.Time{}, time.Time{}
			if !e.seen || now.Sub(e.restarted) >= e.delay*4/5 {
				e.seen, e.restarted = true, now
				acts = append(acts, act{k, e, "restart"})
			}
		case found: // waiting for a resume
			if e.lostSince.IsZero() {
				e.lostSince = now
			}
			if e.seen && now.Sub(e.lostSince) >= d.p.Grace {
				delete(d.entries, k)
				acts = append(acts, act{k, e, "send"})
			}
		case e.seen: // the session ended: waiting for the member to join again
			if e.endedSince.IsZero() {
				e.endedSince = now
			}
			// A connection that dropped before the session ended has
			// had its grace already (a killed tab leaves within Grace).
			dropped := !e.lostSince.IsZero() && now.Sub(e.lostSince) >= d.p.Grace
			if dropped || now.Sub(e.endedSince) >= d.p.Rejoin {
				delete(d.entries, k)
				acts = append(acts, act{k, e, "send"})
			}
		case now.Sub(e.since) > d.p.Unseen:
			delete(d.entries, k)
			d.log.Info("delegated delayed leave dropped: the member never joined the SFU", "user", e.UserID, "matrix_room", e.RoomID)
		}
	}
	d.mu.Unlock()
	for _, a := range acts {
		err := d.p.Delayed.Act(ctx, a.e.DelayID, a.action)
		switch {
		case err == nil:
			if a.action == "send" {
				d.log.Info("delegated delayed leave sent: the member left the SFU", "user", a.e.UserID, "matrix_room", a.e.RoomID)
			}
		case errors.Is(err, ErrUnknownDelay):
			// The client cancelled or sent it itself (a hang-up).
			d.mu.Lock()
			if d.entries[a.key] == a.e {
				delete(d.entries, a.key)
			}
			d.mu.Unlock()
		default:
			d.log.Warn("delegated delayed leave", "action", a.action, "user", a.e.UserID, "err", err)
		}
	}
}

// session finds the delegation's SFU session: whether there is one, and
// whether its signal connection is up.
func (d *Delegations) session(e *delegation) (connected, found bool) {
	for _, ss := range d.p.SFU.Sessions(e.lkRoom) {
		if ss.Subject() != e.UserID || (ss.Identity() != e.identities[0] && ss.Identity() != e.identities[1]) {
			continue
		}
		found = true
		if ss.SignalConnected() {
			return true, true
		}
	}
	return false, found
}

// Len is how many delegations are kept.
func (d *Delegations) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}
