package sync

import (
	gosync "sync"
)

// lazyCache remembers, per device, which rooms' member events a client
// already holds, so a lazy-loading sync (lazy_load_members without
// include_redundant_members) does not send them again (spec: Lazy-loading
// room members) and does not have to read them to find out.
//
// "Holds" means: the client was sent the member event that was current
// when it was sent, and has seen every later change since, which is true
// while its room timelines are complete (no type or sender filter) and the
// room stays joined: a change then arrives in the timeline or, when the
// timeline is limited, in the state of the gap.
//
// What a response sent only counts once the client proves it received it,
// by syncing again with that response's next_batch: until then it is
// pending. A since that is neither the last confirmed token nor the
// pending one starts the device over.
type lazyCache struct {
	mu      gosync.Mutex // guards devices; each device has its own lock
	devices map[string]*lazyDevice
}

type lazyDevice struct {
	// mu guards the rest: every member woken by a message in a room of
	// thousands begins, asks and commits at once, and one lock for all
	// devices made them queue for it (issue 24's mutex profile).
	mu         gosync.Mutex
	at         string                     // the token the holdings are confirmed at
	held       map[string]map[string]bool // room → members
	size       int
	pendingTok string
	pending    map[string]*lazyRoom
}

// lazyRoom is what one response sent of one room. reset: the response
// replaced the client's view of the room's members (full state), or could
// not vouch for it.
type lazyRoom struct {
	reset   bool
	members map[string]bool
}

const (
	lazyMaxDevices = 10_000
	lazyMaxMembers = 20_000 // per device
)

func lazyKey(userID, deviceID string) string { return userID + "\x00" + deviceID }

// begin is called once per request: it confirms or drops the pending
// holdings according to since and returns the device.
func (c *lazyCache) begin(userID, deviceID, since string) *lazyDevice {
	d := c.device(userID, deviceID)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case since != "" && since == d.pendingTok:
		for room, lr := range d.pending {
			m := d.held[room]
			if lr.reset || m == nil {
				d.size -= len(m)
				m = make(map[string]bool, len(lr.members))
				if d.held == nil {
					d.held = map[string]map[string]bool{}
				}
				d.held[room] = m
			}
			for u := range lr.members {
				if !m[u] {
					m[u] = true
					d.size++
				}
			}
		}
		d.at = since
		if d.size > lazyMaxMembers {
			d.held, d.size = nil, 0
		}
	case since != "" && since == d.at:
		// A retry: the last response may never have arrived.
	default:
		d.held, d.size, d.at = nil, 0, since
	}
	d.pending, d.pendingTok = nil, ""
	return d
}

// device returns the device's entry, made on first use.
func (c *lazyCache) device(userID, deviceID string) *lazyDevice {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.devices == nil {
		c.devices = map[string]*lazyDevice{}
	}
	key := lazyKey(userID, deviceID)
	d := c.devices[key]
	if d == nil {
		for k := range c.devices {
			if len(c.devices) < lazyMaxDevices {
				break
			}
			delete(c.devices, k)
		}
		d = &lazyDevice{}
		c.devices[key] = d
	}
	return d
}

// holds reports whether the client holds roomID's member event of userID.
func (c *lazyCache) holds(d *lazyDevice, roomID, userID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held[roomID][userID]
}

// commit records what the response with next_batch tok sent.
func (c *lazyCache) commit(d *lazyDevice, tok string, sent map[string]*lazyRoom) {
	d.mu.Lock()
	d.pending, d.pendingTok = sent, tok
	d.mu.Unlock()
}

// lazySent records, for the response being built, the member events of
// roomID it sends (members) and whether it resets the room.
func (s *syncer) lazySent(roomID string, reset bool, members []string) {
	if s.lazy == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lazyOut == nil {
		s.lazyOut = map[string]*lazyRoom{}
	}
	lr := s.lazyOut[roomID]
	if lr == nil {
		lr = &lazyRoom{members: map[string]bool{}}
		s.lazyOut[roomID] = lr
	}
	lr.reset = lr.reset || reset
	for _, u := range members {
		lr.members[u] = true
	}
}
