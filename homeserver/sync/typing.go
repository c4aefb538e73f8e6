package sync

import (
	"slices"
	gosync "sync"
	"time"
)

// Typing holds who is typing in which room. It lives in memory only, as
// typing notifications are ephemeral (spec: Typing Notifications module),
// with its own position counter for the Typing part of StreamToken.
//
// The counter starts at the process start time in microseconds, so the
// counter of a later run is always above that of an earlier one: a since
// token whose typing part is below this run's start, or above the current
// counter, comes from another run, and its client gets the full typing
// state of every joined room (clearing indicators the restart forgot).
//
// One janitor goroutine expires typing users at their timeout; Close stops
// it.
type Typing struct {
	n    *Notifier
	now  func() time.Time
	base int64

	mu     gosync.Mutex
	pos    int64
	rooms  map[string]*typingRoom // every room typed in this run
	active map[string]*typingRoom // the rooms where someone types
	next   time.Time              // the janitor's next expiry check

	kick      chan struct{}
	done      chan struct{}
	wg        gosync.WaitGroup
	closeOnce gosync.Once
}

type typingRoom struct {
	users   map[string]time.Time // user → expiry
	pos     int64                // counter value of the last change
	members []string             // who to wake when someone expires
}

// Typing timeouts are clamped to this range; a zero or negative timeout
// means the default.
const (
	defaultTypingTimeout = 30 * time.Second
	minTypingTimeout     = time.Second
	maxTypingTimeout     = 2 * time.Minute
)

// NewTyping starts the typing tracker; it wakes syncs through n (which may
// be nil in tests that only read it). Close it when done.
func NewTyping(n *Notifier) *Typing {
	return newTyping(n, time.Now)
}

func newTyping(n *Notifier, now func() time.Time) *Typing {
	base := now().UnixMicro()
	t := &Typing{
		n:      n,
		now:    now,
		base:   base,
		pos:    base,
		rooms:  map[string]*typingRoom{},
		active: map[string]*typingRoom{},
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	t.wg.Add(1)
	go t.janitor()
	return t
}

// Set records that userID started (typing true) or stopped typing in
// roomID. A start lasts timeout, then expires by itself. members are the
// users to wake: the room's joined members, which the handler of
// PUT /rooms/{roomId}/typing/{userId} has at hand. Setting the same state
// again only extends the timeout and wakes nobody.
func (t *Typing) Set(roomID, userID string, typing bool, timeout time.Duration, members []string) {
	switch {
	case timeout <= 0:
		timeout = defaultTypingTimeout
	case timeout < minTypingTimeout:
		timeout = minTypingTimeout
	case timeout > maxTypingTimeout:
		timeout = maxTypingTimeout
	}
	now := t.now()
	t.mu.Lock()
	r := t.rooms[roomID]
	if r == nil {
		if !typing {
			t.mu.Unlock()
			return
		}
		r = &typingRoom{users: map[string]time.Time{}}
		t.rooms[roomID] = r
	}
	changed, kick := false, false
	if typing {
		exp, ok := r.users[userID]
		changed = !ok || !exp.After(now)
		exp = now.Add(timeout)
		r.users[userID] = exp
		t.active[roomID] = r
		if t.next.IsZero() || exp.Before(t.next) {
			// The janitor sleeps past this expiry: wake it.
			t.next = exp
			kick = true
		}
	} else if _, ok := r.users[userID]; ok {
		delete(r.users, userID)
		changed = true
	}
	if len(members) > 0 {
		r.members = slices.Clone(members)
	}
	if changed {
		t.pos++
		r.pos = t.pos
	}
	if len(r.users) == 0 {
		r.members = nil
		delete(t.active, roomID)
	}
	wake := r.members
	if len(wake) == 0 {
		wake = members
	}
	t.mu.Unlock()
	if kick {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
	if changed && t.n != nil {
		t.n.Wake(wake)
	}
}

// Close stops the janitor and waits for it.
func (t *Typing) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	t.wg.Wait()
	return nil
}

func (t *Typing) janitor() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := t.expire()
		d := time.Hour
		if !next.IsZero() {
			d = max(next.Sub(t.now()), time.Millisecond)
		}
		timer.Reset(d)
		select {
		case <-t.done:
			return
		case <-t.kick:
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

// expire removes the users whose timeout passed, wakes the rooms' members
// and returns the next expiry (zero if none).
func (t *Typing) expire() time.Time {
	now := t.now()
	var next time.Time
	var wake []string
	t.mu.Lock()
	for id, r := range t.active {
		changed := false
		for u, exp := range r.users {
			if !exp.After(now) {
				delete(r.users, u)
				changed = true
			} else if next.IsZero() || exp.Before(next) {
				next = exp
			}
		}
		if changed {
			t.pos++
			r.pos = t.pos
			wake = append(wake, r.members...)
			if len(r.users) == 0 {
				r.members = nil
				delete(t.active, id)
			}
		}
	}
	t.next = next
	t.mu.Unlock()
	if len(wake) > 0 && t.n != nil {
		t.n.Wake(wake)
	}
	return next
}

// typingState is one room's typing users as a sync sees them.
type typingState struct {
	users []string // sorted; never nil
	pos   int64    // counter of the room's last change (0: never)
}

// snapshot returns the current counter and the typing state of the rooms,
// read at one instant. Users past their timeout are left out even if the
// janitor has not run yet.
func (t *Typing) snapshot(roomIDs []string) (int64, map[string]typingState) {
	now := t.now()
	out := make(map[string]typingState, len(roomIDs))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range roomIDs {
		r := t.rooms[id]
		if r == nil {
			continue
		}
		users := make([]string, 0, len(r.users))
		for u, exp := range r.users {
			if exp.After(now) {
				users = append(users, u)
			}
		}
		slices.Sort(users)
		out[id] = typingState{users: users, pos: r.pos}
	}
	return t.pos, out
}

// current is the counter now.
func (t *Typing) current() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// fromThisRun reports whether a since token's typing part was made by this
// run of the tracker.
func (t *Typing) fromThisRun(since, cur int64) bool {
	return since >= t.base && since <= cur
}
