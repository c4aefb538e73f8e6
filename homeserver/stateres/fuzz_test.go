package stateres

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// FuzzResolve builds forks like TestResolveRandomForks, then lets a hostile
// server slip events into the states without the rules' consent: junk
// content, power levels that do not parse, auth events picked at random
// (never a cycle: only earlier events). Resolution must not fail or panic,
// must be the same for every order of the states, and must name only
// events of the right tuple.
func FuzzResolve(f *testing.F) {
	for seed := int64(0); seed < 8; seed++ {
		f.Add(seed, uint8(seed*3))
	}
	f.Fuzz(func(t *testing.T, seed int64, hostile uint8) {
		rng := rand.New(rand.NewSource(seed))
		v := []events.RoomVersion{events.RoomV6, events.RoomV11, events.RoomV12}[rng.Intn(3)]
		d := newDAG(t, v)
		users := []string{alice, bob, carol, zara, dave}
		var states []StateSet
		for b := 0; b < 2+rng.Intn(2); b++ {
			st := d.state(base...)
			for i := 0; i < 1+rng.Intn(4); i++ {
				d.addAuto(fmt.Sprintf("B%dE%d", b, i), rng, users, st)
			}
			states = append(states, st)
		}
		junk := []string{`{}`, `{"membership":5}`, `{"users":"x"}`, `{"users":{"@bob:b.test":"high"}}`,
			`{"join_rule":["public"]}`, `{"membership":"ban"}`, `{"membership":"join"}`}
		types := []string{typePowerLevels, typeJoinRules, typeMember, "m.room.topic", typeCreate}
		for i := 0; i < int(hostile%8); i++ {
			known := make([]string, 0, len(d.evs))
			for id := range d.evs {
				known = append(known, id[1:])
			}
			slices.Sort(known)
			var auth []string
			for j := 0; j < rng.Intn(4); j++ {
				auth = append(auth, known[rng.Intn(len(known))])
			}
			typ := types[rng.Intn(len(types))]
			key := ""
			if typ == typeMember {
				key = users[rng.Intn(len(users))]
			}
			ev := d.add(fmt.Sprintf("H%d", i), typ, users[rng.Intn(len(users))], key, junk[rng.Intn(len(junk))], slices.Compact(auth)...)
			states[rng.Intn(len(states))][ev.Tuple()] = ev.ID
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
			if ev, ok := d.evs[id]; !ok || ev.Tuple() != k {
				t.Fatalf("%s|%s resolved to %s", k.Type, k.StateKey, id)
			}
		}
	})
}
