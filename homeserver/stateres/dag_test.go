package stateres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// The cast of the test rooms: alice creates them, bob is a moderator at
// 50, carol and zara are ordinary users.
const (
	alice = "@alice:a.test"
	bob   = "@bob:b.test"
	carol = "@carol:c.test"
	zara  = "@zara:z.test"
)

// dag is a room's event graph built by hand. Events carry no hashes or
// signatures: state resolution reads neither.
type dag struct {
	t        testing.TB
	v        events.RoomVersion
	roomID   string
	createID string
	evs      map[string]*events.Event
	rejected map[string]bool
	ts       int64
}

var _ Source = (*dag)(nil)

func (d *dag) Event(_ context.Context, id string) (*events.Event, error) {
	ev, ok := d.evs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMissingEvent, id)
	}
	return ev, nil
}

func (d *dag) Rejected(id string) bool { return d.rejected[id] }

// newDAG is a room of version v: CREATE by alice, IMA (alice joins), IPOWER
// (alice 100, bob 50), IJR (public), IMB, IMC, IMZ (bob, carol and zara
// join). In v12 alice's level is the creators' and is not listed.
func newDAG(t testing.TB, v events.RoomVersion) *dag {
	d := &dag{t: t, v: v, evs: map[string]*events.Event{}, rejected: map[string]bool{}}
	create := `{"room_version":"` + string(v) + `"}`
	if v.CreatorInContent() {
		create = `{"creator":"` + alice + `","room_version":"` + string(v) + `"}`
	}
	d.createID = "$CREATE"
	d.roomID = "!room:a.test"
	if v.RoomIDFromCreateEvent() {
		d.roomID = events.RoomIDForCreateEvent(d.createID)
	}
	d.add("CREATE", typeCreate, alice, "", create)
	d.add("IMA", typeMember, alice, alice, `{"membership":"join"}`, "CREATE")
	d.add("IPOWER", typePowerLevels, alice, "", d.pl(map[string]int{bob: 50}), "CREATE", "IMA")
	d.add("IJR", typeJoinRules, alice, "", `{"join_rule":"public"}`, "CREATE", "IMA", "IPOWER")
	d.add("IMB", typeMember, bob, bob, `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
	d.add("IMC", typeMember, carol, carol, `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
	d.add("IMZ", typeMember, zara, zara, `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
	return d
}

// pl is power levels content giving alice 100 (but not in v12, where she
// is a creator) and the levels in users.
func (d *dag) pl(users map[string]int) string {
	return `{"users":` + d.users(users) + `}`
}

// users is the "users" object of pl.
func (d *dag) users(users map[string]int) string {
	u := map[string]int{}
	if !d.v.RoomIDFromCreateEvent() {
		u[alice] = 100
	}
	for k, l := range users {
		u[k] = l
	}
	b, _ := json.Marshal(u)
	return string(b)
}

// add records an event named "$"+name, sent one millisecond after the
// previous one, citing the named auth events (CREATE is left out in v12,
// where the room ID names it). stateKey "-" makes a message event.
func (d *dag) add(name, typ, sender, stateKey, content string, auth ...string) *events.Event {
	d.t.Helper()
	if !json.Valid([]byte(content)) {
		d.t.Fatalf("%s: content is not JSON", name)
	}
	d.ts++
	ev := &events.Event{
		Version:        d.v,
		ID:             "$" + name,
		RoomID:         d.roomID,
		Sender:         sender,
		Type:           typ,
		Content:        json.RawMessage(content),
		OriginServerTS: d.ts,
	}
	if stateKey != "-" {
		sk := stateKey
		ev.StateKey = &sk
	}
	for _, a := range auth {
		if a == "CREATE" && d.v.RoomIDFromCreateEvent() {
			continue
		}
		if _, ok := d.evs["$"+a]; !ok {
			d.t.Fatalf("%s cites unknown %s", name, a)
		}
		ev.AuthEvents = append(ev.AuthEvents, "$"+a)
	}
	if _, dup := d.evs[ev.ID]; dup {
		d.t.Fatalf("event %s added twice", name)
	}
	d.evs[ev.ID] = ev
	return ev
}

// state is the state made of the named events, later names replacing
// earlier ones with the same tuple.
func (d *dag) state(names ...string) StateSet {
	d.t.Helper()
	s := StateSet{}
	for _, n := range names {
		ev, ok := d.evs["$"+n]
		if !ok {
			d.t.Fatalf("unknown event %s", n)
		}
		s[ev.Tuple()] = ev.ID
	}
	return s
}

// base is the state after newDAG's events.
var base = []string{"CREATE", "IMA", "IPOWER", "IJR", "IMB", "IMC", "IMZ"}

func with(names ...string) []string { return append(append([]string(nil), base...), names...) }

// describe prints a state as sorted "type|key=name" lines for diffs.
func describe(s StateSet) string {
	lines := make([]string, 0, len(s))
	for k, id := range s {
		lines = append(lines, fmt.Sprintf("%s|%s=%s", k.Type, k.StateKey, strings.TrimPrefix(id, "$")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
