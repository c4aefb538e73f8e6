package stateres

import (
	"context"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

const dave = "@dave:d.test"

// resolveCase is a fork of newDAG's room: build adds the branches' events,
// states names each branch's state, want the resolved holder of some
// tuples by event name ("" for "absent").
type resolveCase struct {
	name   string
	build  func(d *dag)
	states [][]string
	want   map[events.StateTuple]string
}

func tuple(typ, key string) events.StateTuple { return events.StateTuple{Type: typ, StateKey: key} }

var (
	plTuple    = tuple(typePowerLevels, "")
	jrTuple    = tuple(typeJoinRules, "")
	topicTuple = tuple("m.room.topic", "")
)

var resolveCases = []resolveCase{
	{
		// bob (50) raises carol while alice (100) bans him. The ban sorts
		// first although it was sent later (power before clock), so bob's
		// change meets a banned sender and is dropped.
		name: "ban vs concurrent power levels change",
		build: func(d *dag) {
			d.add("PB", typePowerLevels, bob, "", d.pl(map[string]int{bob: 50, carol: 50}), "CREATE", "IPOWER", "IMB")
			d.add("MB", typeMember, alice, bob, `{"membership":"ban"}`, "CREATE", "IPOWER", "IMA", "IMB")
		},
		states: [][]string{with("MB"), with("PB")},
		want:   map[events.StateTuple]string{tuple(typeMember, bob): "MB", plTuple: "IPOWER"},
	},
	{
		name: "topic race under the same power levels: later origin_server_ts wins",
		build: func(d *dag) {
			d.add("T1", "m.room.topic", alice, "", `{"topic":"one"}`, "CREATE", "IPOWER", "IMA")
			d.add("T2", "m.room.topic", bob, "", `{"topic":"two"}`, "CREATE", "IPOWER", "IMB")
		},
		states: [][]string{with("T1"), with("T2")},
		want:   map[events.StateTuple]string{topicTuple: "T2"},
	},
	{
		// T1 was sent first but under newer power levels: the mainline
		// puts it after T2, which rests on the older IPOWER.
		name: "topic race decided by the mainline, not the clock",
		build: func(d *dag) {
			d.add("PA2", typePowerLevels, alice, "", d.pl(map[string]int{bob: 50, carol: 10}), "CREATE", "IPOWER", "IMA")
			d.add("T1", "m.room.topic", bob, "", `{"topic":"after new levels"}`, "CREATE", "PA2", "IMB")
			d.add("T2", "m.room.topic", bob, "", `{"topic":"under old levels"}`, "CREATE", "IPOWER", "IMB")
		},
		states: [][]string{with("PA2", "T1"), with("T2")},
		want:   map[events.StateTuple]string{plTuple: "PA2", topicTuple: "T1"},
	},
	{
		// dave joins a public room while alice makes it invite-only. The
		// join rules change is a power event and is applied first; dave's
		// join is then checked against "invite" and refused.
		name: "join rules changed concurrently with a join",
		build: func(d *dag) {
			d.add("MD", typeMember, dave, dave, `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
			d.add("JR2", typeJoinRules, alice, "", `{"join_rule":"invite"}`, "CREATE", "IPOWER", "IMA")
		},
		states: [][]string{with("JR2"), with("MD")},
		want:   map[events.StateTuple]string{jrTuple: "JR2", tuple(typeMember, dave): ""},
	},
	{
		// alice demotes bob while bob promotes carol and sets the topic.
		// alice's change sorts first; bob, now at 0, can do neither.
		name: "power levels demotion race",
		build: func(d *dag) {
			d.add("PD", typePowerLevels, alice, "", d.pl(map[string]int{bob: 0}), "CREATE", "IPOWER", "IMA")
			d.add("PC", typePowerLevels, bob, "", d.pl(map[string]int{bob: 50, carol: 50}), "CREATE", "IPOWER", "IMB")
			d.add("TB", "m.room.topic", bob, "", `{"topic":"bob's"}`, "CREATE", "PC", "IMB")
		},
		states: [][]string{with("PD"), with("PC", "TB")},
		want:   map[events.StateTuple]string{plTuple: "PD", topicTuple: ""},
	},
	{
		// Both states hold U for bob's membership, but bob's power levels
		// change PB in one of them cites his earlier O, a sibling of U.
		// O is in the auth difference, so the iterative checks apply it
		// over U; step 5 puts the unconflicted U back.
		name: "unconflicted state is applied last",
		build: func(d *dag) {
			d.add("O", typeMember, bob, bob, `{"membership":"join","displayname":"old"}`, "CREATE", "IPOWER", "IJR", "IMB")
			d.add("U", typeMember, bob, bob, `{"membership":"join","displayname":"new"}`, "CREATE", "IPOWER", "IJR", "IMB")
			d.add("PB", typePowerLevels, bob, "", d.pl(map[string]int{bob: 50, carol: 10}), "CREATE", "IPOWER", "O")
		},
		states: [][]string{with("PB", "U"), with("U")},
		want:   map[events.StateTuple]string{plTuple: "PB", tuple(typeMember, bob): "U"},
	},
	{
		// carol leaves in one branch, zara is kicked by bob in another,
		// and alice changes the topic in a third: no two touch the same
		// tuple's rules, so all three hold.
		name: "three branches without interference",
		build: func(d *dag) {
			d.add("LC", typeMember, carol, carol, `{"membership":"leave"}`, "CREATE", "IPOWER", "IMC")
			d.add("KZ", typeMember, bob, zara, `{"membership":"leave"}`, "CREATE", "IPOWER", "IMB", "IMZ")
			d.add("TA", "m.room.topic", alice, "", `{"topic":"a"}`, "CREATE", "IPOWER", "IMA")
		},
		states: [][]string{with("LC"), with("KZ"), with("TA")},
		want: map[events.StateTuple]string{
			tuple(typeMember, carol): "LC", tuple(typeMember, zara): "KZ", topicTuple: "TA",
		},
	},
	{
		// In one branch alice raised carol (PX) and carol then relaxed the
		// topic level (PY). PX is in no state, only in PY's auth chain: the
		// auth difference brings it in, it is applied before PY, and carol's
		// change holds. Without it PY would meet IPOWER, where carol is 0.
		name: "power levels change hidden in the auth difference",
		build: func(d *dag) {
			d.add("PX", typePowerLevels, alice, "", d.pl(map[string]int{bob: 50, carol: 50}), "CREATE", "IPOWER", "IMA")
			d.add("PY", typePowerLevels, carol, "", `{"users":`+d.users(map[string]int{bob: 50, carol: 50})+`,"events":{"m.room.topic":0}}`, "CREATE", "PX", "IMC")
			d.add("TB", "m.room.topic", bob, "", `{"topic":"b"}`, "CREATE", "IPOWER", "IMB")
		},
		states: [][]string{with("PY"), with("TB")},
		want:   map[events.StateTuple]string{plTuple: "PY", topicTuple: "TB"},
	},
	{
		// bob kicks zara while alice demotes bob below the kick level: the
		// demotion (power 100) goes first and the kick fails.
		name: "kick vs concurrent demotion of the kicker",
		build: func(d *dag) {
			d.add("KZ", typeMember, bob, zara, `{"membership":"leave"}`, "CREATE", "IPOWER", "IMB", "IMZ")
			d.add("PD", typePowerLevels, alice, "", d.pl(map[string]int{bob: 10}), "CREATE", "IPOWER", "IMA")
		},
		states: [][]string{with("KZ"), with("PD")},
		want:   map[events.StateTuple]string{plTuple: "PD", tuple(typeMember, zara): "IMZ"},
	},
}

// versionsUnderTest are a v2 room version before the integer-only levels,
// two after, and v12 with state resolution v2.1.
var versionsUnderTest = []events.RoomVersion{events.RoomV6, events.RoomV10, events.RoomV11, events.RoomV12}

func TestResolve(t *testing.T) {
	for _, v := range versionsUnderTest {
		for _, tc := range resolveCases {
			t.Run("v"+string(v)+"/"+tc.name, func(t *testing.T) {
				d := newDAG(t, v)
				tc.build(d)
				states := make([]StateSet, len(tc.states))
				for i, names := range tc.states {
					states[i] = d.state(names...)
				}
				got := mustResolve(t, d, states)
				for k, name := range tc.want {
					id, ok := got[k]
					if name == "" {
						if ok {
							t.Errorf("%s|%s = %s, want absent", k.Type, k.StateKey, id)
						}
						continue
					}
					if id != "$"+name {
						t.Errorf("%s|%s = %q, want $%s", k.Type, k.StateKey, id, name)
					}
				}
				if t.Failed() {
					t.Logf("resolved state:\n%s", describe(got))
				}
				// Determinism: every order of the states gives the same result.
				for _, perm := range permutations(len(states)) {
					p := make([]StateSet, len(states))
					for i, j := range perm {
						p[i] = states[j]
					}
					if again := mustResolve(t, d, p); describe(again) != describe(got) {
						t.Fatalf("states in order %v resolve to\n%s\nnot\n%s", perm, describe(again), describe(got))
					}
				}
			})
		}
	}
}

func mustResolve(t *testing.T, d *dag, states []StateSet) StateSet {
	t.Helper()
	got, err := Resolve(context.Background(), d.v, states, d, Options{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return got
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int(nil), p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}
