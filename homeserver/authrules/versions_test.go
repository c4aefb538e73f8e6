package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// since reports whether v is at least version n (all hosted versions are
// integers).
func since(v events.RoomVersion, n int) bool {
	var got int
	_, _ = fmt.Sscan(string(v), &got)
	return got >= n
}

// TestJoinRulesPerVersion covers the join rules and memberships that
// versions introduced: knocking (v7), restricted (v8), knock_restricted
// (v10). Before its version a rule admits nobody and knocking is an
// unknown membership.
func TestJoinRulesPerVersion(t *testing.T) {
	table := []struct {
		name  string
		from  int // first version that allows it
		setup func(f *fixture) *events.Event
	}{
		{"knock_on_knock_room", 7, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleKnock)
			return f.member(bob, bob, MembershipKnock)
		}},
		{"invited_joins_knock_room", 7, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleKnock)
			f.set(f.member(alice, bob, MembershipInvite))
			return f.member(bob, bob, MembershipJoin)
		}},
		{"knocker_withdraws", 7, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleKnock)
			f.setMembership(bob, MembershipKnock)
			return f.member(bob, bob, MembershipLeave)
		}},
		{"authorised_restricted_join", 8, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleRestricted)
			return f.ev(typeMember, bob, sk(bob), `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`)
		}},
		{"invited_joins_restricted_room", 8, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleRestricted)
			f.set(f.member(alice, bob, MembershipInvite))
			return f.member(bob, bob, MembershipJoin)
		}},
		{"knock_on_knock_restricted_room", 10, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleKnockRestricted)
			return f.member(bob, bob, MembershipKnock)
		}},
		{"authorised_knock_restricted_join", 10, func(f *fixture) *events.Event {
			f.setJoinRule(JoinRuleKnockRestricted)
			return f.ev(typeMember, bob, sk(bob), `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`)
		}},
	}
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				check(t, tc.setup(f), f.st, since(v, tc.from))
			})
		}
	}
	// Before v8 join_authorised_via_users_server means nothing: a bad
	// value does not refuse a public join, and the auth events do not cite
	// the user it names.
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s/authoriser_key_before_v8", v), func(t *testing.T) {
			f := newRoom(t, v)
			f.setJoinRule(JoinRulePublic)
			check(t, f.ev(typeMember, bob, sk(bob), `{"membership":"join","join_authorised_via_users_server":"nobody"}`), f.st, !since(v, 8))
			got := AuthEventTuples(v, typeMember, sk(bob), bob, json.RawMessage(`{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`))
			cites := slices.Contains(got, events.StateTuple{Type: typeMember, StateKey: alice})
			if cites != since(v, 8) {
				t.Errorf("auth events %v cite the authoriser: %v", got, cites)
			}
		})
	}
}

// TestStringyPowerLevels: versions 6 to 9 read power levels written as
// strings (fragments/v1-stringy-power-levels.md); v10 refuses them.
func TestStringyPowerLevels(t *testing.T) {
	for _, v := range versions {
		stringy := !since(v, 10)
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			pl, err := ParsePowerLevels(v, json.RawMessage(`{"ban":"50","kick":" +0075 ","invite":"-1","users":{"@bob:b.test":"100"},"events":{"m.room.name":"000"}}`))
			if stringy != (err == nil) {
				t.Fatalf("ParsePowerLevels: %v (strings allowed: %v)", err, stringy)
			}
			if stringy {
				if pl.Ban() != 50 || pl.Kick() != 75 || pl.Invite() != -1 || pl.UserLevel(bob) != 100 || pl.EventLevel("m.room.name", true) != 0 {
					t.Errorf("levels read as %d %d %d %d %d", pl.Ban(), pl.Kick(), pl.Invite(), pl.UserLevel(bob), pl.EventLevel("m.room.name", true))
				}
			}
			for _, bad := range []string{`{"ban":"5 0"}`, `{"ban":"1e2"}`, `{"ban":"--1"}`, `{"ban":""}`, `{"ban":"9007199254740992"}`,
				`{"ban":true}`, `{"users":{"@bob:b.test":"x"}}`, `{"users":{"bob":"1"}}`} {
				if _, err := ParsePowerLevels(v, json.RawMessage(bad)); !errors.Is(err, ErrInvalidPowerLevels) {
					t.Errorf("ParsePowerLevels(%s): %v, want ErrInvalidPowerLevels", bad, err)
				}
			}
			// In the rules: a stringy level is compared as its integer.
			f := newRoom(t, v)
			ev := f.ev(typePowerLevels, mod, sk(""), `{"users":{"@mod:b.test":"50","@mod2:b.test":50,"@bob:b.test":"40"}}`)
			if !HasPrivilegedCreators(v) {
				ev.Content = json.RawMessage(`{"users":{"@alice:a.test":100,"@mod:b.test":"50","@mod2:b.test":50,"@bob:b.test":"40"}}`)
			}
			f.setPL(`{"users":{"@mod:b.test":50,"@mod2:b.test":50},"events":{"m.room.power_levels":50}}`)
			if !HasPrivilegedCreators(v) {
				f.setPL(`{"users":{"@alice:a.test":100,"@mod:b.test":50,"@mod2:b.test":50},"events":{"m.room.power_levels":50}}`)
			}
			check(t, ev, f.st, stringy)
		})
	}
}

