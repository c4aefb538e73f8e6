// Package rooms owns what happens in rooms: creating them, sending events
// (built, authorised against the room's current state, signed, stored),
// membership, aliases, the public directory, and who may read what
// (history visibility). After every committed write it tells a Notifier
// which users must wake. It knows nothing of HTTP.
package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Notifier is told, after each committed write, the stream positions it
// used, the room, and the users who must wake (their /sync long-polls).
type Notifier interface {
	NotifyRange(first, last int64, roomID string, userIDs []string)
	// Forgotten: the user forgot a room, which their /sync must drop.
	Forgotten(userID string)
}

// Params are the service's dependencies.
type Params struct {
	Store      store.Store
	ServerName string
	Key        events.SigningKey
	Notifier   Notifier
	Logger     *slog.Logger
	Now        func() time.Time
	// DefaultVersion is the room version of new rooms.
	DefaultVersion events.RoomVersion
	// UserExists reports whether a local user exists and is active (invites
	// to anyone else are refused: there is no federation).
	UserExists func(ctx context.Context, userID string) bool
	// InheritSpacePowerLevels makes a room created inside a space (its
	// initial_state names an m.space.parent the creator is joined to)
	// start with the space's moderators and moderation thresholds.
	InheritSpacePowerLevels bool
	// EncryptByDefault says which new rooms get m.room.encryption in their
	// initial state: "private" (private presets and direct chats), "all"
	// (all but spaces), "off" or "" (none).
	EncryptByDefault string
	// EventStored hears the content of each event stored, before anyone
	// is woken to read it (the media repository indexes the files it
	// references).
	EventStored func(ctx context.Context, roomID, eventID string, content json.RawMessage)
	// CallGrants hears of rooms whose call permissions may have changed
	// (delivered by Run); nil: nobody listens.
	CallGrants CallGrantsListener
}

// Service is the rooms authority.
type Service struct {
	p   Params
	log *slog.Logger

	mu    sync.RWMutex // read-locked by lookups (every woken /sync's Reader)
	rooms map[string]*room

	grants *grantQueue
	// remote is the federation (nil: rooms are this server's alone).
	remote Remote
	// snaps caches materialised state snapshots (snapshots.go).
	snaps snapshotCache
	// backfills serialises each room's backfill (backfill.go).
	backfills backfills

	// lastCreateTS is the origin_server_ts of the last create event of a
	// room named by it (v12); see createTimestamp.
	createMu     sync.Mutex
	lastCreateTS int64
}

// createTimestamp is the origin_server_ts for the create event of a room
// named by its create event (v12, MSC4291): now, or one millisecond after
// the previous such event. Two identical create events would name the same
// room, which the same request twice in one millisecond would otherwise
// make.
func (s *Service) createTimestamp(now int64) int64 {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if now <= s.lastCreateTS {
		now = s.lastCreateTS + 1
	}
	s.lastCreateTS = now
	return now
}

// New returns a Service.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.DefaultVersion == "" {
		p.DefaultVersion = events.DefaultRoomVersion
	}
	return &Service{p: p, log: p.Logger, rooms: map[string]*room{}, grants: newGrantQueue()}
}

// room is the in-memory image of one room's current state. Its mutex
// serialises sends into the room: each new event's prev_events, depth and
// authorisation are computed against the state the previous send left.
type room struct {
	mu      sync.Mutex
	id      string
	info    store.Room
	version events.RoomVersion
	state   authrules.StateMap
	// extremities are the room's forward extremities: the events no
	// other event cites yet, which a new local event cites.
	extremities []*events.Event
	// readers caches each user's Reader; stateGen counts state changes,
	// which invalidate them (memberships, history visibility, power).
	// Both are guarded by readersMu, not mu: every woken /sync asks for
	// its Reader, and should not queue behind sends for it, nor behind
	// each other (a read lock: 2,000 woken syncs of one room queued on a
	// plain mutex, a fifth of the lock waiting on PostgreSQL, issue 24).
	readersMu sync.RWMutex
	readers   map[string]*Reader
	stateGen  uint64
	// derived holds what the hot paths compute from state (nil: not yet,
	// or the state changed since); see derive. It is set and cleared
	// under mu, and read without it by derivedOf.
	derived atomic.Pointer[derived]
}

// derived is what every send and every member's unread count would
// otherwise recompute from a room's whole state: in a room of thousands,
// counting the members or parsing the power levels for each member woken
// by each message was quadratic work, done under the room's lock that
// sends wait for. It is rebuilt on first use after any change to state.
type derived struct {
	pl    authrules.PowerLevels
	plErr error
	// joined counts joined members; interested lists those joined,
	// invited or knocking (who hear of new events). Shared: never
	// modified once built.
	joined     int
	interested []string
	// servers are the other servers with joined members: where the
	// room's new events go.
	servers []string
}

