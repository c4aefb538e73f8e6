package stateres

import (
	"context"
	"fmt"
	"slices"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// StateSet is a room state by event ID: each state tuple names the event
// that holds it.
type StateSet map[events.StateTuple]string

// Source is how the resolver reads the room's DAG. Its caller declares it
// over the store, a cache, or the events a remote server sent.
type Source interface {
	// Event returns the event with this ID, or an error; an event it does
	// not have is reported with an error wrapping ErrMissingEvent.
	Event(ctx context.Context, id string) (*events.Event, error)
	// Rejected reports whether the event was rejected when it was received
	// (on its auth chain or on the state before it). A rejected auth event
	// is not used to fill gaps in the iterative auth checks.
	Rejected(id string) bool
}

// Authorizer decides whether ev is allowed given st; authrules.Allowed is
// the default. A caller may wrap it (to count or log refusals); it must
// stay a pure function for the resolution to be deterministic.
type Authorizer func(ev *events.Event, st authrules.AuthState) error

// Options tunes Resolve; the zero value is the spec's algorithm.
type Options struct {
	// Auth replaces authrules.Allowed in the iterative auth checks.
	Auth Authorizer
}

// Resolve returns the resolution of states in a room of version v: the
// algorithm of the room version's spec, steps 1 to 5. The result does not
// depend on the order of states, nor on the order events come from src.
//
// It fails when an event the algorithm needs is missing (ErrMissingEvent)
// or when v has no state resolution here (ErrUnsupportedRoomVersion).
func Resolve(ctx context.Context, v events.RoomVersion, states []StateSet, src Source, opt Options) (StateSet, error) {
	if !v.Supported() || v == events.RoomV1 {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedRoomVersion, v)
	}
	switch len(states) {
	case 0:
		return StateSet{}, nil
	case 1:
		return maps(states[0]), nil
	}
	r := &resolver{
		ctx:     ctx,
		v:       v,
		v21:     v == events.RoomV12,
		src:     src,
		auth:    opt.Auth,
		cache:   make(map[string]*events.Event),
		chains:  make(map[string]map[string]struct{}),
		senderP: make(map[string]int64),
		plDepth: make(map[string]int),
	}
	if r.auth == nil {
		r.auth = authrules.Allowed
	}
	return r.resolve(states)
}

func maps(s StateSet) StateSet {
	out := make(StateSet, len(s))
	for k, id := range s {
		out[k] = id
	}
	return out
}

// resolver holds one resolution's caches; it lives for one Resolve call.
type resolver struct {
	ctx  context.Context
	v    events.RoomVersion
	v21  bool // state resolution v2.1 (room version 12)
	src  Source
	auth Authorizer

	cache  map[string]*events.Event
	chains map[string]map[string]struct{} // event ID → its auth chain, without itself
	create *events.Event                  // the room's m.room.create, for v12 auth (not cited there)

	senderP map[string]int64 // event ID → its sender's power level at its auth events
	plDepth map[string]int   // mainline: power levels event ID → index, filled per resolution
}

