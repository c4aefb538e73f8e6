package sync

import (
	"context"
	"log/slog"
	"slices"
	gosync "sync"
	"time"
)

// Presence states as the spec spells them (Presence module).
const (
	PresenceOnline      = "online"
	PresenceUnavailable = "unavailable"
	PresenceOffline     = "offline"
)

// PresenceIdleTimeout is how long a user stays online (or unavailable)
// without a request and without a /sync in flight before they go offline.
// A waiting /sync counts as activity for its whole length, so a client
// that keeps long-polling stays online whatever its timeout; one that
// stops (closed tab, lost network) is offline five minutes later.
const PresenceIdleTimeout = 5 * time.Minute

// presenceDeviceRecent is how long a device's set_presence counts after
// its last /sync ended, when deciding between the devices of one user
// (busiest wins: one device syncing online and another unavailable is
// online, and they do not overturn each other on every sync).
const presenceDeviceRecent = time.Minute

// Presence tracks who is online, in memory only: after a restart everyone
// is offline until seen again (spec: Presence module). It has its own
// position counter for the Presence part of StreamToken, which, like
// Typing's, starts at the process start time in microseconds so that a
// token from another run is recognised (and its client gets everyone's
// current state, offline included, clearing what the restart forgot).
//
// A change (state, status message) wakes the long-polls of the user and of
// everyone who shares a joined room with them, which the Engine works out
// (see Engine.presenceAudience). One janitor goroutine moves idle users to
// offline after PresenceIdleTimeout; Close stops it.
type Presence struct {
	n    *Notifier
	now  func() time.Time
	base int64
	idle time.Duration
	log  *slog.Logger

	mu       gosync.Mutex
	pos      int64
	users    map[string]*presenceUser
	next     time.Time // the janitor's next expiry check (zero: none)
	audience func(ctx context.Context, userID string) ([]string, error)

	kick      chan struct{}
	done      chan struct{}
	wg        gosync.WaitGroup
	closeOnce gosync.Once
}

type presenceUser struct {
	state string // online, unavailable or offline
	msg   string
	// remote: another server's user, whose state that server sends
	// (m.presence); updated is when it last did.
	remote  bool
	updated time.Time
	// put is true while the state is the one the user set with PUT
	// /presence: a /sync without set_presence then does not overturn it
	// (Element sets unavailable when the user is idle and keeps syncing).
	put     bool
	active  time.Time // last request
	syncing int       // presence-affecting /syncs in flight
	devices map[string]*presenceDevice
	pos     int64 // counter at the last change
}

type presenceDevice struct {
	state   string // the set_presence of its last /sync
	seen    time.Time
	syncing int
}

// PresenceStatus is one user's presence as the API reports it.
type PresenceStatus struct {
	Presence        string `json:"presence"`
	LastActiveAgo   *int64 `json:"last_active_ago,omitempty"`
	CurrentlyActive *bool  `json:"currently_active,omitempty"`
	StatusMsg       string `json:"status_msg,omitempty"`
}

// NewPresence starts the presence tracker; it wakes syncs through n. Close
// it when done.
func NewPresence(n *Notifier) *Presence {
	return newPresence(n, time.Now, PresenceIdleTimeout)
}

