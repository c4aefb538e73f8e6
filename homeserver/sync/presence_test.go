package sync

import (
	"encoding/json"
	"slices"
	gosync "sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func state(t *testing.T, p *Presence, user string) PresenceStatus {
	t.Helper()
	s, _ := p.Status(user)
	return s
}

// woken reports whether l's channel is closed.
func woken(l *Listener) bool {
	select {
	case <-l.C:
		return true
	default:
		return false
	}
}

func TestPresenceIdleTimeout(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	n := NewNotifier()
	p := newPresence(n, clock.now, PresenceIdleTimeout)
	defer p.Close()
	// The janitor sleeps on the real clock; the test calls expire itself
	// at the fake instants that matter.

	if s, ok := p.Status(alice); ok || s.Presence != PresenceOffline {
		t.Fatalf("unknown user: %+v %v", s, ok)
	}
	done := p.SyncStarted(alice, "PHONE", "")
	if s := state(t, p, alice); s.Presence != PresenceOnline || !*s.CurrentlyActive || *s.LastActiveAgo != 0 {
		t.Fatalf("after a sync: %+v", s)
	}
	// A /sync that waits counts as activity for as long as it waits.
	clock.advance(10 * time.Minute)
	p.expire()
	if s := state(t, p, alice); s.Presence != PresenceOnline {
		t.Fatalf("idle during a waiting sync: %+v", s)
	}
	done()
	done() // twice is harmless

	// Any other request keeps the user online too.
	clock.advance(3 * time.Minute)
	p.Active(alice)
	clock.advance(PresenceIdleTimeout - time.Millisecond)
	if next := p.expire(); !next.Equal(clock.now().Add(time.Millisecond)) {
		t.Fatalf("next expiry %v, now %v", next, clock.now())
	}
	if s := state(t, p, alice); s.Presence != PresenceOnline || *s.LastActiveAgo != (PresenceIdleTimeout-time.Millisecond).Milliseconds() {
		t.Fatalf("before the timeout: %+v", s)
	}
	l := n.Listen(alice)
	defer l.Stop()
	before := p.current()
	clock.advance(time.Millisecond)
	if next := p.expire(); !next.IsZero() {
		t.Fatalf("next expiry %v with nobody online", next)
	}
	if s := state(t, p, alice); s.Presence != PresenceOffline || *s.CurrentlyActive {
		t.Fatalf("after the timeout: %+v", s)
	}
	if !woken(l) {
		t.Fatal("going offline woke nobody")
	}
	if p.current() <= before || !slices.Equal(p.changedSince(before, p.current()), []string{alice}) {
		t.Fatalf("the change is not in the stream: %v", p.changedSince(before, p.current()))
	}
	// A request other than /sync does not bring an offline user back.
	p.Active(alice)
	if s := state(t, p, alice); s.Presence != PresenceOffline {
		t.Fatalf("Active brought the user online: %+v", s)
	}
	// set_presence=offline neither marks online nor counts as activity.
	p.SyncStarted(alice, "PHONE", PresenceOffline)()
	if s := state(t, p, alice); s.Presence != PresenceOffline {
		t.Fatalf("set_presence=offline: %+v", s)
	}
}

