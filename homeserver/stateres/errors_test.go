package stateres

import (
	"context"
	"errors"
	"testing"

	"github.com/salonhq/salon/homeserver/authrules"
	"github.com/salonhq/salon/homeserver/events"
)

func TestResolveTrivial(t *testing.T) {
	d := newDAG(t, events.RoomV10)
	s := d.state(base...)
	for name, states := range map[string][]StateSet{
		"one state":        {s},
		"identical states": {s, d.state(base...), d.state(base...)},
	} {
		t.Run(name, func(t *testing.T) {
			got := mustResolve(t, d, states)
			if describe(got) != describe(s) {
				t.Fatalf("got\n%s\nwant\n%s", describe(got), describe(s))
			}
		})
	}
	if got := mustResolve(t, d, nil); len(got) != 0 {
		t.Fatalf("no states resolve to %v, want empty", got)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Run("missing event", func(t *testing.T) {
		d := newDAG(t, events.RoomV10)
		d.add("T1", "m.room.topic", alice, "", `{"topic":"x"}`, "CREATE", "IPOWER", "IMA")
		other := d.state(base...)
		other[topicTuple] = "$NOWHERE"
		_, err := Resolve(context.Background(), d.v, []StateSet{d.state(with("T1")...), other}, d, Options{})
		if !errors.Is(err, ErrMissingEvent) {
			t.Fatalf("Resolve: %v, want ErrMissingEvent", err)
		}
	})
	t.Run("missing auth event", func(t *testing.T) {
		d := newDAG(t, events.RoomV10)
		d.add("T1", "m.room.topic", alice, "", `{"topic":"x"}`, "CREATE", "IPOWER", "IMA")
		d.evs["$T1"].AuthEvents = append(d.evs["$T1"].AuthEvents, "$GONE")
		_, err := Resolve(context.Background(), d.v, []StateSet{d.state(with("T1")...), d.state(base...)}, d, Options{})
		if !errors.Is(err, ErrMissingEvent) {
			t.Fatalf("Resolve: %v, want ErrMissingEvent", err)
		}
	})
	t.Run("room version 1", func(t *testing.T) {
		d := newDAG(t, events.RoomV1)
		_, err := Resolve(context.Background(), d.v, []StateSet{d.state(base...), d.state(base...)}, d, Options{})
		if !errors.Is(err, ErrUnsupportedRoomVersion) {
			t.Fatalf("Resolve: %v, want ErrUnsupportedRoomVersion", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		d := newDAG(t, events.RoomV10)
		d.add("T1", "m.room.topic", alice, "", `{"topic":"x"}`, "CREATE", "IPOWER", "IMA")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Resolve(ctx, d.v, []StateSet{d.state(with("T1")...), d.state(base...)}, d, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Resolve: %v, want context.Canceled", err)
		}
	})
}

// TestRejectedAuthEventsAreNotUsed marks alice's join rejected (as if it
// had failed its checks on receipt). v2.1 starts the power events' checks
// from an empty state, so alice's demotion of bob must find her membership
// in its auth events, where the rejected one does not count: the demotion
// fails and bob's own change stands. v2 starts from the unconflicted state,
// which holds alice's join, and the demotion wins as usual.
func TestRejectedAuthEventsAreNotUsed(t *testing.T) {
	for v, want := range map[events.RoomVersion]string{events.RoomV10: "$PD", events.RoomV12: "$PC"} {
		t.Run("v"+string(v), func(t *testing.T) {
			d := newDAG(t, v)
			d.add("PD", typePowerLevels, alice, "", d.pl(map[string]int{bob: 0}), "CREATE", "IPOWER", "IMA")
			d.add("PC", typePowerLevels, bob, "", d.pl(map[string]int{bob: 50, carol: 50}), "CREATE", "IPOWER", "IMB")
			d.rejected["$IMA"] = true
			got := mustResolve(t, d, []StateSet{d.state(with("PD")...), d.state(with("PC")...)})
			if got[plTuple] != want {
				t.Fatalf("power levels = %s, want %s\n%s", got[plTuple], want, describe(got))
			}
		})
	}
}

// TestAuthorizerOption checks that the caller's Authorizer is the one
// consulted: refusing everything leaves only the unconflicted state.
func TestAuthorizerOption(t *testing.T) {
	d := newDAG(t, events.RoomV10)
	d.add("T1", "m.room.topic", alice, "", `{"topic":"one"}`, "CREATE", "IPOWER", "IMA")
	d.add("T2", "m.room.topic", bob, "", `{"topic":"two"}`, "CREATE", "IPOWER", "IMB")
	calls := 0
	deny := func(*events.Event, authrules.AuthState) error { calls++; return errors.New("no") }
	got, err := Resolve(context.Background(), d.v, []StateSet{d.state(with("T1")...), d.state(with("T2")...)}, d, Options{Auth: deny})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[topicTuple]; ok || calls != 2 {
		t.Fatalf("topic %q after %d calls; want none after 2", got[topicTuple], calls)
	}
}

// TestConflictedStateSubgraph is the state reset v2.1 (MSC4297) repairs.
// alice raised carol (PX) and carol relaxed the topic level (PY); the
// other state has IPOWER again, yet carol's topic TC in it cites PX: PX
// is in both auth chains, so not in the auth difference. v2 never looks at
// PX, checks PY against IPOWER, where carol is 0, and resets the power
// levels to IPOWER. In v2.1 PX lies on the path from the conflicted PY to
// the conflicted IPOWER, joins the full conflicted set, and PY stands.
func TestConflictedStateSubgraph(t *testing.T) {
	for v, want := range map[events.RoomVersion][2]string{
		events.RoomV10: {"$IPOWER", ""},
		events.RoomV12: {"$PY", "$TC"},
	} {
		t.Run("v"+string(v), func(t *testing.T) {
			d := newDAG(t, v)
			d.add("PX", typePowerLevels, alice, "", d.pl(map[string]int{bob: 50, carol: 50}), "CREATE", "IPOWER", "IMA")
			d.add("PY", typePowerLevels, carol, "", `{"users":`+d.users(map[string]int{bob: 50, carol: 50})+`,"events":{"m.room.topic":0}}`, "CREATE", "PX", "IMC")
			d.add("TC", "m.room.topic", carol, "", `{"topic":"c"}`, "CREATE", "PX", "IMC")
			got := mustResolve(t, d, []StateSet{d.state(with("PY")...), d.state(with("TC")...)})
			if got[plTuple] != want[0] || got[topicTuple] != want[1] {
				t.Fatalf("power levels %q, topic %q; want %q, %q\n%s", got[plTuple], got[topicTuple], want[0], want[1], describe(got))
			}
		})
	}
}

// TestAuthCycle feeds a DAG that is not one: two power levels events
// citing each other, which no honest server can make (the citations carry
// hashes). Resolution must end, and the same way for either order.
func TestAuthCycle(t *testing.T) {
	d := newDAG(t, events.RoomV10)
	a := d.add("PA", typePowerLevels, alice, "", d.pl(map[string]int{bob: 10}), "CREATE", "IPOWER", "IMA")
	d.add("PB", typePowerLevels, alice, "", d.pl(map[string]int{bob: 20}), "CREATE", "PA", "IMA")
	a.AuthEvents = []string{"$CREATE", "$PB", "$IMA"}
	s1, s2 := d.state(with("PA")...), d.state(with("PB")...)
	got := mustResolve(t, d, []StateSet{s1, s2})
	again := mustResolve(t, d, []StateSet{s2, s1})
	if describe(got) != describe(again) {
		t.Fatalf("orders disagree:\n%s\n---\n%s", describe(got), describe(again))
	}
	t.Logf("power levels: %s", got[plTuple])
}