func newPresence(n *Notifier, now func() time.Time, idle time.Duration) *Presence {
	base := now().UnixMicro()
	p := &Presence{
		n:     n,
		now:   now,
		base:  base,
		pos:   base,
		idle:  idle,
		log:   slog.New(slog.DiscardHandler),
		users: map[string]*presenceUser{},
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.janitor()
	return p
}

// setAudience installs the function that lists whom a user's change
// concerns (the Engine does, when it is made).
func (p *Presence) setAudience(f func(ctx context.Context, userID string) ([]string, error), log *slog.Logger) {
	p.mu.Lock()
	p.audience = f
	if log != nil {
		p.log = log
	}
	p.mu.Unlock()
}

// Set is PUT /presence/{userId}/status: the user chose a state and a
// status message. It counts as activity.
func (p *Presence) Set(userID, state, msg string) {
	now := p.now()
	p.mu.Lock()
	u := p.userLocked(userID)
	changed := u.state != state || u.msg != msg
	u.state, u.msg, u.put = state, msg, state != PresenceOffline
	u.active = now
	if changed {
		p.changedLocked(u)
	}
	kick := p.scheduleLocked(u)
	p.mu.Unlock()
	p.after(userID, changed, kick)
}

// SyncStarted records a /sync of userID's device with the given
// set_presence ("" is online) and returns the function to call when it
// ends. A waiting /sync keeps its user from going idle. set_presence
// offline means "do not mark me online" (spec: GET /sync): such a sync
// changes nothing and does not count as activity.
func (p *Presence) SyncStarted(userID, deviceID, setPresence string) (done func()) {
	if setPresence == "" {
		setPresence = PresenceOnline
	}
	if setPresence != PresenceOnline && setPresence != PresenceUnavailable {
		return func() {}
	}
	now := p.now()
	p.mu.Lock()
	u := p.userLocked(userID)
	if u.devices == nil {
		u.devices = map[string]*presenceDevice{}
	}
	d := u.devices[deviceID]
	if d == nil {
		d = &presenceDevice{}
		u.devices[deviceID] = d
	}
	d.state, d.seen = setPresence, now
	d.syncing++
	u.syncing++
	u.active = now
	want := u.state
	switch {
	case setPresence == PresenceUnavailable:
		// The client says the user is away; another device in use
		// keeps them online.
		want = p.busiestLocked(u, now)
		u.put = false
	case u.state == "" || u.state == PresenceOffline:
		want = PresenceOnline
	case !u.put:
		want = p.busiestLocked(u, now)
	}
	changed := want != u.state
	if changed {
		u.state = want
		p.changedLocked(u)
	}
	p.mu.Unlock()
	p.after(userID, changed, false)
	var once gosync.Once
	return func() {
		once.Do(func() {
			now := p.now()
			p.mu.Lock()
			d.syncing--
			d.seen = now
			u.syncing--
			u.active = now
			kick := p.scheduleLocked(u)
			p.mu.Unlock()
			p.after(userID, false, kick)
		})
	}
}

// remotePresenceTimeout is how long another server's user keeps the state
// their server last sent: a server that went away leaves them offline
// after it (Synapse's servers repeat an online user's state well within).
const remotePresenceTimeout = 30 * time.Minute

// SetRemote records another server's user's presence as their server sent
// it (an m.presence EDU): a state this server does not know is ignored.
func (p *Presence) SetRemote(userID, state, msg string, lastActiveAgo int64) {
	if state != PresenceOnline && state != PresenceUnavailable && state != PresenceOffline {
		return
	}
	now := p.now()
	p.mu.Lock()
	u := p.userLocked(userID)
	changed := u.state != state || u.msg != msg
	u.state, u.msg, u.put, u.remote, u.updated = state, msg, true, true, now
	u.active = now.Add(-time.Duration(min(max(lastActiveAgo, 0), int64(24*time.Hour/time.Millisecond))) * time.Millisecond)
	if changed {
		p.changedLocked(u)
	}
	kick := p.scheduleLocked(u)
	p.mu.Unlock()
	p.after(userID, changed, kick)
}

// expiryLocked is when u goes offline unless seen again: idle for the
// idle timeout, or, for another server's user, no word from their server
// for remotePresenceTimeout.
func (p *Presence) expiryLocked(u *presenceUser) time.Time {
	if u.remote {
		return u.updated.Add(remotePresenceTimeout)
	}
	return u.active.Add(p.idle)
}

// Active records a request of userID other than /sync: it keeps an online
// user from going idle but changes no state.
func (p *Presence) Active(userID string) {
	now := p.now()
	p.mu.Lock()
	if u := p.users[userID]; u != nil && u.state != PresenceOffline {
		u.active = now
	}
	p.mu.Unlock()
}

// Status is userID's presence now; ok is false when it is not known (the
// user was not seen since the server started).
func (p *Presence) Status(userID string) (PresenceStatus, bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[userID]
	if u == nil || u.state == "" {
		return PresenceStatus{Presence: PresenceOffline}, false
	}
	return u.statusLocked(now), true
}

func (u *presenceUser) statusLocked(now time.Time) PresenceStatus {
	s := PresenceStatus{Presence: u.state, StatusMsg: u.msg}
	if !u.active.IsZero() {
		ago := max(now.Sub(u.active).Milliseconds(), 0)
		s.LastActiveAgo = &ago
	}
	cur := u.state == PresenceOnline
	s.CurrentlyActive = &cur
	return s
}

// Close stops the janitor and waits for it.
func (p *Presence) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	p.wg.Wait()
	return nil
}