func TestPresenceStates(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	p := newPresence(NewNotifier(), clock.now, PresenceIdleTimeout)
	defer p.Close()

	// PUT unavailable stands against plain syncs (Element sets it when
	// the user is idle and keeps syncing).
	p.Set(alice, PresenceUnavailable, "en cours")
	p.SyncStarted(alice, "WEB", "")()
	if s := state(t, p, alice); s.Presence != PresenceUnavailable || s.StatusMsg != "en cours" {
		t.Fatalf("PUT unavailable then sync: %+v", s)
	}
	p.Set(alice, PresenceOnline, "")
	if s := state(t, p, alice); s.Presence != PresenceOnline || s.StatusMsg != "" {
		t.Fatalf("PUT online: %+v", s)
	}
	// set_presence=unavailable marks the user unavailable; a plain sync
	// brings them back.
	p.SyncStarted(alice, "WEB", PresenceUnavailable)()
	if s := state(t, p, alice); s.Presence != PresenceUnavailable {
		t.Fatalf("set_presence=unavailable: %+v", s)
	}
	p.SyncStarted(alice, "WEB", "")()
	if s := state(t, p, alice); s.Presence != PresenceOnline {
		t.Fatalf("back online: %+v", s)
	}
	// Two devices, one online and one unavailable: online, and neither
	// sync changes the state (no ping-pong of wake-ups).
	p.SyncStarted(bob, "PHONE", "")()
	p.SyncStarted(bob, "DESK", PresenceUnavailable)()
	pos := p.current()
	p.SyncStarted(bob, "PHONE", "")()
	p.SyncStarted(bob, "DESK", PresenceUnavailable)()
	if s := state(t, p, bob); s.Presence != PresenceOnline || p.current() != pos {
		t.Fatalf("two devices: %+v, counter %d → %d", s, pos, p.current())
	}
	// Once the online device has been gone a while, the other one rules.
	clock.advance(2 * presenceDeviceRecent)
	p.SyncStarted(bob, "DESK", PresenceUnavailable)()
	if s := state(t, p, bob); s.Presence != PresenceUnavailable {
		t.Fatalf("the remaining device: %+v", s)
	}
}

// presenceHarness is a harness whose engine has a presence tracker.
func presenceHarness(t *testing.T, h *harness) *Presence {
	t.Helper()
	p := NewPresence(h.n)
	t.Cleanup(func() { _ = p.Close() })
	e, err := New(h.ctx, Params{Store: h.st, Notifier: h.n, Typing: h.ty, Presence: p})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	return p
}

type presenceEvent struct {
	Type    string         `json:"type"`
	Sender  string         `json:"sender"`
	Content PresenceStatus `json:"content"`
}

func presenceOf(t *testing.T, resp *Response) map[string]PresenceStatus {
	t.Helper()
	out := map[string]PresenceStatus{}
	for _, raw := range resp.Presence.Events {
		var e presenceEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != "m.presence" {
			t.Fatalf("presence event %s", raw)
		}
		out[e.Sender] = e.Content
	}
	return out
}

