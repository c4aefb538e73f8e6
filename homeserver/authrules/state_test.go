package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

var (
	tCreate = events.StateTuple{Type: typeCreate}
	tPL     = events.StateTuple{Type: typePowerLevels}
	tJR     = events.StateTuple{Type: typeJoinRules}
)

func tMember(u string) events.StateTuple { return events.StateTuple{Type: typeMember, StateKey: u} }

func TestAuthEventTuples(t *testing.T) {
	base := []events.StateTuple{tCreate, tPL, tMember(bob)}
	table := []struct {
		name     string
		evType   string
		stateKey *string
		sender   string
		content  string
		want     []events.StateTuple
	}{
		{"create", typeCreate, sk(""), alice, `{"room_version":"11"}`, nil},
		{"message", "m.room.message", nil, bob, `{"body":"hi"}`, base},
		{"state", "m.room.topic", sk(""), bob, `{}`, base},
		{"power_levels", typePowerLevels, sk(""), bob, `{}`, base},
		{"join_self", typeMember, sk(bob), bob, `{"membership":"join"}`, append(slices.Clone(base), tJR)},
		{"invite", typeMember, sk(carol), bob, `{"membership":"invite"}`, append(slices.Clone(base), tMember(carol), tJR)},
		{"knock", typeMember, sk(bob), bob, `{"membership":"knock"}`, append(slices.Clone(base), tJR)},
		{"leave", typeMember, sk(bob), bob, `{"membership":"leave"}`, base},
		{"kick", typeMember, sk(carol), bob, `{"membership":"leave"}`, append(slices.Clone(base), tMember(carol))},
		{"ban", typeMember, sk(carol), bob, `{"membership":"ban"}`, append(slices.Clone(base), tMember(carol))},
		{"restricted_join", typeMember, sk(bob), bob, `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`,
			append(slices.Clone(base), tJR, tMember(alice))},
		{"restricted_join_authorised_by_self", typeMember, sk(bob), bob, `{"membership":"join","join_authorised_via_users_server":"@bob:b.test"}`,
			append(slices.Clone(base), tJR)},
		{"authoriser_ignored_outside_joins", typeMember, sk(bob), bob, `{"membership":"leave","join_authorised_via_users_server":"@alice:a.test"}`, base},
		{"third_party_invite", typeMember, sk(carol), bob, `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@carol:c.test","token":"tok"}}}`,
			append(slices.Clone(base), tMember(carol), tJR, events.StateTuple{Type: typeThirdPartyInvite, StateKey: "tok"})},
		{"member_without_state_key", typeMember, nil, bob, `{"membership":"join"}`, base},
		{"member_bad_content", typeMember, sk(bob), bob, `[]`, base},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			got := AuthEventTuples(events.RoomV11, tc.evType, tc.stateKey, tc.sender, json.RawMessage(tc.content))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AuthEventTuples = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCheckAuthEvents is rule 2 on received auth_events.
func TestCheckAuthEvents(t *testing.T) {
	// build returns a join by bob with auth events chosen from a room.
	build := func(t *testing.T) (*fixture, *events.Event, []*events.Event) {
		f := newRoom(t, events.RoomV11)
		f.setJoinRule(JoinRulePublic)
		f.setMembership(bob, MembershipLeave)
		ev := f.member(bob, bob, MembershipJoin)
		var auth []*events.Event
		for _, tup := range AuthEventTuples(ev.Version, ev.Type, ev.StateKey, ev.Sender, ev.Content) {
			if ae := f.st[tup]; ae != nil {
				auth = append(auth, ae)
				ev.AuthEvents = append(ev.AuthEvents, ae.ID)
			}
		}
		return f, ev, auth
	}
	table := []struct {
		name   string
		modify func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event
		want   bool
	}{
		{"selected_events", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event { return auth }, true},
		{"any_order", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			slices.Reverse(auth)
			return auth
		}, true},
		{"without_absent_state", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			// As if bob had never been a member: create, power levels, join rules.
			ev.AuthEvents = []string{ev.AuthEvents[0], ev.AuthEvents[1], ev.AuthEvents[3]}
			return []*events.Event{auth[0], auth[1], auth[3]}
		}, true},
		{"fewer_than_named", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event { return auth[1:] }, false},
		{"not_named", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			other := *auth[0]
			other.ID = "$unnamed"
			return append([]*events.Event{&other}, auth[1:]...)
		}, false},
		{"duplicate_tuple", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			old := f.member(alice, bob, MembershipInvite)
			ev.AuthEvents = append(ev.AuthEvents, old.ID)
			return append(auth, old)
		}, false},
		{"unexpected_tuple", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			topic := f.ev("m.room.topic", alice, sk(""), `{}`)
			ev.AuthEvents = append(ev.AuthEvents, topic.ID)
			return append(auth, topic)
		}, false},
		{"other_members_event", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			m := f.st.Member(pleb)
			ev.AuthEvents = append(ev.AuthEvents, m.ID)
			return append(auth, m)
		}, false},
		{"not_state", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			msg := f.ev("m.room.message", alice, nil, `{}`)
			ev.AuthEvents = append(ev.AuthEvents, msg.ID)
			return append(auth, msg)
		}, false},
		{"other_room", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			c := *auth[1]
			c.RoomID = "!other:a.test"
			auth[1] = &c
			return auth
		}, false},
		{"no_create", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			ev.AuthEvents = ev.AuthEvents[1:]
			return auth[1:]
		}, false},
		{"nil_event", func(f *fixture, ev *events.Event, auth []*events.Event) []*events.Event {
			auth[0] = nil
			return auth
		}, false},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			f, ev, auth := build(t)
			auth = tc.modify(f, ev, auth)
			st, err := CheckAuthEvents(ev, auth, f.create)
			if tc.want {
				if err != nil {
					t.Fatalf("CheckAuthEvents: %v", err)
				}
				if st.Create() == nil {
					t.Fatal("auth state has no create event")
				}
				if err := Allowed(ev, st); err != nil {
					t.Fatalf("Allowed against its auth events: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrForbidden) {
				t.Fatalf("CheckAuthEvents: %v, want ErrForbidden", err)
			}
		})
	}
	t.Run("create_event_cites_nothing", func(t *testing.T) {
		f := bareRoom(t, events.RoomV11)
		if _, err := CheckAuthEvents(f.create, nil, nil); err != nil {
			t.Fatalf("CheckAuthEvents(create): %v", err)
		}
		c := *f.create
		c.AuthEvents = []string{f.create.ID}
		if _, err := CheckAuthEvents(&c, []*events.Event{f.create}, nil); !errors.Is(err, ErrForbidden) {
			t.Fatalf("CheckAuthEvents(create citing itself): %v, want ErrForbidden", err)
		}
	})
}

