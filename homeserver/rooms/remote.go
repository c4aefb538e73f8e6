package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/pducheck"
	"github.com/salonhq/salon/homeserver/stateres"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Remote is what rooms asks of other servers (federation). homeserver
// implements it over federation.Service and installs it with SetRemote;
// without one, rooms are this server's alone.
type Remote interface {
	// VerifyKey finds a server's signing key (the federation keyring).
	pducheck.Verifier
	// MissingEvents asks server for the events between earliest and
	// latest (/get_missing_events), at most limit, none below minDepth.
	MissingEvents(ctx context.Context, server, roomID string, earliest, latest []string, limit int, minDepth int64) ([]json.RawMessage, error)
	// Backfill asks server for up to limit events preceding and including
	// from (/backfill).
	Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error)
	// StateIDs asks server for the state before eventID and its auth
	// chain, by event ID (/state_ids).
	StateIDs(ctx context.Context, server, roomID, eventID string) (state, authChain []string, err error)
	// Event asks server for one event (/event).
	Event(ctx context.Context, server, eventID string) (json.RawMessage, error)
	// QueuePDU sends a PDU to servers through the persistent queue.
	QueuePDU(ctx context.Context, destinations []string, pdu json.RawMessage) error
	// Directory resolves another server's room alias.
	Directory(ctx context.Context, alias string) (roomID string, servers []string, err error)
	// MakeJoin, SendJoin, MakeLeave, SendLeave and Invite are the
	// membership handshakes of the Server-Server API.
	MakeJoin(ctx context.Context, server, roomID, userID string, versions []string) (version string, template json.RawMessage, err error)
	SendJoin(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) (JoinAnswer, error)
	MakeLeave(ctx context.Context, server, roomID, userID string) (version string, template json.RawMessage, err error)
	SendLeave(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) error
	Invite(ctx context.Context, server, roomID, eventID string, version events.RoomVersion, ev json.RawMessage, strippedState []json.RawMessage) (json.RawMessage, error)
	MakeKnock(ctx context.Context, server, roomID, userID string, versions []string) (version string, template json.RawMessage, err error)
	SendKnock(ctx context.Context, server, roomID, eventID string, ev json.RawMessage) (strippedState []json.RawMessage, err error)
}

// JoinAnswer is a resident server's answer to send_join.
type JoinAnswer struct {
	State     []json.RawMessage `json:"state"`
	AuthChain []json.RawMessage `json:"auth_chain"`
	// Event is the join as the resident signed it (restricted joins).
	Event json.RawMessage `json:"event,omitempty"`
}

// SetRemote installs the federation; call it before serving.
func (s *Service) SetRemote(r Remote) { s.remote = r }

// Federated reports whether rooms can be shared with other servers.
func (s *Service) Federated() bool { return s.remote != nil }

// maxFetchRounds bounds how deep a chain of missing prev_events is
// followed with /get_missing_events before the state at the gap is asked
// for instead (an endless chain must not hold the room).
const maxFetchRounds = 2

// maxMissingEvents is the limit asked of /get_missing_events.
const maxMissingEvents = 20

func (s *Service) isLocal(id string) bool { return events.ServerOf(id) == s.p.ServerName }

// Sentinel refusals of received PDUs.
var (
	errNotOrigin     = mxerr.Forbid("The event's sender is not of the sending server")
	errOriginOutside = mxerr.Forbid("The sending server has no member in this room")
	errDeniedByACL   = mxerr.Forbid("The room's server ACL denies the sending server")
)