// derive returns r's derived values, computing them when the state
// changed since the last call. The caller holds r.mu.
func (r *room) derive() *derived {
	if d := r.derived.Load(); d != nil {
		return d
	}
	d := &derived{}
	d.pl, d.plErr = authrules.CurrentPowerLevels(r.version, r.state)
	for t, ev := range r.state {
		if t.Type != "m.room.member" {
			continue
		}
		switch ev.Membership() {
		case "join":
			d.joined++
			d.interested = append(d.interested, t.StateKey)
			if srv := events.ServerOf(t.StateKey); !slices.Contains(d.servers, srv) {
				d.servers = append(d.servers, srv)
			}
		case "invite", "knock":
			d.interested = append(d.interested, t.StateKey)
		}
	}
	d.interested = slices.Clip(d.interested)
	r.derived.Store(d)
	return d
}

// powerLevels is r's current power levels, from its derived values. The
// caller holds r.mu.
func (r *room) powerLevels() (authrules.PowerLevels, error) {
	d := r.derive()
	return d.pl, d.plErr
}

// derivedOf returns a room's derived values without taking its lock when
// they are current (a send in progress has not changed them: it clears
// them under the lock when it changes state), else under the lock. The
// unread counts of every member woken by a message ask for them; queueing
// each behind the room's lock made a convoy the sends waited in.
func (s *Service) derivedOf(ctx context.Context, roomID string) (*derived, error) {
	s.mu.Lock()
	r := s.rooms[roomID]
	s.mu.Unlock()
	if r != nil {
		if d := r.derived.Load(); d != nil {
			return d, nil
		}
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	return r.derive(), nil
}

// ErrUnknownRoom is returned for rooms this server does not have.
var errUnknownRoom = mxerr.NotFoundf("Unknown room")

// lockRoom returns the room's cache entry locked, with its state loaded,
// reading it from the store the first time; M_NOT_FOUND for rooms that do
// not exist. A failed write that dropped the state (r.state = nil) is
// reloaded here, under the same lock the caller then releases, so every
// reader and writer sees whole state. It is the one way into a room's
// entry: a separate load and Lock would let a failed write drop the state
// in between. On error nothing is held.
func (s *Service) lockRoom(ctx context.Context, roomID string) (*room, error) {
	s.mu.Lock()
	r, ok := s.rooms[roomID]
	if !ok {
		r = &room{id: roomID}
		s.rooms[roomID] = r
	}
	s.mu.Unlock()
	r.mu.Lock()
	if r.state != nil {
		return r, nil
	}
	if err := s.fill(ctx, r); err != nil {
		r.mu.Unlock()
		if err == errUnknownRoom {
			s.mu.Lock()
			if s.rooms[roomID] == r {
				delete(s.rooms, roomID)
			}
			s.mu.Unlock()
		}
		return nil, err
	}
	return r, nil
}

// fill reads a room's state from the store into r, which the caller holds
// locked; r is left unchanged on error.
func (s *Service) fill(ctx context.Context, r *room) error {
	roomID := r.id
	info, err := s.p.Store.Room(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return errUnknownRoom
	}
	if err != nil {
		return err
	}
	v := events.RoomVersion(info.Version)
	rows, err := s.p.Store.CurrentState(ctx, roomID)
	if err != nil {
		return err
	}
	st := authrules.StateMap{}
	for _, row := range rows {
		ev, err := events.Parse(v, row.JSON)
		if err != nil {
			return fmt.Errorf("room %s: stored state event %s: %w", roomID, row.EventID, err)
		}
		st[ev.Tuple()] = ev
	}
	ext, err := s.loadExtremities(ctx, roomID, v)
	if err != nil {
		return err
	}
	r.info, r.version, r.state, r.extremities = info, v, st, ext
	r.derived.Store(nil)
	return nil
}

// newRoomID makes a room ID: 18 random letters at this server.
func (s *Service) newRoomID() string {
	return "!" + randomLetters(18) + ":" + s.p.ServerName
}

// randomLetters is n random ASCII letters.
func randomLetters(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// Event is one event to send.
type Event struct {
	Type     string
	StateKey *string
	Content  json.RawMessage
	Redacts  string
	// Device and TxnID identify the client request (idempotence).
	Device string
	TxnID  string
	// DelayID: the delayed event (MSC4140) this one is sent as.
	DelayID string
}

// pending is an event built and authorised against a room's evolving
// in-memory state but not stored yet.
type pending struct {
	ev  *events.Event
	row store.EventRow
}

// pdu makes and signs one event of r against its current state, refusing
// what the event format refuses (content that is not canonical JSON:
// invalid UTF-8, lone surrogates, duplicate keys, integers out of range;
// oversized events and keys) with the Matrix error a client gets. It
// neither authorises the event nor changes r.
func (s *Service) pdu(r *room, sender string, e Event) (*events.Event, error) {
	return s.pduOf(r, sender, e, s.p.ServerName)
}

// pduOf is pdu for a sender of origin (a make_join template for another
// server's user: signed here only to be parsed, that server signs it).
func (s *Service) pduOf(r *room, sender string, e Event, origin string) (*events.Event, error) {
	var stateKey *string
	if e.StateKey != nil {
		k := *e.StateKey
		stateKey = &k
	}
	var authIDs []string
	var cited []*events.Event
	for _, t := range authrules.AuthEventTuples(r.version, e.Type, stateKey, sender, e.Content) {
		if a, ok := r.state[t]; ok {
			authIDs = append(authIDs, a.ID)
			cited = append(cited, a)
		}
	}
	proto := events.Proto{
		RoomID: r.id, Sender: sender, Type: e.Type, StateKey: stateKey, Content: e.Content, Redacts: e.Redacts,
		OriginServerTS: s.p.Now().UnixMilli(), AuthEvents: authIDs,
	}
	if r.id == "" && e.Type == "m.room.create" {
		// v12: the create event names the room (setID); no two may be
		// alike.
		proto.RoomID = ""
		proto.OriginServerTS = s.createTimestamp(proto.OriginServerTS)
	}
	proto.Depth = 1
	for _, p := range r.prevEvents() {
		proto.PrevEvents = append(proto.PrevEvents, p.ID)
		proto.Depth = max(proto.Depth, p.Depth+1)
		cited = append(cited, p)
	}
	if events.SenderChoosesEventID(r.version) {
		// v1 and v2: the event names itself and cites its references'
		// hashes.
		proto.EventID = "$" + randomLetters(18) + ":" + s.p.ServerName
		proto.RefHashes = make(map[string]string, len(cited))
		for _, c := range cited {
			h, err := c.ReferenceHash()
			if err != nil {
				return nil, err
			}
			proto.RefHashes[c.ID] = h
		}
	}
	ev, err := events.Build(proto, r.version, origin, s.p.Key)
	if err != nil {
		switch {
		case errors.Is(err, events.ErrTooLarge):
			return nil, mxerr.New(mxerr.TooLarge, "Event is larger than 65536 bytes")
		case errors.Is(err, events.ErrBadJSON), errors.Is(err, events.ErrBadEvent):
			return nil, mxerr.BadJSONf("Invalid event: %v", err)
		}
		return nil, err
	}
	return ev, nil
}

// build makes, authorises and applies one event to r's in-memory state
// (the caller stores the batch and rolls the state back on failure).
func (s *Service) build(r *room, sender string, e Event, batch *store.EventBatch) (*events.Event, error) {
	ev, err := s.pdu(r, sender, e)
	if err != nil {
		return nil, err
	}
	if err := authrules.Allowed(ev, r.state); err != nil {
		if errors.Is(err, authrules.ErrForbidden) || errors.Is(err, authrules.ErrInvalidPowerLevels) {
			return nil, mxerr.Forbid("%v", err)
		}
		return nil, err
	}
	if r.id == "" {
		r.setID(ev.RoomID)
	}
	var old *events.Event
	if ev.IsState() {
		old = r.state[ev.Tuple()]
	}
	row := eventRow(r, ev, old)
	row.SenderDevice, row.TxnID, row.DelayID = e.Device, e.TxnID, e.DelayID
	if ev.IsState() {
		r.state[ev.Tuple()] = ev
		r.derived.Store(nil)
	}
	r.advance(ev, batch)
	batch.Events = append(batch.Events, row)
	return ev, nil
}

// commit stores a batch built against r, and on failure restores r's state
// from the store on next use.
func (s *Service) commit(ctx context.Context, r *room, batch *store.EventBatch, wake ...string) (int64, error) {
	pos, notify, err := s.commitLater(ctx, r, batch, wake...)
	if err == nil {
		notify()
	}
	return pos, err
}

// commitLater is commit, but returns the wake-up of the users who hear of
// the batch instead of doing it, for the caller to do once it released
// r's lock: in a room of thousands the notifier's bookkeeping for every
// member is work that the next send into the room need not wait for. The
// notifier takes positions in any order (rooms commit concurrently).
func (s *Service) commitLater(ctx context.Context, r *room, batch *store.EventBatch, wake ...string) (int64, func(), error) {
	pos, err := s.p.Store.PersistEvents(ctx, batch)
	if err != nil {
		r.state = nil // reload from the store next time
		r.derived.Store(nil)
		if errors.Is(err, store.ErrExists) && batch.NewRoom != nil {
			return 0, nil, mxerr.New(mxerr.RoomInUse, "Room already exists")
		}
		return 0, nil, err
	}
	changed := len(batch.Redactions) > 0
	for _, e := range batch.Events {
		changed = changed || e.StateKey != nil
	}
	if changed {
		r.dropReaders()
	}
	if s.p.CallGrants != nil && changesCallGrants(r, batch) {
		s.grants.add(r.id)
	}
	if s.p.EventStored != nil {
		for _, e := range batch.Events {
			if ev, err := events.Parse(r.version, e.JSON); err == nil && len(ev.Content) > 2 {
				s.p.EventStored(ctx, r.id, e.EventID, ev.Content)
			}
		}
	}
	s.sendOut(ctx, r, batch)
	notify := func() {}
	if s.p.Notifier != nil && len(batch.Events) > 0 {
		first, id, users := batch.Events[0].Pos, r.id, append(r.interested(), wake...)
		notify = func() { s.p.Notifier.NotifyRange(first, pos, id, users) }
	}
	return pos, notify, nil
}

// dropReaders forgets the cached Readers after a change to state.
func (r *room) dropReaders() {
	r.readersMu.Lock()
	r.stateGen++
	r.readers = nil
	r.readersMu.Unlock()
}

// setID names a room whose ID comes from its create event (v12).
func (r *room) setID(id string) {
	r.id = id
	r.info.RoomID = id
}

// sharedWithOthers reports whether servers other than self have joined
// members in r. The caller holds r.mu.
func (r *room) sharedWithOthers(self string) bool {
	return slices.ContainsFunc(r.derive().servers, func(s string) bool { return s != self })
}

// interested lists the users who hear about new events in the room: those
// joined, invited or knocking. The slice is shared: callers must not
// modify it (append copies it: it has no spare capacity).
func (r *room) interested() []string {
	return r.derive().interested
}

// membership is the user's current membership of r ("" for none).
func (r *room) membership(userID string) string {
	if ev, ok := r.state[events.StateTuple{Type: "m.room.member", StateKey: userID}]; ok {
		return ev.Membership()
	}
	return ""
}

// Send sends one event into a room as sender. A repeated (device, room,
// txnID) returns the first event's ID, whatever the content of the retry:
// the spec makes the transaction ID, not the body, the key of idempotency
// (Synapse answers the same); another room starts a new transaction.
func (s *Service) Send(ctx context.Context, roomID, sender string, e Event) (string, error) {
	// lockRoom reloads state a failed write dropped, under the lock that
	// the deferred Unlock releases (it used to unlock, reload and lock
	// another entry, and a failed reload stopped the process).
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		// The same answer as for a room the sender is not in: whether a
		// room exists is not for outsiders to learn.
		return "", errNotJoined
	}
	if err != nil {
		return "", err
	}
	// The committed event's wake-up runs after the room is unlocked (the
	// defers run last first).
	notify := func() {}
	defer func() { notify() }()
	defer r.mu.Unlock()
	if e.TxnID != "" {
		if prev, err := s.p.Store.TxnEvent(ctx, sender, e.Device, roomID, e.TxnID); err == nil {
			return prev.EventID, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	// Only membership events may come from someone not joined (the
	// authorization rules refuse every other event of theirs): answer
	// those here, the same as for a room that does not exist.
	if e.Type != "m.room.member" && r.membership(sender) != "join" {
		return "", errNotJoined
	}
	if IsCallMemberType(e.Type) && e.StateKey != nil && !OwnsCallMemberKey(sender, *e.StateKey) {
		return "", mxerr.Forbid("A call membership's state key must name its sender")
	}
	if e.Type == "m.room.canonical_alias" && e.StateKey != nil && *e.StateKey == "" {
		if err := s.checkCanonicalAlias(ctx, roomID, e.Content); err != nil {
			return "", err
		}
	}
	// Setting state to what it already is, by the same sender, changes
	// nothing and answers the current event (as Synapse does): joining
	// twice or a client's retry makes no second event.
	if e.StateKey != nil {
		if cur, ok := r.state[events.StateTuple{Type: e.Type, StateKey: *e.StateKey}]; ok && cur.Sender == sender && sameContent(cur.Content, e.Content) {
			return cur.ID, nil
		}
	}
	batch := &store.EventBatch{}
	var target *store.EventRow
	if e.Type == "m.room.redaction" {
		t, err := s.redactionTarget(ctx, r, sender, e)
		if err != nil {
			return "", err
		}
		target = t
	}
	// build changes nothing when it fails: no state to restore.
	ev, err := s.build(r, sender, e, batch)
	if err != nil {
		return "", err
	}
	if target != nil && target.RedactedBy == "" {
		red, err := events.Redact(r.version, target.JSON)
		if err != nil {
			r.state = nil
			r.derived.Store(nil)
			return "", err
		}
		batch.Redactions = append(batch.Redactions, store.Redaction{EventID: target.EventID, RedactedJSON: red, By: ev.ID})
		if target.StateKey != nil {
			if cur, ok := r.state[events.StateTuple{Type: target.Type, StateKey: *target.StateKey}]; ok && cur.ID == target.EventID {
				if rev, err := events.Parse(r.version, red); err == nil {
					r.state[cur.Tuple()] = rev
					r.derived.Store(nil)
				}
			}
		}
	}
	if s.remote != nil && ev.Type == "m.room.member" && ev.Membership() == "invite" && !s.isLocal(*ev.StateKey) {
		if err := s.inviteRemote(ctx, r, ev, batch); err != nil {
			r.state = nil // build applied the invite: reload
			r.derived.Store(nil)
			return "", err
		}
	}
	var wake []string
	if ev.Type == "m.room.member" {
		wake = append(wake, *ev.StateKey)
	}
	_, wakeUp, err := s.commitLater(ctx, r, batch, wake...)
	if err != nil {
		return "", err
	}
	notify = wakeUp
	return ev.ID, nil
}

// CheckEvent refuses an event Send would refuse for its form, without
// sending it: the same building and the same errors (M_BAD_JSON,
// M_TOO_LARGE). Whether the sender may send it is decided when it is sent.
// Delayed events are checked with it when they are scheduled.
func (s *Service) CheckEvent(ctx context.Context, roomID, sender string, e Event) error {
	r, err := s.lockRoom(ctx, roomID)
	if err == errUnknownRoom {
		return errNotJoined
	}
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	_, err = s.pdu(r, sender, e)
	return err
}

func (s *Service) redactionTarget(ctx context.Context, r *room, sender string, e Event) (*store.EventRow, error) {
	if !events.ValidEventID(e.Redacts) {
		return nil, mxerr.InvalidParamf("Invalid event ID to redact")
	}
	t, err := s.p.Store.Event(ctx, e.Redacts)
	if errors.Is(err, store.ErrNotFound) && r.sharedWithOthers(s.p.ServerName) {
		// In a room shared with other servers the event may not have
		// reached this one yet: a member who may redact anyone's events
		// sends the redaction (as the spec lets), which applies where
		// the event is.
		pl, err := r.powerLevels()
		if err != nil {
			return nil, err
		}
		if !authrules.RedactsOthers(sender, pl) {
			return nil, mxerr.NotFoundf("Event not found")
		}
		return nil, nil
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.RoomID != r.id) {
		return nil, mxerr.NotFoundf("Event not found")
	}
	if err != nil {
		return nil, err
	}
	orig, err := events.Parse(r.version, t.JSON)
	if err != nil {
		return nil, err
	}
	pl, err := r.powerLevels()
	if err != nil {
		return nil, err
	}
	if err := authrules.CanRedact(sender, orig, pl); err != nil {
		return nil, mxerr.Forbid("You may not redact this event")
	}
	return &t, nil
}

// sameContent reports whether two event contents are the same JSON.
func sameContent(a, b json.RawMessage) bool {
	ca, err1 := events.CanonicalJSON(a)
	cb, err2 := events.CanonicalJSON(b)
	return err1 == nil && err2 == nil && string(ca) == string(cb)
}

// DefaultVersion is the room version of rooms created without one.
func (s *Service) DefaultVersion() events.RoomVersion { return s.p.DefaultVersion }

// Version is a room's version.
func (s *Service) Version(ctx context.Context, roomID string) (events.RoomVersion, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	return r.version, nil
}

// Members returns the users with a given membership now.
func (s *Service) Members(ctx context.Context, roomID string, membership string) ([]string, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	var out []string
	for t, ev := range r.state {
		if t.Type == "m.room.member" && ev.Membership() == membership {
			out = append(out, t.StateKey)
		}
	}
	return out, nil
}

// CurrentStateEvent returns one piece of current state (nil when absent).
func (s *Service) currentStateEvent(ctx context.Context, roomID string, t events.StateTuple) (*events.Event, *room, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	defer r.mu.Unlock()
	return r.state[t], r, nil
}