func (r *resolver) event(id string) (*events.Event, error) {
	if ev, ok := r.cache[id]; ok {
		return ev, nil
	}
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := r.src.Event(r.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	if ev == nil || ev.ID != id {
		return nil, fmt.Errorf("%w: %s", ErrMissingEvent, id)
	}
	r.cache[id] = ev
	return ev, nil
}

func (r *resolver) resolve(states []StateSet) (StateSet, error) {
	unconflicted, conflicted := split(states)
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	if err := r.findCreate(states); err != nil {
		return nil, err
	}

	full, err := r.fullConflictedSet(states, conflicted)
	if err != nil {
		return nil, err
	}

	// Step 1: the power events of the full conflicted set and their auth
	// chains within it, in reverse topological power ordering. (The spec
	// says "the union of their auth chains"; every implementation, and the
	// spec's later wording, keeps only the part inside the full conflicted
	// set: the rest is in every state's auth chain and decides nothing.)
	power := make(map[string]struct{})
	for id := range full {
		ev, err := r.event(id)
		if err != nil {
			return nil, err
		}
		if !isPowerEvent(ev) {
			continue
		}
		power[id] = struct{}{}
		chain, err := r.authChain(id)
		if err != nil {
			return nil, err
		}
		for a := range chain {
			if _, in := full[a]; in {
				power[a] = struct{}{}
			}
		}
	}
	sortedPower, err := r.powerOrder(power)
	if err != nil {
		return nil, err
	}

	// Step 2: iterative auth checks from the unconflicted state (v2) or
	// from nothing (v2.1, so that unconflicted state cannot vouch for a
	// power event its own auth chain does not support).
	partial := StateSet{}
	if !r.v21 {
		partial = maps(unconflicted)
	}
	if err := r.iterativeAuth(partial, sortedPower); err != nil {
		return nil, err
	}

	// Step 3: the rest of the full conflicted set in mainline order of the
	// partial state's power levels.
	rest := make([]string, 0, len(full)-len(power))
	for id := range full {
		if _, done := power[id]; !done {
			rest = append(rest, id)
		}
	}
	sortedRest, err := r.mainlineOrder(partial[events.StateTuple{Type: typePowerLevels}], rest)
	if err != nil {
		return nil, err
	}

	// Step 4: iterative auth checks of those on top of the partial state.
	if err := r.iterativeAuth(partial, sortedRest); err != nil {
		return nil, err
	}

	// Step 5: unconflicted state has the last word.
	for k, id := range unconflicted {
		partial[k] = id
	}
	return partial, nil
}

// split divides states into the unconflicted state map, the tuples every
// state holds with the same event, and the conflicted state set, every
// other tuple with all the events the states give it.
func split(states []StateSet) (StateSet, map[events.StateTuple][]string) {
	unconflicted := StateSet{}
	conflicted := make(map[events.StateTuple][]string)
	seen := make(map[events.StateTuple]bool)
	for _, s := range states {
		for k := range s {
			if seen[k] {
				continue
			}
			seen[k] = true
			first, inAll, same := states[0][k], true, true
			var ids []string
			for _, o := range states {
				id, ok := o[k]
				if !ok {
					inAll = false
					continue
				}
				if id != first {
					same = false
				}
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			if inAll && same {
				unconflicted[k] = first
			} else {
				conflicted[k] = ids
			}
		}
	}
	return unconflicted, conflicted
}

// findCreate keeps, in v12, the room's create event, which v12 events do
// not cite but the authorization rules need: the one whose ID names the
// room. It is chosen whatever the order of the states, among however many
// create events a hostile state offers.
func (r *resolver) findCreate(states []StateSet) error {
	if !authrules.HasPrivilegedCreators(r.v) {
		return nil
	}
	var ids []string
	for _, s := range states {
		if id, ok := s[events.StateTuple{Type: typeCreate}]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		ev, err := r.event(id)
		if err != nil {
			return err
		}
		if ev.Type == typeCreate && events.RoomIDForCreateEvent(ev.ID) == ev.RoomID {
			r.create = ev
			return nil
		}
	}
	return nil
}

// fullConflictedSet is the conflicted state set, the auth difference and,
// in v2.1, the conflicted state subgraph.
func (r *resolver) fullConflictedSet(states []StateSet, conflicted map[events.StateTuple][]string) (map[string]struct{}, error) {
	full := make(map[string]struct{})
	for _, ids := range conflicted {
		for _, id := range ids {
			full[id] = struct{}{}
		}
	}
	conflictedIDs := make([]string, 0, len(full))
	for id := range full {
		conflictedIDs = append(conflictedIDs, id)
	}
	diff, err := r.authDifference(states)
	if err != nil {
		return nil, err
	}
	for id := range diff {
		full[id] = struct{}{}
	}
	if r.v21 {
		sub, err := r.conflictedSubgraph(conflictedIDs)
		if err != nil {
			return nil, err
		}
		for id := range sub {
			full[id] = struct{}{}
		}
	}
	return full, nil
}

// authDifference is the union of the states' full auth chains less their
// intersection. A state's full auth chain here holds its own events too:
// an event every state holds is then never in the difference, whether or
// not some other event of one state cites it.
func (r *resolver) authDifference(states []StateSet) (map[string]struct{}, error) {
	count := make(map[string]int)
	for _, s := range states {
		mine := make(map[string]struct{})
		for _, id := range s {
			mine[id] = struct{}{}
			chain, err := r.authChain(id)
			if err != nil {
				return nil, err
			}
			for a := range chain {
				mine[a] = struct{}{}
			}
		}
		for id := range mine {
			count[id]++
		}
	}
	diff := make(map[string]struct{})
	for id, n := range count {
		if n < len(states) {
			diff[id] = struct{}{}
		}
	}
	return diff, nil
}

// authChain is every event reachable from id through auth_events, without
// id itself. Chains are memoized: in a room each event's chain is asked for
// by many others.
func (r *resolver) authChain(id string) (map[string]struct{}, error) {
	if c, ok := r.chains[id]; ok {
		return c, nil
	}
	// An iterative post-order walk: a deep room must not exhaust the stack.
	type frame struct {
		id   string
		next int
	}
	stack := []frame{{id: id}}
	onStack := map[string]bool{id: true}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		ev, err := r.event(top.id)
		if err != nil {
			return nil, err
		}
		if top.next < len(ev.AuthEvents) {
			a := ev.AuthEvents[top.next]
			top.next++
			if _, done := r.chains[a]; done || onStack[a] {
				continue // onStack: a cycle, which hashes make impossible; ignore the edge
			}
			onStack[a] = true
			stack = append(stack, frame{id: a})
			continue
		}
		c := make(map[string]struct{})
		for _, a := range ev.AuthEvents {
			c[a] = struct{}{}
			for x := range r.chains[a] {
				c[x] = struct{}{}
			}
		}
		r.chains[top.id] = c
		delete(onStack, top.id)
		stack = stack[:len(stack)-1]
	}
	return r.chains[id], nil
}

// conflictedSubgraph (v2.1) is every event on an auth_events path from one
// conflicted event to another: those reachable from a conflicted event
// that themselves reach a conflicted event.
func (r *resolver) conflictedSubgraph(conflicted []string) (map[string]struct{}, error) {
	isConflicted := make(map[string]bool, len(conflicted))
	for _, id := range conflicted {
		isConflicted[id] = true
	}
	reaches := make(map[string]bool) // event → some conflicted event is in its auth chain
	sub := make(map[string]struct{})
	for _, c := range conflicted {
		chain, err := r.authChain(c)
		if err != nil {
			return nil, err
		}
		for a := range chain {
			ok, known := reaches[a]
			if !known {
				ac, err := r.authChain(a)
				if err != nil {
					return nil, err
				}
				for x := range ac {
					if isConflicted[x] {
						ok = true
						break
					}
				}
				reaches[a] = ok
			}
			if ok || isConflicted[a] {
				sub[a] = struct{}{}
			}
		}
	}
	return sub, nil
}

// iterativeAuth applies each of ids in turn to st if the authorization
// rules allow it against st, filled where st lacks a tuple the rules read
// with the event's own (not rejected) auth events.
func (r *resolver) iterativeAuth(st StateSet, ids []string) error {
	for _, id := range ids {
		ev, err := r.event(id)
		if err != nil {
			return err
		}
		if !ev.IsState() {
			continue
		}
		as := make(authrules.StateMap, len(ev.AuthEvents)+1)
		for _, aid := range ev.AuthEvents {
			if r.src.Rejected(aid) {
				continue
			}
			ae, err := r.event(aid)
			if err != nil {
				return err
			}
			as[ae.Tuple()] = ae
		}
		tuples := authrules.AuthEventTuples(ev.Version, ev.Type, ev.StateKey, ev.Sender, ev.Content)
		if r.v21 && ev.Type != typeCreate {
			tuples = append(tuples, events.StateTuple{Type: typeCreate})
		}
		for _, k := range tuples {
			if sid, ok := st[k]; ok {
				se, err := r.event(sid)
				if err != nil {
					return err
				}
				as[k] = se
			}
		}
		if r.v21 && as.Create() == nil && r.create != nil {
			as[events.StateTuple{Type: typeCreate}] = r.create
		}
		if r.auth(ev, as) == nil {
			st[ev.Tuple()] = id
		}
	}
	return nil
}

const (
	typeCreate      = "m.room.create"
	typeMember      = "m.room.member"
	typeJoinRules   = "m.room.join_rules"
	typePowerLevels = "m.room.power_levels"
)

// isPowerEvent reports whether ev is a power event: power levels, join
// rules, or a kick or ban (a leave or ban sent by someone other than its
// target). The create event counts too, as in Synapse and Ruma: it is the
// root of all power, and only a broken state set can conflict on it.
func isPowerEvent(ev *events.Event) bool {
	if !ev.IsState() {
		return false
	}
	switch ev.Type {
	case typePowerLevels, typeJoinRules:
		return ev.StateKeyIs("")
	case typeCreate:
		return ev.StateKeyIs("")
	case typeMember:
		m := ev.Membership()
		return (m == authrules.MembershipLeave || m == authrules.MembershipBan) && *ev.StateKey != ev.Sender
	}
	return false
}