func TestPresenceStream(t *testing.T) {
	backends(t, func(t *testing.T, h *harness) {
		p := presenceHarness(t, h)
		r := h.createRoom("!room:test", alice)
		h.join(r.id, bob)
		h.createRoom("!carol:test", carol)

		// Nobody was seen yet: nothing to say.
		bobFirst, _ := h.sync(Request{UserID: bob})
		if len(bobFirst.Presence.Events) != 0 {
			t.Fatalf("initial presence of unseen users: %s", mustJSON(t, bobFirst.Presence))
		}
		carolFirst, _ := h.sync(Request{UserID: carol})

		// bob waits; alice sets her presence: bob's poll wakes with it.
		done := make(chan *Response, 1)
		go func() {
			resp, err := h.e.Sync(h.ctx, Request{UserID: bob, Since: bobFirst.NextBatch, Timeout: 30 * time.Second})
			if err != nil {
				t.Error(err)
			}
			done <- resp
		}()
		waitFor(t, func() bool { return h.n.waiting() == 1 })
		carolPoll := h.n.Listen(carol)
		defer carolPoll.Stop()
		p.Set(alice, PresenceOnline, "au labo")
		resp := <-done
		got := presenceOf(t, resp)
		if a, ok := got[alice]; !ok || len(got) != 1 || a.Presence != PresenceOnline || a.StatusMsg != "au labo" ||
			a.LastActiveAgo == nil || a.CurrentlyActive == nil || !*a.CurrentlyActive {
			t.Fatalf("bob's woken sync: %s", mustJSON(t, resp.Presence))
		}
		if woken(carolPoll) {
			t.Fatal("alice's presence woke carol, who shares no room with her")
		}
		tok, err := ParseStreamToken(resp.NextBatch)
		if err != nil || tok.Presence != p.current() {
			t.Fatalf("next_batch %q: %+v %v", resp.NextBatch, tok, err)
		}
		// Nothing changed since: an incremental sync has no presence.
		again, _ := h.sync(Request{UserID: bob, Since: resp.NextBatch})
		if len(again.Presence.Events) != 0 {
			t.Fatalf("unchanged presence sent again: %s", mustJSON(t, again.Presence))
		}

		// carol never sees alice's presence: not initial, not incremental.
		for _, since := range []string{"", carolFirst.NextBatch} {
			c, _ := h.sync(Request{UserID: carol, Since: since})
			if _, ok := presenceOf(t, c)[alice]; ok {
				t.Fatalf("carol's sync (since %q) has alice's presence", since)
			}
		}
		// Her own presence reaches carol.
		p.Set(carol, PresenceUnavailable, "")
		c, _ := h.sync(Request{UserID: carol, Since: carolFirst.NextBatch})
		if got := presenceOf(t, c); len(got) != 1 || got[carol].Presence != PresenceUnavailable {
			t.Fatalf("carol's own presence: %s", mustJSON(t, c.Presence))
		}
		// A room shared later brings the new room-mate's state.
		h.join(r.id, carol)
		c2, _ := h.sync(Request{UserID: carol, Since: c.NextBatch})
		if got := presenceOf(t, c2); got[alice].Presence != PresenceOnline || got[alice].StatusMsg != "au labo" {
			t.Fatalf("carol after joining alice's room: %s", mustJSON(t, c2.Presence))
		}

		// Filters: types [] turns the section off; limit and senders apply.
		off, _ := h.sync(Request{UserID: bob, Filter: Filter{Presence: EventFilter{Types: []string{}}}})
		if len(off.Presence.Events) != 0 {
			t.Fatalf("presence with types []: %s", mustJSON(t, off.Presence))
		}
		not, _ := h.sync(Request{UserID: bob, Filter: Filter{Presence: EventFilter{NotTypes: []string{"m.*"}}}})
		if len(not.Presence.Events) != 0 {
			t.Fatalf("presence with not_types m.*: %s", mustJSON(t, not.Presence))
		}
		one := 1
		lim, _ := h.sync(Request{UserID: bob, Filter: Filter{Presence: EventFilter{Limit: &one}}})
		if got := presenceOf(t, lim); len(got) != 1 {
			t.Fatalf("limit 1: %s", mustJSON(t, lim.Presence))
		}
		snd, _ := h.sync(Request{UserID: bob, Filter: Filter{Presence: EventFilter{NotSenders: []string{alice}}}})
		if _, ok := presenceOf(t, snd)[alice]; ok {
			t.Fatal("not_senders ignored")
		}
		full, _ := h.sync(Request{UserID: bob})
		if got := presenceOf(t, full); len(got) != 2 || got[carol].Presence != PresenceUnavailable {
			t.Fatalf("bob's initial sync: %s", mustJSON(t, full.Presence))
		}

		// A token from another run (or from before presence) gets
		// everyone's state, the unseen as offline.
		for _, stale := range []string{
			StreamToken{Pos: h.st.CurrentPos(), Typing: h.ty.current(), Presence: 5}.String(),
			StreamToken{Pos: h.st.CurrentPos(), Typing: h.ty.current()}.String(),
		} {
			s, _ := h.sync(Request{UserID: bob, Since: stale, Timeout: 30 * time.Second})
			got := presenceOf(t, s)
			if got[alice].Presence != PresenceOnline || got[bob].Presence != PresenceOffline || got[carol].Presence != PresenceUnavailable {
				t.Fatalf("stale token %q: %s", stale, mustJSON(t, s.Presence))
			}
		}
	})
}
