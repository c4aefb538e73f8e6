package stateres

import (
	"container/heap"
	"slices"
	"strings"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// powerOrder sorts set by the reverse topological power ordering: Kahn's
// algorithm over the auth_events edges inside set, taking at each step the
// ready event whose sender has the highest power level at its auth events,
// then the lowest origin_server_ts, then the lowest event ID.
func (r *resolver) powerOrder(set map[string]struct{}) ([]string, error) {
	// waiting counts each event's auth events inside set; citedBy inverts
	// the edges so that taking an event releases the ones citing it.
	waiting := make(map[string]int, len(set))
	citedBy := make(map[string][]string, len(set))
	ready := &powerHeap{}
	for id := range set {
		ev, err := r.event(id)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, a := range ev.AuthEvents {
			if _, in := set[a]; in {
				n++
				citedBy[a] = append(citedBy[a], id)
			}
		}
		waiting[id] = n
		if n == 0 {
			k, err := r.powerKey(ev)
			if err != nil {
				return nil, err
			}
			ready.items = append(ready.items, k)
		}
	}
	heap.Init(ready)
	out := make([]string, 0, len(set))
	for ready.Len() > 0 {
		k := heap.Pop(ready).(powerKey)
		out = append(out, k.id)
		for _, c := range citedBy[k.id] {
			waiting[c]--
			if waiting[c] == 0 {
				ev, err := r.event(c)
				if err != nil {
					return nil, err
				}
				ck, err := r.powerKey(ev)
				if err != nil {
					return nil, err
				}
				heap.Push(ready, ck)
			}
		}
	}
	if len(out) < len(set) {
		// A cycle in auth_events, which reference hashes make impossible
		// for honest servers: the events on it are never ready. Put them
		// last, in comparison order, rather than lose them.
		var stuck []powerKey
		for id, n := range waiting {
			if n > 0 {
				ev, err := r.event(id)
				if err != nil {
					return nil, err
				}
				k, err := r.powerKey(ev)
				if err != nil {
					return nil, err
				}
				stuck = append(stuck, k)
			}
		}
		slices.SortFunc(stuck, func(a, b powerKey) int {
			if a.less(b) {
				return -1
			}
			if b.less(a) {
				return 1
			}
			return 0
		})
		for _, k := range stuck {
			out = append(out, k.id)
		}
	}
	return out, nil
}

type powerKey struct {
	level int64
	ts    int64
	id    string
}

// less is the spec's comparison: greater power first, then earlier
// origin_server_ts, then the smaller event ID.
func (a powerKey) less(b powerKey) bool {
	if a.level != b.level {
		return a.level > b.level
	}
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	return a.id < b.id
}

type powerHeap struct{ items []powerKey }

func (h *powerHeap) Len() int           { return len(h.items) }
func (h *powerHeap) Less(i, j int) bool { return h.items[i].less(h.items[j]) }
func (h *powerHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *powerHeap) Push(x any)         { h.items = append(h.items, x.(powerKey)) }
func (h *powerHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}

func (r *resolver) powerKey(ev *events.Event) (powerKey, error) {
	level, err := r.senderLevel(ev)
	if err != nil {
		return powerKey{}, err
	}
	return powerKey{level: level, ts: ev.OriginServerTS, id: ev.ID}, nil
}

// senderLevel is the power level of ev's sender as ev's own auth events
// state it: the power levels event it cites, or the room's defaults when it
// cites none (the creator alone at 100). In v12 the creators' level is
// infinite, read from the room's create event, which v12 events do not
// cite. Levels that cannot be read count as 0: the event then sorts last
// among its peers, and the auth checks refuse it anyway.
func (r *resolver) senderLevel(ev *events.Event) (int64, error) {
	if l, ok := r.senderP[ev.ID]; ok {
		return l, nil
	}
	st := make(authrules.StateMap, 2)
	for _, a := range ev.AuthEvents {
		ae, err := r.event(a)
		if err != nil {
			return 0, err
		}
		if ae.Type == typePowerLevels || ae.Type == typeCreate {
			if ae.StateKeyIs("") {
				st[ae.Tuple()] = ae
			}
		}
	}
	if ev.Type == typeCreate {
		st[ev.Tuple()] = ev
	}
	if st.Create() == nil && r.create != nil && authrules.HasPrivilegedCreators(r.v) {
		st[events.StateTuple{Type: typeCreate}] = r.create
	}
	var level int64
	if pl, err := authrules.CurrentPowerLevels(r.v, st); err == nil {
		level = pl.UserLevel(ev.Sender)
	}
	r.senderP[ev.ID] = level
	return level, nil
}

// mainlineOrder sorts ids by the mainline ordering based on the power
// levels event pl ("" when the partial state has none): events whose power
// levels ancestry meets the mainline further back come first, then earlier
// origin_server_ts, then the smaller event ID.
func (r *resolver) mainlineOrder(pl string, ids []string) ([]string, error) {
	// mainline[id] is the position counted from the oldest power levels
	// event (1) up to pl; 0, before every position, means "not on it",
	// which the spec writes as an infinite index from pl.
	mainline := make(map[string]int)
	var line []string
	onLine := make(map[string]bool)
	for id := pl; id != "" && !onLine[id]; { // onLine: a cycle ends the walk
		line = append(line, id)
		onLine[id] = true
		ev, err := r.event(id)
		if err != nil {
			return nil, err
		}
		id, err = r.citedPowerLevels(ev)
		if err != nil {
			return nil, err
		}
	}
	for i, id := range line {
		mainline[id] = len(line) - i
	}

	type key struct {
		pos int
		ts  int64
		id  string
	}
	keys := make([]key, 0, len(ids))
	for _, id := range ids {
		ev, err := r.event(id)
		if err != nil {
			return nil, err
		}
		pos, err := r.mainlinePosition(ev, mainline)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key{pos, ev.OriginServerTS, id})
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.pos != b.pos {
			return a.pos - b.pos
		}
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.id
	}
	return out, nil
}

// mainlinePosition walks ev's power levels ancestry (not ev itself) to the
// first event on the mainline and returns its position, or 0 when it
// meets none. Positions found for power levels events are memoized, since
// every event of an epoch walks the same path.
func (r *resolver) mainlinePosition(ev *events.Event, mainline map[string]int) (int, error) {
	var walked []string
	pos := 0
	id, err := r.citedPowerLevels(ev)
	if err != nil {
		return 0, err
	}
	for id != "" && !slices.Contains(walked, id) { // Contains: a cycle ends the walk
		if p, ok := mainline[id]; ok {
			pos = p
			break
		}
		if p, ok := r.plDepth[id]; ok {
			pos = p
			break
		}
		walked = append(walked, id)
		pe, err := r.event(id)
		if err != nil {
			return 0, err
		}
		if id, err = r.citedPowerLevels(pe); err != nil {
			return 0, err
		}
	}
	for _, w := range walked {
		r.plDepth[w] = pos
	}
	return pos, nil
}

// citedPowerLevels is the m.room.power_levels event among ev's auth
// events, or "".
func (r *resolver) citedPowerLevels(ev *events.Event) (string, error) {
	for _, a := range ev.AuthEvents {
		ae, err := r.event(a)
		if err != nil {
			return "", err
		}
		if ae.Type == typePowerLevels && ae.StateKeyIs("") {
			return a, nil
		}
	}
	return "", nil
}