// ReceivePDU takes a PDU another server sent in a transaction: the room
// must be one this server is in; the event is checked as the spec says
// (pducheck: format, signatures, hash, auth events, the state before it,
// the current state), its missing predecessors fetched from the origin;
// then it is stored accepted (into the timeline, through the same commit
// as local events), soft-failed (kept, never shown) or rejected
// (remembered, refused). A PDU already stored is answered again and does
// nothing.
func (s *Service) ReceivePDU(ctx context.Context, origin string, raw json.RawMessage) (string, error) {
	var head struct {
		RoomID string `json:"room_id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || !events.ValidRoomID(head.RoomID) {
		return "", mxerr.BadJSONf("PDU without a valid room_id")
	}
	r, err := s.lockRoom(ctx, head.RoomID)
	if err == errUnknownRoom {
		return "", mxerr.NotFoundf("Unknown room %s", head.RoomID)
	}
	if err != nil {
		return "", err
	}
	var notifies []func()
	defer func() {
		for _, n := range notifies {
			n()
		}
	}()
	defer r.mu.Unlock()
	if !r.resident(s.p.ServerName) {
		return "", mxerr.NotFoundf("This server is not in room %s", head.RoomID)
	}
	in := &inbound{s: s, r: r, origin: origin, notify: &notifies}
	return in.receive(ctx, raw, maxFetchRounds, false)
}

// resident reports whether a user of server is joined to r (from the
// derived values: a room of thousands is not walked for each PDU). The
// caller holds r.mu.
func (r *room) resident(server string) bool {
	return slices.Contains(r.derive().servers, server)
}

// inbound is the receipt of PDUs from one origin into one locked room.
type inbound struct {
	s      *Service
	r      *room
	origin string
	notify *[]func()
	// rejected caches what is known rejected.
	rejected map[string]bool
}

// known reports whether the event is stored: in the timeline (true,
// true), or outside it with its status.
func (in *inbound) known(ctx context.Context, id string) (timeline bool, status string, err error) {
	if _, err := in.s.p.Store.Event(ctx, id); err == nil {
		return true, "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, "", err
	}
	o, err := in.s.p.Store.Outlier(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return false, o.Status, nil
}

// receive checks and stores one PDU; rounds bounds the fetching of its
// missing predecessors. viaJoin: the PDU is a send_join/send_leave of
// another server's user, which this server then sends to the room's
// other servers.
func (in *inbound) receive(ctx context.Context, raw json.RawMessage, rounds int, viaJoin bool) (string, error) {
	s, r := in.s, in.r
	ev, err := pducheck.ParseEvent(r.version, raw)
	if err != nil {
		return "", mxerr.BadJSONf("%v", err)
	}
	if ev.RoomID != r.id {
		return ev.ID, mxerr.BadJSONf("The event is not of room %s", r.id)
	}
	inTimeline, status, err := in.known(ctx, ev.ID)
	if err != nil {
		return ev.ID, err
	}
	switch {
	case inTimeline, status == store.StatusSoftFailed:
		return ev.ID, nil // a replay: already done
	case status == store.StatusRejected:
		return ev.ID, mxerr.Forbid("Event %s was rejected", ev.ID)
	}
	if r.denies(in.origin) {
		return ev.ID, errDeniedByACL
	}
	// The origin speaks for its own users, in rooms where it has members
	// (or about its own user's membership: a join). A resident server
	// also relays another server's user's own membership change, which
	// it got through send_join, send_leave or send_knock (that user's
	// server signed it: pducheck checks).
	relayed := ev.Type == "m.room.member" && ev.StateKeyIs(ev.Sender) && r.resident(in.origin)
	if events.ServerOf(ev.Sender) != in.origin && !relayed {
		return ev.ID, errNotOrigin
	}
	if !r.resident(in.origin) && !(ev.Type == "m.room.member" && events.ServerOf(ev.StateKeyOrEmpty()) == in.origin) {
		return ev.ID, errOriginOutside
	}
	if err := in.fetchMissing(ctx, ev, rounds); err != nil {
		return ev.ID, err
	}
	before, spec, err := in.stateBefore(ctx, ev)
	if err != nil {
		return ev.ID, err
	}
	if err := in.fetchAuthEvents(ctx, ev); err != nil {
		return ev.ID, err
	}
	view := &roomView{in: in, before: before}
	verdict, err := pducheck.Check(ctx, r.version, raw, s.remote, view)
	if err != nil {
		return ev.ID, err
	}
	kept := verdict.Event
	if kept == nil {
		kept = ev
	}
	switch verdict.Outcome {
	case pducheck.Accepted:
	case pducheck.SoftFailed:
		s.log.Info("federation: soft-failed event", "room", r.id, "event", ev.ID, "origin", in.origin, "reason", verdict.Reason)
		return ev.ID, s.p.Store.PutOutliers(ctx, []store.OutlierRow{{EventID: ev.ID, RoomID: r.id, Status: store.StatusSoftFailed, JSON: kept.JSON,
			KeepState: true, StateBefore: spec, Type: kept.Type, StateKey: kept.StateKey}})
	case pducheck.Rejected:
		s.log.Info("federation: rejected event", "room", r.id, "event", ev.ID, "origin", in.origin, "reason", verdict.Reason)
		if err := s.p.Store.PutOutliers(ctx, []store.OutlierRow{{EventID: ev.ID, RoomID: r.id, Status: store.StatusRejected, JSON: kept.JSON}}); err != nil {
			return ev.ID, err
		}
		return ev.ID, mxerr.Forbid("Event %s rejected: %v", ev.ID, verdict.Reason)
	default:
		s.log.Info("federation: dropped event", "room", r.id, "event", ev.ID, "origin", in.origin, "reason", verdict.Reason)
		return ev.ID, mxerr.Forbid("Event %s refused: %v", ev.ID, verdict.Reason)
	}
	return ev.ID, in.accept(ctx, kept, before, spec, viaJoin)
}

// fetchMissing asks the origin for ev's prev_events this server lacks
// (/get_missing_events), and receives them oldest first.
func (in *inbound) fetchMissing(ctx context.Context, ev *events.Event, rounds int) error {
	if rounds <= 0 || in.s.remote == nil {
		return nil
	}
	missing, err := in.missingPrev(ctx, ev)
	if err != nil || len(missing) == 0 {
		return err
	}
	var minDepth int64
	for _, x := range in.r.extremities {
		if minDepth == 0 || x.Depth < minDepth {
			minDepth = x.Depth
		}
	}
	got, err := in.s.remote.MissingEvents(ctx, in.origin, in.r.id, in.r.extremityIDs(), []string{ev.ID}, maxMissingEvents, minDepth)
	if err != nil {
		in.s.log.Info("federation: get_missing_events failed", "room", in.r.id, "origin", in.origin, "err", err)
		return nil // the state at the gap is asked for instead
	}
	type item struct {
		raw   json.RawMessage
		depth int64
	}
	var items []item
	for _, g := range got {
		e, err := events.Parse(in.r.version, g)
		if err != nil || e.RoomID != in.r.id || e.ID == ev.ID {
			continue
		}
		items = append(items, item{g, e.Depth})
	}
	slices.SortStableFunc(items, func(a, b item) int { return int(a.depth - b.depth) })
	for _, it := range items {
		if _, err := in.receive(ctx, it.raw, rounds-1, false); err != nil {
			in.s.log.Info("federation: fetched event refused", "room", in.r.id, "err", err)
		}
	}
	return nil
}

// missingPrev lists ev's prev_events this server has not stored.
func (in *inbound) missingPrev(ctx context.Context, ev *events.Event) ([]string, error) {
	var out []string
	for _, p := range ev.PrevEvents {
		tl, st, err := in.known(ctx, p)
		if err != nil {
			return nil, err
		}
		if !tl && st == "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// stateBefore is the room state before ev: the state after its single
// prev event, or the resolution (stateres) of the states after each; when
// predecessors are still missing, the state the origin reports at ev
// (/state_ids, events fetched with /event and kept as outliers). spec is
// that state for the store (nil: the room's current state).
func (in *inbound) stateBefore(ctx context.Context, ev *events.Event) (before authrules.StateMap, spec *store.StateSpec, err error) {
	missing, err := in.missingPrev(ctx, ev)
	if err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 && in.s.remote != nil {
		st, err := in.remoteState(ctx, ev)
		if err != nil {
			return nil, nil, err
		}
		return st, specFrom(0, nil, idSet(st)), nil
	}
	// The common case: ev follows exactly the room's extremities.
	ext := in.r.extremityIDs()
	if sameSet(ext, ev.PrevEvents) {
		return in.r.state, nil, nil
	}
	var states []stateres.StateSet
	var base int64 // the snapshot of states[0], 0 when it has none
	for _, p := range ev.PrevEvents {
		set, id, err := in.stateAfter(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		if set == nil {
			continue // rejected: no state of its own here
		}
		if len(states) == 0 {
			base = id
		}
		states = append(states, set)
	}
	if len(states) == 0 {
		return in.r.state, nil, nil
	}
	res := states[0]
	if len(states) > 1 {
		if res, err = stateres.Resolve(ctx, in.r.version, states, &dagSource{in: in}, stateres.Options{}); err != nil {
			return nil, nil, err
		}
	}
	if before, err = in.materialise(ctx, res); err != nil {
		return nil, nil, err
	}
	return before, specFrom(base, states[0], res), nil
}

// stateAfter is the state after an event and its snapshot: a timeline
// event, or a soft-failed one. An event stored before snapshots were kept
// has snapshot 0 and the state read from the timeline up to it, exact
// only where the room's history is linear; a rejected event has none.
func (in *inbound) stateAfter(ctx context.Context, id string) (stateres.StateSet, int64, error) {
	set, snap, ok, err := in.s.eventState(ctx, id, true)
	if err != nil || ok {
		return set, snap, err
	}
	row, err := in.s.p.Store.Event(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	rows, err := in.s.p.Store.StateAt(ctx, in.r.id, row.Pos)
	if err != nil {
		return nil, 0, err
	}
	set = stateres.StateSet{}
	for _, sr := range rows {
		set[events.StateTuple{Type: sr.Type, StateKey: *sr.StateKey}] = sr.EventID
	}
	// StateAt follows the timeline's order; the event itself is in its
	// own state after it whatever came before.
	if pe, err := events.Parse(in.r.version, row.JSON); err == nil && pe.IsState() {
		set[pe.Tuple()] = pe.ID
	}
	return set, 0, nil
}

// remoteState is the state before ev as the origin reports it.
func (in *inbound) remoteState(ctx context.Context, ev *events.Event) (authrules.StateMap, error) {
	stateIDs, authIDs, err := in.s.remote.StateIDs(ctx, in.origin, in.r.id, ev.ID)
	if err != nil {
		return nil, fmt.Errorf("state at %s: %w", ev.ID, err)
	}
	if len(stateIDs)+len(authIDs) > 5000 {
		return nil, mxerr.New(mxerr.TooLarge, "State too large")
	}
	for _, id := range append(slices.Clone(authIDs), stateIDs...) {
		if _, err := in.load(ctx, id); err != nil {
			return nil, err
		}
	}
	out := authrules.StateMap{}
	for _, id := range stateIDs {
		e, err := in.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if e.IsState() {
			out[e.Tuple()] = e
		}
	}
	return out, nil
}

// load returns a stored event, or fetches it from the origin, checks its
// signatures and hash, and keeps it as an outlier.
func (in *inbound) load(ctx context.Context, id string) (*events.Event, error) {
	if row, err := in.s.p.Store.Event(ctx, id); err == nil {
		return events.Parse(in.r.version, row.JSON)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if o, err := in.s.p.Store.Outlier(ctx, id); err == nil {
		return events.Parse(in.r.version, o.JSON)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if in.s.remote == nil {
		return nil, fmt.Errorf("%w: %s", stateres.ErrMissingEvent, id)
	}
	raw, err := in.s.remote.Event(ctx, in.origin, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", stateres.ErrMissingEvent, id, err)
	}
	e, err := pducheck.ParseEvent(in.r.version, raw)
	if err != nil {
		return nil, err
	}
	if e.ID != id || e.RoomID != in.r.id {
		return nil, mxerr.Forbid("Fetched event %s is not the one asked for", id)
	}
	if err := pducheck.CheckSignatures(ctx, e, in.s.remote); err != nil {
		return nil, err
	}
	e, _, err = pducheck.CheckHash(e)
	if err != nil {
		return nil, err
	}
	if err := in.s.p.Store.PutOutliers(ctx, []store.OutlierRow{{EventID: e.ID, RoomID: in.r.id, Status: store.StatusOutlier, JSON: e.JSON}}); err != nil {
		return nil, err
	}
	return e, nil
}

// fetchAuthEvents makes sure every auth event ev cites is stored.
func (in *inbound) fetchAuthEvents(ctx context.Context, ev *events.Event) error {
	for _, id := range ev.AuthEvents {
		if _, err := in.load(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// materialise turns a state by event ID into events.
func (in *inbound) materialise(ctx context.Context, set stateres.StateSet) (authrules.StateMap, error) {
	out := make(authrules.StateMap, len(set))
	for t, id := range set {
		if cur, ok := in.r.state[t]; ok && cur.ID == id {
			out[t] = cur
			continue
		}
		e, err := in.load(ctx, id)
		if err != nil {
			return nil, err
		}
		out[t] = e
	}
	return out, nil
}

// isRejected reports whether an event was rejected here.
func (in *inbound) isRejected(id string) bool {
	if v, ok := in.rejected[id]; ok {
		return v
	}
	o, err := in.s.p.Store.Outlier(context.Background(), id)
	rej := err == nil && o.Status == store.StatusRejected
	if in.rejected == nil {
		in.rejected = map[string]bool{}
	}
	in.rejected[id] = rej
	return rej
}

// accept stores an accepted event in the timeline: the current state
// becomes the state after it, resolved with the room's other forward
// extremities when it does not follow all of them.
func (in *inbound) accept(ctx context.Context, ev *events.Event, before authrules.StateMap, spec *store.StateSpec, viaJoin bool) error {
	s, r := in.s, in.r
	after := cloneState(before)
	if ev.IsState() {
		after[ev.Tuple()] = ev
	}
	newState := after
	others := slices.DeleteFunc(r.extremityIDs(), func(id string) bool { return slices.Contains(ev.PrevEvents, id) })
	if len(others) > 0 {
		// The new current state resolves the states after the room's
		// forward extremities: ev and those it does not cite.
		sets := []stateres.StateSet{idSet(after)}
		for _, x := range others {
			set, _, ok, err := s.eventState(ctx, x, true)
			if err != nil {
				return err
			}
			if !ok { // an extremity stored before snapshots were kept
				sets = []stateres.StateSet{idSet(r.state), idSet(after)}
				break
			}
			sets = append(sets, set)
		}
		res, err := stateres.Resolve(ctx, r.version, sets, &dagSource{in: in}, stateres.Options{})
		if err != nil {
			return err
		}
		if newState, err = in.materialise(ctx, res); err != nil {
			return err
		}
	}
	batch := &store.EventBatch{}
	// State the resolution brought that is not in the timeline yet goes
	// in before the event; what is there already is pointed at.
	var refs []store.StateRef
	for t, e := range newState {
		if cur, ok := r.state[t]; (ok && cur.ID == e.ID) || e.ID == ev.ID {
			continue
		}
		if _, err := s.p.Store.Event(ctx, e.ID); err == nil {
			refs = append(refs, store.StateRef{Type: t.Type, StateKey: t.StateKey, EventID: e.ID})
			continue
		}
		batch.Events = append(batch.Events, eventRow(r, e, nil))
	}
	var old *events.Event
	if ev.IsState() {
		old = r.state[ev.Tuple()]
	}
	row := eventRow(r, ev, old)
	row.StateBefore = spec
	if ev.IsState() {
		// The state tuple it replaces in the current state only if the
		// resolution kept it.
		if kept := newState[ev.Tuple()]; kept != nil && kept.ID != ev.ID {
			refs = append(refs, store.StateRef{Type: ev.Type, StateKey: ev.StateKeyOrEmpty(), EventID: kept.ID})
		}
	}
	refs = append(refs, droppedTuples(r.state, newState, ev)...)
	batch.Events = append(batch.Events, row)
	batch.State = refs
	if ev.Type == "m.room.redaction" {
		in.redaction(ctx, ev, batch)
	}
	prevState := r.state
	r.state = newState
	r.derived.Store(nil)
	r.advance(ev, batch)
	var wake []string
	if ev.Type == "m.room.member" {
		wake = append(wake, ev.StateKeyOrEmpty())
	}
	_, notify, err := s.commitLater(ctx, r, batch, wake...)
	if err != nil {
		return err
	}
	*in.notify = append(*in.notify, notify)
	if viaJoin {
		s.forward(ctx, r, prevState, ev, in.origin)
	}
	return nil
}

// droppedTuples is what leaves the current state when it goes from cur
// to next with ev: every tuple of cur, and ev's own, that next has no
// event for (state resolution v2 can keep none of a conflicted tuple's
// events). Each is a StateRef without an event ID, in a stable order.
func droppedTuples(cur, next authrules.StateMap, ev *events.Event) []store.StateRef {
	gone := map[events.StateTuple]bool{}
	for t := range cur {
		if next[t] == nil {
			gone[t] = true
		}
	}
	if ev.IsState() && next[ev.Tuple()] == nil {
		gone[ev.Tuple()] = true
	}
	out := make([]store.StateRef, 0, len(gone))
	for t := range gone {
		out = append(out, store.StateRef{Type: t.Type, StateKey: t.StateKey})
	}
	slices.SortFunc(out, func(a, b store.StateRef) int {
		return strings.Compare(a.Type+"\x00"+a.StateKey, b.Type+"\x00"+b.StateKey)
	})
	return out
}

// redaction applies a received redaction to its target when the target
// is stored here and the redaction is allowed (the sender's power, or the
// same server in v3 and later).
func (in *inbound) redaction(ctx context.Context, ev *events.Event, batch *store.EventBatch) {
	t, err := in.s.p.Store.Event(ctx, ev.Redacts)
	if err != nil || t.RoomID != in.r.id || t.RedactedBy != "" {
		return
	}
	orig, err := events.Parse(in.r.version, t.JSON)
	if err != nil {
		return
	}
	pl, err := in.r.powerLevels()
	if err != nil || (authrules.CanRedact(ev.Sender, orig, pl) != nil && events.ServerOf(orig.Sender) != events.ServerOf(ev.Sender)) {
		return
	}
	red, err := events.Redact(in.r.version, t.JSON)
	if err != nil {
		return
	}
	batch.Redactions = append(batch.Redactions, store.Redaction{EventID: t.EventID, RedactedJSON: red, By: ev.ID})
}

// eventRow is the stored row of an event of r; old is the state event it
// replaces (for unsigned.prev_content).
func eventRow(r *room, ev *events.Event, old *events.Event) store.EventRow {
	row := store.EventRow{EventID: ev.ID, RoomID: r.id, Type: ev.Type, StateKey: ev.StateKey, Sender: ev.Sender, JSON: ev.JSON}
	var rel struct {
		RelatesTo struct {
			RelType string `json:"rel_type"`
			EventID string `json:"event_id"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(ev.Content, &rel) == nil && rel.RelatesTo.RelType != "" && rel.RelatesTo.EventID != "" {
		row.RelType, row.RelatesTo = rel.RelatesTo.RelType, rel.RelatesTo.EventID
	}
	if ev.Type == "m.room.member" {
		row.Membership = ev.Membership()
	}
	if old != nil && ev.IsState() {
		row.Unsigned, _ = json.Marshal(map[string]any{
			"prev_content": old.Content, "replaces_state": old.ID, "prev_sender": old.Sender,
		})
	}
	return row
}

// cloneState copies a state map (never nil).
func cloneState(m authrules.StateMap) authrules.StateMap {
	out := make(authrules.StateMap, len(m)+1)
	maps.Copy(out, m)
	return out
}

func idSet(m authrules.StateMap) stateres.StateSet {
	out := make(stateres.StateSet, len(m))
	for k, v := range m {
		out[k] = v.ID
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// roomView is pducheck's view of the room a PDU arrives in.
type roomView struct {
	in     *inbound
	before authrules.StateMap
}

func (v *roomView) AuthEvents(ctx context.Context, ev *events.Event) ([]*events.Event, error) {
	out := make([]*events.Event, 0, len(ev.AuthEvents))
	for _, id := range ev.AuthEvents {
		e, err := v.in.load(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (v *roomView) Rejected(id string) bool { return v.in.isRejected(id) }

func (v *roomView) Create(ctx context.Context) (*events.Event, error) {
	if c := v.in.r.state.Create(); c != nil {
		return c, nil
	}
	return v.before.Create(), nil
}

func (v *roomView) StateBefore(ctx context.Context, ev *events.Event) (authrules.AuthState, error) {
	return v.before, nil
}

func (v *roomView) CurrentState(ctx context.Context) (authrules.AuthState, error) {
	return v.in.r.state, nil
}

// dagSource is stateres' view of the room's events.
type dagSource struct{ in *inbound }

func (d *dagSource) Event(ctx context.Context, id string) (*events.Event, error) {
	return d.in.load(ctx, id)
}

func (d *dagSource) Rejected(id string) bool { return d.in.isRejected(id) }
