package stateres

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

// TestResolveRandomForks builds random forks of newDAG's room — three
// branches of power levels changes, kicks, bans, joins, leaves and topics,
// each event citing the auth events its branch's state selects — and
// checks that every order of the branches' states resolves the same, and
// that each resolved tuple names an event of some input state or of the
// auth difference.
func TestResolveRandomForks(t *testing.T) {
	users := []string{alice, bob, carol, zara, dave}
	for _, v := range []events.RoomVersion{events.RoomV10, events.RoomV12} {
		for seed := int64(1); seed <= 40; seed++ {
			t.Run(fmt.Sprintf("v%s/seed%d", v, seed), func(t *testing.T) {
				rng := rand.New(rand.NewSource(seed))
				d := newDAG(t, v)
				var states []StateSet
				for b := 0; b < 3; b++ {
					st := d.state(base...)
					for i := 0; i < 2+rng.Intn(5); i++ {
						d.addAuto(fmt.Sprintf("B%dE%d", b, i), rng, users, st)
					}
					states = append(states, st)
				}
				want := mustResolve(t, d, states)
				for _, perm := range permutations(len(states)) {
					p := make([]StateSet, len(states))
					for i, j := range perm {
						p[i] = states[j]
					}
					if got := mustResolve(t, d, p); describe(got) != describe(want) {
						t.Fatalf("order %v:\n%s\nwant\n%s", perm, describe(got), describe(want))
					}
				}
				for k, id := range want {
					if _, ok := d.evs[id]; !ok || d.evs[id].Tuple() != k {
						t.Fatalf("%s|%s resolved to %s, which is not an event for that tuple", k.Type, k.StateKey, id)
					}
				}
			})
		}
	}
}

// addAuto adds a random state event to the branch whose state is st,
// citing what the auth events selection picks from st, and applies it to
// st if the rules allow it there (a branch is a valid history).
func (d *dag) addAuto(name string, rng *rand.Rand, users []string, st StateSet) {
	d.t.Helper()
	sender := users[rng.Intn(len(users))]
	target := users[rng.Intn(len(users))]
	var typ, key, content string
	switch rng.Intn(6) {
	case 0:
		typ, key = typePowerLevels, ""
		content = d.pl(map[string]int{bob: []int{0, 50}[rng.Intn(2)], carol: []int{0, 10, 50}[rng.Intn(3)]})
	case 1:
		typ, key, content = "m.room.topic", "", fmt.Sprintf(`{"topic":%q}`, name)
	case 2:
		typ, key = typeJoinRules, ""
		content = []string{`{"join_rule":"public"}`, `{"join_rule":"invite"}`}[rng.Intn(2)]
	case 3:
		typ, key, content = typeMember, sender, `{"membership":"join"}`
	case 4:
		typ, key, content = typeMember, target, `{"membership":"leave"}`
	default:
		typ, key, content = typeMember, target, `{"membership":"ban"}`
	}
	sk := key
	var auth []string
	for _, tp := range authrules.AuthEventTuples(d.v, typ, &sk, sender, []byte(content)) {
		if id, ok := st[tp]; ok {
			auth = append(auth, strings.TrimPrefix(id, "$"))
		}
	}
	ev := d.add(name, typ, sender, key, content, auth...)
	as := authrules.StateMap{}
	for k, id := range st {
		as[k] = d.evs[id]
	}
	if authrules.Allowed(ev, as) == nil {
		st[ev.Tuple()] = ev.ID
	}
}
