package stateres

import (
	"context"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// BenchmarkResolve1000Members resolves two branches of a room of 1,000
// joined members: in one alice demotes bob and bans a member, in the other
// bob kicks a member, 20 users join and the topic changes. The resolver
// starts cold each time, as it does per Resolve call.
func BenchmarkResolve1000Members(b *testing.B) {
	for _, v := range []events.RoomVersion{events.RoomV11, events.RoomV12} {
		b.Run("v"+string(v), func(b *testing.B) {
			d, states := bigFork(b, v, 1000)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got, err := Resolve(ctx, v, states, d, Options{})
				if err != nil {
					b.Fatal(err)
				}
				// alice's demotion goes first, so bob's kick and topic fail.
				if got[plTuple] != "$PD" || got[tuple(typeMember, "@m5:m.test")] != "$BAN" ||
					got[tuple(typeMember, "@m7:m.test")] != "$M7" || got[topicTuple] != "" || len(got) != len(base)+1000+20 {
					b.Fatalf("unexpected resolution:\n%s", describe(got))
				}
			}
		})
	}
}

func bigFork(b *testing.B, v events.RoomVersion, members int) (*dag, []StateSet) {
	d := newDAG(b, v)
	names := append([]string(nil), base...)
	member := func(i int) string { return fmt.Sprintf("@m%d:m.test", i) }
	for i := 0; i < members; i++ {
		n := fmt.Sprintf("M%d", i)
		d.add(n, typeMember, member(i), member(i), `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
		names = append(names, n)
	}
	d.add("PD", typePowerLevels, alice, "", d.pl(map[string]int{bob: 0}), "CREATE", "IPOWER", "IMA")
	d.add("BAN", typeMember, alice, member(5), `{"membership":"ban"}`, "CREATE", "PD", "IMA", "M5")
	one := append(append([]string(nil), names...), "PD", "BAN")

	d.add("KICK", typeMember, bob, member(7), `{"membership":"leave"}`, "CREATE", "IPOWER", "IMB", "M7")
	two := append(append([]string(nil), names...), "KICK")
	for i := 0; i < 20; i++ {
		n := fmt.Sprintf("N%d", i)
		u := fmt.Sprintf("@n%d:n.test", i)
		d.add(n, typeMember, u, u, `{"membership":"join"}`, "CREATE", "IJR", "IPOWER")
		two = append(two, n)
	}
	d.add("TOPIC", "m.room.topic", bob, "", `{"topic":"bob's"}`, "CREATE", "IPOWER", "IMB")
	two = append(two, "TOPIC")
	return d, []StateSet{d.state(one...), d.state(two...)}
}