// TestCreatorField: up to v10 m.room.create must name content.creator, and
// that user is the creator; from v11 the sender is.
func TestCreatorField(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			ev := &events.Event{Version: v, ID: "$c", RoomID: roomID, Sender: alice, Type: typeCreate, StateKey: sk(""),
				Content: json.RawMessage(fmt.Sprintf(`{"room_version":%q}`, v))}
			if HasPrivilegedCreators(v) {
				ev.RoomID = events.RoomIDForCreateEvent(ev.ID)
			}
			check(t, ev, StateMap{}, !v.CreatorInContent())
			ev.Content = json.RawMessage(fmt.Sprintf(`{"room_version":%q,"creator":"@bob:b.test"}`, v))
			check(t, ev, StateMap{}, true)
			want := alice
			if v.CreatorInContent() {
				want = bob
			}
			if got := Creators(v, ev); !slices.Equal(got, []string{want}) {
				t.Errorf("Creators = %v, want [%s]", got, want)
			}
		})
	}
}

// v12Room is a v12 room created by alice with carol as an additional
// creator; mod and mod2 are at 100 (admins), pleb at 0.
func v12Room(t *testing.T) *fixture {
	f := &fixture{t: t, v: events.RoomV12, st: StateMap{}}
	f.create = f.ev(typeCreate, alice, sk(""), `{"room_version":"12","additional_creators":["@carol:c.test"]}`)
	f.create.PrevEvents = nil
	f.roomID = events.RoomIDForCreateEvent(f.create.ID)
	f.create.RoomID = f.roomID
	f.set(f.create)
	f.join(alice)
	f.setPL(`{"users":{"@mod:b.test":100,"@mod2:b.test":100}}`)
	f.setJoinRule(JoinRulePublic)
	f.join(carol)
	f.join(mod)
	f.join(mod2)
	f.join(pleb)
	return f
}