func (p *Presence) userLocked(userID string) *presenceUser {
	u := p.users[userID]
	if u == nil {
		u = &presenceUser{}
		p.users[userID] = u
	}
	return u
}

// busiestLocked is the state the user's recently syncing devices agree
// on: online if any of them syncs online, else unavailable.
func (p *Presence) busiestLocked(u *presenceUser, now time.Time) string {
	out := ""
	for id, d := range u.devices {
		if d.syncing == 0 && now.Sub(d.seen) > presenceDeviceRecent {
			delete(u.devices, id)
			continue
		}
		if d.state == PresenceOnline {
			return PresenceOnline
		}
		out = d.state
	}
	if out == "" {
		return PresenceOnline
	}
	return out
}

func (p *Presence) changedLocked(u *presenceUser) {
	p.pos++
	u.pos = p.pos
}

// scheduleLocked makes sure the janitor wakes by the time u goes idle; it
// reports whether the janitor must be kicked.
func (p *Presence) scheduleLocked(u *presenceUser) bool {
	if u.state == PresenceOffline || u.state == "" || u.syncing > 0 {
		return false
	}
	exp := p.expiryLocked(u)
	if p.next.IsZero() || exp.Before(p.next) {
		p.next = exp
		return true
	}
	return false
}

// after wakes the users a change concerns and kicks the janitor, outside
// the lock.
func (p *Presence) after(userID string, changed, kick bool) {
	if kick {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	if changed {
		p.wake([]string{userID})
	}
}

// wake wakes the changed users and everyone who shares a room with them.
func (p *Presence) wake(changed []string) {
	if p.n == nil || len(changed) == 0 {
		return
	}
	p.mu.Lock()
	f := p.audience
	log := p.log
	p.mu.Unlock()
	wake := slices.Clone(changed)
	if f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, id := range changed {
			users, err := f(ctx, id)
			if err != nil {
				log.Warn("presence: listing who shares a room", "user", id, "err", err)
				continue
			}
			wake = append(wake, users...)
		}
		cancel()
	}
	slices.Sort(wake)
	p.n.Wake(slices.Compact(wake))
}

func (p *Presence) janitor() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := p.expire()
		d := time.Hour
		if !next.IsZero() {
			d = max(next.Sub(p.now()), time.Millisecond)
		}
		timer.Reset(d)
		select {
		case <-p.done:
			return
		case <-p.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// expire moves the users idle for PresenceIdleTimeout to offline, wakes
// whom it concerns and returns the next time someone may go idle (zero if
// nobody can).
func (p *Presence) expire() time.Time {
	now := p.now()
	var next time.Time
	var gone []string
	p.mu.Lock()
	for id, u := range p.users {
		if u.state == PresenceOffline || u.state == "" || u.syncing > 0 {
			continue
		}
		exp := p.expiryLocked(u)
		if !exp.After(now) {
			u.state, u.put, u.devices = PresenceOffline, false, nil
			p.changedLocked(u)
			gone = append(gone, id)
		} else if next.IsZero() || exp.Before(next) {
			next = exp
		}
	}
	p.next = next
	p.mu.Unlock()
	p.wake(gone)
	return next
}

// current is the counter now.
func (p *Presence) current() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// fromThisRun reports whether a since token's presence part was made by
// this run of the tracker.
func (p *Presence) fromThisRun(since, cur int64) bool {
	return since >= p.base && since <= cur
}

// changedSince lists the users whose presence changed after since, up to
// cur.
func (p *Presence) changedSince(since, cur int64) []string {
	var out []string
	p.mu.Lock()
	for id, u := range p.users {
		if u.pos > since && u.pos <= cur && u.state != "" {
			out = append(out, id)
		}
	}
	p.mu.Unlock()
	return out
}

// statuses returns the known presence of the users; with unknownOffline,
// users never seen are reported offline rather than left out.
func (p *Presence) statuses(users []string, unknownOffline bool) map[string]PresenceStatus {
	now := p.now()
	out := make(map[string]PresenceStatus, len(users))
	p.mu.Lock()
	for _, id := range users {
		u := p.users[id]
		switch {
		case u != nil && u.state != "":
			out[id] = u.statusLocked(now)
		case unknownOffline:
			out[id] = PresenceStatus{Presence: PresenceOffline}
		}
	}
	p.mu.Unlock()
	return out
}