func TestCurrentPowerLevels(t *testing.T) {
	for _, v := range v10v11 {
		t.Run(fmt.Sprintf("v%s/from_event", v), func(t *testing.T) {
			f := newRoom(t, v)
			pl, err := CurrentPowerLevels(v, f.st)
			if err != nil {
				t.Fatal(err)
			}
			if got := pl.UserLevel(mod); got != 50 {
				t.Errorf("mod level = %d, want 50", got)
			}
		})
		t.Run(fmt.Sprintf("v%s/invalid_event", v), func(t *testing.T) {
			f := newRoom(t, v)
			f.setPL(`{"ban":"50"}`)
			if _, err := CurrentPowerLevels(v, f.st); !errors.Is(err, ErrInvalidPowerLevels) {
				t.Fatalf("CurrentPowerLevels: %v, want ErrInvalidPowerLevels", err)
			}
		})
		t.Run(fmt.Sprintf("v%s/no_create", v), func(t *testing.T) {
			if _, err := CurrentPowerLevels(v, StateMap{}); !errors.Is(err, ErrForbidden) {
				t.Fatalf("CurrentPowerLevels: %v, want ErrForbidden", err)
			}
		})
	}
	// Without a power levels event the creator is content.creator in v10,
	// the create event's sender in v11.
	for _, tc := range []struct {
		v              events.RoomVersion
		creator, plain string
	}{{"10", bob, alice}, {"11", alice, bob}} {
		t.Run(fmt.Sprintf("v%s/creator_without_event", tc.v), func(t *testing.T) {
			f := &fixture{t: t, v: tc.v, st: StateMap{}}
			f.set(f.ev(typeCreate, alice, sk(""), fmt.Sprintf(`{"creator":%q,"room_version":%q}`, bob, tc.v)))
			pl, err := CurrentPowerLevels(tc.v, f.st)
			if err != nil {
				t.Fatal(err)
			}
			if got := pl.UserLevel(tc.creator); got != 100 {
				t.Errorf("creator %s level = %d, want 100", tc.creator, got)
			}
			if got := pl.UserLevel(tc.plain); got != 0 {
				t.Errorf("%s level = %d, want 0", tc.plain, got)
			}
		})
	}
	t.Run("unsupported_version", func(t *testing.T) {
		if _, err := CurrentPowerLevels("13", StateMap{}); !errors.Is(err, ErrUnsupportedRoomVersion) {
			t.Fatalf("CurrentPowerLevels(v13): %v", err)
		}
	})
}

func TestRequiredSigners(t *testing.T) {
	table := []struct {
		name    string
		evType  string
		sender  string
		content string
		want    []string
	}{
		{"message", "m.room.message", bob, `{}`, []string{"b.test"}},
		{"plain_join", typeMember, bob, `{"membership":"join"}`, []string{"b.test"}},
		{"restricted_join", typeMember, bob, `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`, []string{"b.test", "a.test"}},
		{"authoriser_on_sender_server", typeMember, bob, `{"membership":"join","join_authorised_via_users_server":"@mod:b.test"}`, []string{"b.test"}},
		{"authoriser_not_user", typeMember, bob, `{"membership":"join","join_authorised_via_users_server":5}`, []string{"b.test"}},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events.Event{Version: "11", Type: tc.evType, Sender: tc.sender, StateKey: sk(tc.sender), Content: json.RawMessage(tc.content)}
			if got := RequiredSigners(ev); !slices.Equal(got, tc.want) {
				t.Fatalf("RequiredSigners = %v, want %v", got, tc.want)
			}
		})
	}
	// Before v8 the key means nothing and asks for no signature.
	ev := &events.Event{Version: events.RoomV7, Type: typeMember, Sender: bob, StateKey: sk(bob),
		Content: json.RawMessage(`{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`)}
	if got := RequiredSigners(ev); !slices.Equal(got, []string{"b.test"}) {
		t.Fatalf("v7 RequiredSigners = %v", got)
	}
	// v1 and v2 events also need their event ID's server.
	ev = &events.Event{Version: events.RoomV1, ID: "$x:c.test", Type: "m.room.message", Sender: bob, Content: json.RawMessage(`{}`)}
	if got := RequiredSigners(ev); !slices.Equal(got, []string{"b.test", "c.test"}) {
		t.Fatalf("v1 RequiredSigners = %v", got)
	}
}