// TestV12Creators follows MSC4289: the creators have infinite power, are
// not listed in power levels, and cannot be demoted, kicked or banned.
func TestV12Creators(t *testing.T) {
	t.Run("levels", func(t *testing.T) {
		f := v12Room(t)
		pl, err := CurrentPowerLevels(f.v, f.st)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{alice, carol} {
			if pl.UserLevel(u) != InfiniteLevel || !pl.IsCreator(u) {
				t.Errorf("%s has level %d", u, pl.UserLevel(u))
			}
		}
		if pl.UserLevel(mod) != 100 || pl.IsCreator(mod) {
			t.Errorf("mod has level %d", pl.UserLevel(mod))
		}
		if got := Creators(f.v, f.create); !slices.Equal(got, []string{alice, carol}) {
			t.Errorf("Creators = %v", got)
		}
		// Without a power levels event too.
		delete(f.st, events.StateTuple{Type: typePowerLevels})
		pl, _ = CurrentPowerLevels(f.v, f.st)
		if pl.UserLevel(carol) != InfiniteLevel || pl.UserLevel(mod) != 0 {
			t.Errorf("without power levels: carol %d, mod %d", pl.UserLevel(carol), pl.UserLevel(mod))
		}
	})
	table := []struct {
		name string
		ev   func(f *fixture) *events.Event
		want bool
	}{
		{"creator_in_users_refused", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, alice, sk(""), `{"users":{"@alice:a.test":100,"@mod:b.test":100}}`)
		}, false},
		{"additional_creator_in_users_refused", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, alice, sk(""), `{"users":{"@carol:c.test":50,"@mod:b.test":100}}`)
		}, false},
		{"admin_cannot_demote_creator", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, mod, sk(""), `{"users":{"@alice:a.test":0,"@mod:b.test":100,"@mod2:b.test":100}}`)
		}, false},
		{"creator_demotes_admin", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, carol, sk(""), `{"users":{"@mod:b.test":0,"@mod2:b.test":100}}`)
		}, true},
		{"creator_raises_user_above_100", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, alice, sk(""), `{"users":{"@mod:b.test":150,"@mod2:b.test":100}}`)
		}, true},
		{"admin_cannot_demote_admin", func(f *fixture) *events.Event {
			return f.ev(typePowerLevels, mod, sk(""), `{"users":{"@mod:b.test":100,"@mod2:b.test":50}}`)
		}, false},
		{"admin_cannot_ban_creator", func(f *fixture) *events.Event { return f.member(mod, alice, MembershipBan) }, false},
		{"admin_cannot_kick_additional_creator", func(f *fixture) *events.Event { return f.member(mod, carol, MembershipLeave) }, false},
		{"creator_bans_admin", func(f *fixture) *events.Event { return f.member(alice, mod, MembershipBan) }, true},
		{"creator_cannot_kick_creator", func(f *fixture) *events.Event { return f.member(alice, carol, MembershipLeave) }, false},
		{"creator_sends_at_any_level", func(f *fixture) *events.Event {
			f.setPL(`{"users":{"@mod:b.test":100},"events_default":9007199254740991}`)
			return f.ev("m.room.message", carol, nil, `{}`)
		}, true},
		{"event_of_another_room_refused", func(f *fixture) *events.Event {
			ev := f.ev("m.room.message", alice, nil, `{}`)
			ev.RoomID = "!other:a.test"
			return ev
		}, false},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			f := v12Room(t)
			check(t, tc.ev(f), f.st, tc.want)
		})
	}
}

// TestV12Create covers the v12 rules of m.room.create: no room_id (the
// room is named by the event) and additional_creators made of user IDs.
func TestV12Create(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		foreignRoom   bool
		want          bool
	}{
		{"plain", `{"room_version":"12"}`, false, true},
		{"additional_creators", `{"room_version":"12","additional_creators":["@bob:b.test","@carol:c.test"]}`, false, true},
		{"additional_creators_empty", `{"room_version":"12","additional_creators":[]}`, false, true},
		{"additional_creators_not_array", `{"room_version":"12","additional_creators":"@bob:b.test"}`, false, false},
		{"additional_creators_not_strings", `{"room_version":"12","additional_creators":[1]}`, false, false},
		{"additional_creators_not_user_ids", `{"room_version":"12","additional_creators":["bob"]}`, false, false},
		{"additional_creators_null", `{"room_version":"12","additional_creators":null}`, false, false},
		{"has_room_id", `{"room_version":"12"}`, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events.Event{Version: events.RoomV12, ID: "$c", Sender: alice, Type: typeCreate, StateKey: sk(""),
				Content: json.RawMessage(tc.content), RoomID: "!c"}
			if tc.foreignRoom {
				ev.RoomID = roomID
			}
			check(t, ev, StateMap{}, tc.want)
		})
	}
}

// TestV12AuthEvents: from v12 auth_events do not cite the create event;
// the room ID names it (MSC4291).
func TestV12AuthEvents(t *testing.T) {
	f := v12Room(t)
	ev := f.member(bob, bob, MembershipJoin)
	tuples := AuthEventTuples(f.v, ev.Type, ev.StateKey, ev.Sender, ev.Content)
	if slices.Contains(tuples, events.StateTuple{Type: typeCreate}) {
		t.Fatalf("v12 auth events cite the create event: %v", tuples)
	}
	var auth []*events.Event
	for _, tup := range tuples {
		if ae := f.st[tup]; ae != nil {
			auth = append(auth, ae)
			ev.AuthEvents = append(ev.AuthEvents, ae.ID)
		}
	}
	st, err := CheckAuthEvents(ev, auth, f.create)
	if err != nil {
		t.Fatal(err)
	}
	check(t, ev, st, true)
	if _, err := CheckAuthEvents(ev, auth, nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("without the room's create event: %v", err)
	}
	other := *f.create
	other.ID = "$elsewhere"
	if _, err := CheckAuthEvents(ev, auth, &other); !errors.Is(err, ErrForbidden) {
		t.Errorf("with another room's create event: %v", err)
	}
	cited := *ev
	cited.AuthEvents = append(slices.Clone(ev.AuthEvents), f.create.ID)
	if _, err := CheckAuthEvents(&cited, append(slices.Clone(auth), f.create), f.create); !errors.Is(err, ErrForbidden) {
		t.Errorf("auth_events citing the create event: %v", err)
	}
}

