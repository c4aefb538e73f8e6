package ldap

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store"
)

func set(us ...string) map[string]bool {
	m := map[string]bool{}
	for _, u := range us {
		m[u] = true
	}
	return m
}

func TestDecide(t *testing.T) {
	const bot, room, g = "@bot:s", "!r:s", "cn=g"
	managed := func(us ...string) map[string]store.LDAPMembership {
		m := map[string]store.LDAPMembership{}
		for _, u := range us {
			m[u] = store.LDAPMembership{RoomID: room, UserID: u, Group: g}
		}
		return m
	}
	accounts := set("@has:s", "@joined:s", "@invited:s")
	hasAccount := func(u string) bool { return accounts[u] }
	inv := func(u string) Change { return Change{ActionInvite, "#r", room, u, g, "member of LDAP group " + g} }
	join := func(u string) Change { return Change{ActionJoin, "#r", room, u, g, "member of LDAP group " + g} }
	kick := func(u, why string) Change { return Change{ActionKick, "#r", room, u, g, why + " LDAP group " + g} }
	unlink := func(u string) Change {
		return Change{ActionUnlink, "#r", room, u, g, "no longer a member of LDAP group " + g}
	}
	for _, tc := range []struct {
		name    string
		group   GroupConfig
		desired []string
		st      roomState
		only    string
		want    []Change
	}{
		{"invites members not in the room, also without an account", GroupConfig{DN: g},
			[]string{"@has:s", "@new:s", "@joined:s", bot},
			roomState{joined: set("@joined:s", bot)}, "",
			[]Change{inv("@has:s"), inv("@new:s")}},
		{"join mode joins those with an account, invites the others", GroupConfig{DN: g, Mode: "join"},
			[]string{"@has:s", "@new:s", "@invited:s"},
			roomState{invited: set("@invited:s")}, "",
			[]Change{join("@has:s"), join("@invited:s"), inv("@new:s")}},
		{"not again after declining or leaving", GroupConfig{DN: g},
			[]string{"@has:s"}, roomState{managed: managed("@has:s")}, "", nil},
		{"banned members are left banned", GroupConfig{DN: g},
			[]string{"@has:s"}, roomState{banned: set("@has:s")}, "", nil},
		{"leavers removed with remove_leavers", GroupConfig{DN: g, RemoveLeavers: true},
			nil, roomState{joined: set("@joined:s", "@hand:s"), invited: set("@invited:s"), managed: managed("@joined:s", "@invited:s", "@gone:s")}, "",
			[]Change{unlink("@gone:s"), kick("@invited:s", "no longer a member of"), kick("@joined:s", "no longer a member of")}},
		{"leavers only forgotten without remove_leavers", GroupConfig{DN: g},
			nil, roomState{joined: set("@joined:s"), managed: managed("@joined:s")}, "",
			[]Change{unlink("@joined:s")}},
		{"hand-added members stay", GroupConfig{DN: g, RemoveLeavers: true},
			nil, roomState{joined: set("@hand:s", bot)}, "", nil},
		{"hand-added members removed with remove_hand_added, never the sync account", GroupConfig{DN: g, RemoveHandAdded: true},
			[]string{"@joined:s"}, roomState{joined: set("@hand:s", "@joined:s", bot)}, "",
			[]Change{kick("@hand:s", "not a member of")}},
		{"a sign-in sync touches only that user", GroupConfig{DN: g, RemoveLeavers: true, RemoveHandAdded: true},
			[]string{"@has:s", "@new:s"}, roomState{joined: set("@hand:s", "@joined:s"), managed: managed("@joined:s")}, "@has:s",
			[]Change{inv("@has:s")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Groups: []GroupConfig{tc.group}}
			cfg.Groups[0].Rooms = []string{"#r"}
			cfg.fill()
			desired := map[string]int{}
			for _, u := range tc.desired {
				desired[u] = 0
			}
			for _, m := range []*map[string]bool{&tc.st.joined, &tc.st.invited, &tc.st.banned} {
				if *m == nil {
					*m = map[string]bool{}
				}
			}
			if tc.st.managed == nil {
				tc.st.managed = map[string]store.LDAPMembership{}
			}
			got := decide(roomTarget{room: "#r", groups: []int{0}}, room, cfg.Groups, desired, tc.st, bot, tc.only, hasAccount)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestPacerBatches: a batch of n changes takes n changes' time from the
// pace, so batching does not raise changes_per_second.
func TestPacerBatches(t *testing.T) {
	p := pacer{every: 20 * time.Millisecond}
	ctx := context.Background()
	start := time.Now()
	for _, n := range []int{5, 5, 1} { // 10 changes' time before the last
		if err := p.wait(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("5+5+1 changes at 50/s passed in %v", took)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.wait(cancelled, 1); err == nil {
		t.Fatal("a cancelled wait returned nil")
	}
}