// TestAliasesRule: up to v5 an m.room.aliases event belongs to the server
// its state key names, member or not (rule 4); from v6 it is ordinary
// state.
func TestAliasesRule(t *testing.T) {
	for _, v := range versions {
		old := !since(v, 6)
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			f := newRoom(t, v)
			check(t, f.ev(typeAliases, carol, sk("c.test"), `{"aliases":["#x:c.test"]}`), f.st, old)
			check(t, f.ev(typeAliases, carol, sk("a.test"), `{"aliases":["#x:a.test"]}`), f.st, false)
			// Without a state key: refused by rule 4 up to v5, an
			// ordinary message after.
			check(t, f.ev(typeAliases, alice, nil, `{"aliases":[]}`), f.st, !old)
			// A member with the state level sends it as any state.
			check(t, f.ev(typeAliases, alice, sk("a.test"), `{"aliases":[]}`), f.st, true)
		})
	}
}

// TestNotificationLevelsFromV6: rules 9.4 and 9.5 compare "notifications"
// only from v6; before, anyone who may send power levels changes them.
func TestNotificationLevelsFromV6(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			f := newRoom(t, v)
			users := `"@mod:b.test":50,"@mod2:b.test":50`
			if !HasPrivilegedCreators(v) {
				users = `"@alice:a.test":100,` + users
			}
			f.setPL(`{"users":{` + users + `},"events":{"m.room.power_levels":50}}`)
			ev := f.ev(typePowerLevels, mod, sk(""), `{"users":{`+users+`},"events":{"m.room.power_levels":50},"notifications":{"room":100}}`)
			check(t, ev, f.st, !since(v, 6))
		})
	}
}

// TestFloatPowerLevels: up to v5 a level may be a number with a fraction
// or exponent, truncated (fragments/v1-floaty-power-levels.md).
func TestFloatPowerLevels(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			pl, err := ParsePowerLevels(v, json.RawMessage(`{"ban":50.9,"kick":5.114698E4,"users":{"@bob:b.test":-1.5}}`))
			if since(v, 6) {
				if !errors.Is(err, ErrInvalidPowerLevels) {
					t.Fatalf("v%s accepted floats: %v", v, err)
				}
				return
			}
			if err != nil || pl.Ban() != 50 || pl.Kick() != 51146 || pl.UserLevel(bob) != -1 {
				t.Fatalf("levels %d %d %d, %v", pl.Ban(), pl.Kick(), pl.UserLevel(bob), err)
			}
			for _, bad := range []string{`{"ban":1e400}`, `{"ban":9007199254740992.5}`} {
				if _, err := ParsePowerLevels(v, json.RawMessage(bad)); !errors.Is(err, ErrInvalidPowerLevels) {
					t.Errorf("ParsePowerLevels(%s): %v", bad, err)
				}
			}
		})
	}
}

// TestRedactionRuleV1: in v1 and v2 the rules judge redactions (rule 11):
// the redact level, or an event ID on the same server as the redacted
// event's. From v3 they pass on the ordinary levels (see RedactionApplies).
func TestRedactionRuleV1(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s", v), func(t *testing.T) {
			f := newRoom(t, v)
			red := func(sender, id, target string) *events.Event {
				ev := f.ev(typeRedaction, sender, nil, `{}`)
				ev.ID, ev.Redacts = id, target
				return ev
			}
			check(t, red(pleb, "$r1:b.test", "$m:b.test"), f.st, true)                      // same server
			check(t, red(mod, "$r2:b.test", "$m:a.test"), f.st, true)                       // redact level 50
			check(t, red(pleb, "$r3:b.test", "$m:a.test"), f.st, !rulesOf[v].redactionRule) // neither
		})
	}
}
