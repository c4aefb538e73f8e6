package authrules

import (
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

var priors = []string{"", MembershipInvite, MembershipJoin, MembershipLeave, MembershipBan, MembershipKnock}

// TestMembershipTransitions walks every membership bob can have to every
// membership an event can give him, sent by bob himself, by mod (joined,
// level 50, enough to invite, kick and ban) and by pleb (joined, level 0,
// below all three: invite is raised to 50). The join rule is "knock", so
// that knocks are possible and joins need an invite. Each expectation was
// worked out by hand from rule 4 of the v10/v11 authorization rules.
func TestMembershipTransitions(t *testing.T) {
	type want struct{ self, mod, pleb bool }
	table := []struct {
		prior, to string
		want      want
	}{
		// 4.3: only bob may join himself, and only if invited or joined.
		{"", MembershipJoin, want{false, false, false}},
		{MembershipInvite, MembershipJoin, want{true, false, false}},
		{MembershipJoin, MembershipJoin, want{true, false, false}},
		{MembershipLeave, MembershipJoin, want{false, false, false}},
		{MembershipBan, MembershipJoin, want{false, false, false}},
		{MembershipKnock, MembershipJoin, want{false, false, false}},
		// 4.4: a joined sender with the invite level, unless bob is joined or banned.
		{"", MembershipInvite, want{false, true, false}},
		{MembershipInvite, MembershipInvite, want{false, true, false}},
		{MembershipJoin, MembershipInvite, want{false, false, false}},
		{MembershipLeave, MembershipInvite, want{false, true, false}},
		{MembershipBan, MembershipInvite, want{false, false, false}},
		{MembershipKnock, MembershipInvite, want{false, true, false}},
		// 4.5: bob leaves from invite, join or knock; mod kicks or unbans anyone below 50.
		{"", MembershipLeave, want{false, true, false}},
		{MembershipInvite, MembershipLeave, want{true, true, false}},
		{MembershipJoin, MembershipLeave, want{true, true, false}},
		{MembershipLeave, MembershipLeave, want{false, true, false}},
		{MembershipBan, MembershipLeave, want{false, true, false}},
		{MembershipKnock, MembershipLeave, want{true, true, false}},
		// 4.6: a joined sender with the ban level above bob's, whatever bob's membership.
		{"", MembershipBan, want{false, true, false}},
		{MembershipInvite, MembershipBan, want{false, true, false}},
		{MembershipJoin, MembershipBan, want{false, true, false}},
		{MembershipLeave, MembershipBan, want{false, true, false}},
		{MembershipBan, MembershipBan, want{false, true, false}},
		{MembershipKnock, MembershipBan, want{false, true, false}},
		// 4.7: only bob knocks, and not when banned, invited or joined.
		{"", MembershipKnock, want{true, false, false}},
		{MembershipInvite, MembershipKnock, want{false, false, false}},
		{MembershipJoin, MembershipKnock, want{false, false, false}},
		{MembershipLeave, MembershipKnock, want{true, false, false}},
		{MembershipBan, MembershipKnock, want{false, false, false}},
		{MembershipKnock, MembershipKnock, want{true, false, false}},
	}
	for _, v := range v10v11 {
		for _, tc := range table {
			for _, by := range []struct {
				name, user string
				want       bool
			}{
				{"self", bob, tc.want.self},
				{"mod", mod, tc.want.mod},
				{"pleb", pleb, tc.want.pleb},
			} {
				name := fmt.Sprintf("v%s/%s_to_%s/by_%s", v, describeMembership(tc.prior), tc.to, by.name)
				t.Run(name, func(t *testing.T) {
					f := newRoom(t, v)
					f.setPL(`{"users":{"@alice:a.test":100,"@mod:b.test":50},"invite":50}`)
					f.setJoinRule(JoinRuleKnock)
					f.setMembership(bob, tc.prior)
					check(t, f.member(by.user, bob, tc.to), f.st, by.want)
				})
			}
		}
	}
}

// TestJoinRules is bob joining himself under each join rule from each
// membership (rules 4.3.3 to 4.3.7), without join_authorised_via_users_server.
func TestJoinRules(t *testing.T) {
	// want lists the outcome for each of priors, in order.
	table := []struct {
		name    string
		content string // m.room.join_rules content; "" for no event
		want    [6]bool
	}{
		{"public", `{"join_rule":"public"}`, [6]bool{true, true, true, true, false, true}},
		{"invite", `{"join_rule":"invite"}`, [6]bool{false, true, true, false, false, false}},
		{"knock", `{"join_rule":"knock"}`, [6]bool{false, true, true, false, false, false}},
		{"restricted", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!space:a.test"}]}`, [6]bool{false, true, true, false, false, false}},
		{"knock_restricted", `{"join_rule":"knock_restricted"}`, [6]bool{false, true, true, false, false, false}},
		{"private", `{"join_rule":"private"}`, [6]bool{}},
		{"unknown", `{"join_rule":"by_appointment"}`, [6]bool{}},
		{"not_a_string", `{"join_rule":5}`, [6]bool{}},
		{"no_join_rule_key", `{}`, [6]bool{false, true, true, false, false, false}},
		{"no_event", ``, [6]bool{false, true, true, false, false, false}},
	}
	for _, v := range v10v11 {
		for _, tc := range table {
			for i, prior := range priors {
				t.Run(fmt.Sprintf("v%s/%s/from_%s", v, tc.name, describeMembership(prior)), func(t *testing.T) {
					f := newRoom(t, v)
					if tc.content == "" {
						delete(f.st, events.StateTuple{Type: typeJoinRules})
					} else {
						f.set(f.ev(typeJoinRules, alice, sk(""), tc.content))
					}
					f.setMembership(bob, prior)
					check(t, f.member(bob, bob, MembershipJoin), f.st, tc.want[i])
				})
			}
		}
	}
}

// TestKnockJoinRules is rule 4.7.1: only knock and knock_restricted rooms
// take knocks.
func TestKnockJoinRules(t *testing.T) {
	for _, v := range v10v11 {
		for _, tc := range []struct {
			rule string
			want bool
		}{
			{JoinRulePublic, false},
			{JoinRuleInvite, false},
			{JoinRuleKnock, true},
			{JoinRuleRestricted, false},
			{JoinRuleKnockRestricted, true},
			{JoinRulePrivate, false},
			{"", false}, // no join rules event reads as invite
		} {
			t.Run(fmt.Sprintf("v%s/%s", v, describeJoinRule(tc.rule)), func(t *testing.T) {
				f := newRoom(t, v)
				if tc.rule == "" {
					delete(f.st, events.StateTuple{Type: typeJoinRules})
				} else {
					f.setJoinRule(tc.rule)
				}
				check(t, f.member(bob, bob, MembershipKnock), f.st, tc.want)
			})
		}
	}
}

func describeJoinRule(r string) string {
	if r == "" {
		return "no_event"
	}
	return r
}

// TestRestrictedJoins is rule 4.3.5 for both restricted join rules: a user
// neither joined nor invited joins through a joined user with the invite
// level, named in join_authorised_via_users_server.
func TestRestrictedJoins(t *testing.T) {
	table := []struct {
		name       string
		prior      string
		authoriser string // raw JSON value of the key; "" to omit it
		setup      func(f *fixture)
		want       bool
	}{
		{name: "authorised_from_none", authoriser: `"@alice:a.test"`, want: true},
		{name: "authorised_from_leave", prior: MembershipLeave, authoriser: `"@alice:a.test"`, want: true},
		{name: "authorised_from_knock", prior: MembershipKnock, authoriser: `"@alice:a.test"`, want: true},
		{name: "authoriser_at_invite_level", authoriser: `"@mod:b.test"`, want: true,
			setup: func(f *fixture) {
				f.setPL(`{"users":{"@alice:a.test":100,"@mod:b.test":50},"invite":50}`)
			}},
		{name: "authoriser_below_invite_level", authoriser: `"@pleb:b.test"`, want: false,
			setup: func(f *fixture) {
				f.setPL(`{"users":{"@alice:a.test":100,"@mod:b.test":50},"invite":50}`)
			}},
		{name: "authoriser_key_missing", want: false},
		{name: "authoriser_never_member", authoriser: `"@carol:c.test"`, want: false},
		{name: "authoriser_left", authoriser: `"@pleb:b.test"`, want: false,
			setup: func(f *fixture) { f.setMembership(pleb, MembershipLeave) }},
		{name: "authoriser_only_invited", authoriser: `"@carol:c.test"`, want: false,
			setup: func(f *fixture) { f.set(f.member(alice, carol, MembershipInvite)) }},
		{name: "authoriser_banned", authoriser: `"@pleb:b.test"`, want: false,
			setup: func(f *fixture) { f.set(f.member(alice, pleb, MembershipBan)) }},
		{name: "authoriser_not_a_string", authoriser: `5`, want: false},
		{name: "authoriser_not_a_user_id", authoriser: `"alice"`, want: false},
		{name: "banned_despite_authoriser", prior: MembershipBan, authoriser: `"@alice:a.test"`, want: false},
		{name: "invited_needs_no_authoriser", prior: MembershipInvite, want: true},
		{name: "joined_needs_no_authoriser", prior: MembershipJoin, want: true},
		{name: "invited_with_low_authoriser", prior: MembershipInvite, authoriser: `"@pleb:b.test"`, want: true,
			setup: func(f *fixture) {
				f.setPL(`{"users":{"@alice:a.test":100},"invite":50}`)
			}},
		{name: "join_for_someone_else", authoriser: `"@alice:a.test"`, want: false},
	}
	for _, v := range v10v11 {
		for _, rule := range []string{JoinRuleRestricted, JoinRuleKnockRestricted} {
			for _, tc := range table {
				t.Run(fmt.Sprintf("v%s/%s/%s", v, rule, tc.name), func(t *testing.T) {
					f := newRoom(t, v)
					f.setJoinRule(rule)
					if tc.setup != nil {
						tc.setup(f)
					}
					f.setMembership(bob, tc.prior)
					content := `{"membership":"join"}`
					if tc.authoriser != "" {
						content = fmt.Sprintf(`{"membership":"join","join_authorised_via_users_server":%s}`, tc.authoriser)
					}
					sender := bob
					if tc.name == "join_for_someone_else" {
						sender = alice
					}
					check(t, f.ev(typeMember, sender, sk(bob), content), f.st, tc.want)
				})
			}
		}
	}
}

// TestAuthoriserInOtherRooms: the key does no harm where it is not needed,
// but it must still name a user (rule 4.2 applies to every membership).
func TestAuthoriserInOtherRooms(t *testing.T) {
	for _, v := range v10v11 {
		t.Run(fmt.Sprintf("v%s/public_with_authoriser", v), func(t *testing.T) {
			f := newRoom(t, v)
			f.setJoinRule(JoinRulePublic)
			check(t, f.ev(typeMember, bob, sk(bob), `{"membership":"join","join_authorised_via_users_server":"@carol:c.test"}`), f.st, true)
		})
		t.Run(fmt.Sprintf("v%s/public_with_bad_authoriser", v), func(t *testing.T) {
			f := newRoom(t, v)
			f.setJoinRule(JoinRulePublic)
			check(t, f.ev(typeMember, bob, sk(bob), `{"membership":"join","join_authorised_via_users_server":"nobody"}`), f.st, false)
		})
	}
}

// TestModeration covers the level comparisons of kicks, bans and unbans
// (rules 4.5.3, 4.5.4 and 4.6.2).
func TestModeration(t *testing.T) {
	table := []struct {
		name       string
		pl         string
		sender     string
		target     string
		prior      string // target's membership
		membership string
		want       bool
	}{
		{"kick_equal_level", "", mod, mod2, MembershipJoin, MembershipLeave, false},
		{"kick_lower_level", "", alice, mod, MembershipJoin, MembershipLeave, true},
		{"kick_higher_level", "", mod, alice, MembershipJoin, MembershipLeave, false},
		{"ban_equal_level", "", mod, mod2, MembershipJoin, MembershipBan, false},
		{"ban_lower_level", "", alice, mod2, MembershipJoin, MembershipBan, true},
		{"ban_self_as_admin", "", alice, alice, MembershipJoin, MembershipBan, false},
		{"kick_needs_kick_level", `{"users":{"@mod:b.test":50},"kick":60}`, mod, bob, MembershipJoin, MembershipLeave, false},
		{"kick_at_kick_level", `{"users":{"@mod:b.test":60},"kick":60}`, mod, bob, MembershipJoin, MembershipLeave, true},
		{"ban_needs_ban_level", `{"users":{"@mod:b.test":50},"ban":60}`, mod, bob, MembershipJoin, MembershipBan, false},
		{"ban_at_ban_level", `{"users":{"@mod:b.test":60},"ban":60}`, mod, bob, MembershipJoin, MembershipBan, true},
		{"unban_needs_ban_level", `{"users":{"@mod:b.test":50},"kick":50,"ban":75}`, mod, bob, MembershipBan, MembershipLeave, false},
		{"unban_needs_kick_level", `{"users":{"@mod:b.test":50},"kick":75,"ban":50}`, mod, bob, MembershipBan, MembershipLeave, false},
		{"unban_with_both", `{"users":{"@mod:b.test":75},"kick":75,"ban":75}`, mod, bob, MembershipBan, MembershipLeave, true},
		{"unban_needs_more_than_target", `{"users":{"@mod:b.test":50,"@bob:b.test":50}}`, mod, bob, MembershipBan, MembershipLeave, false},
		{"kick_by_non_member", "", carol, bob, MembershipJoin, MembershipLeave, false},
		{"ban_by_invited_admin", "", alice, bob, MembershipJoin, MembershipBan, false},
		{"invite_by_invitee", "", bob, carol, MembershipInvite, MembershipInvite, false},
		{"invite_level_zero_default", "", pleb, carol, "", MembershipInvite, true},
		{"invite_below_invite_level", `{"invite":10}`, pleb, carol, "", MembershipInvite, false},
		{"users_default_raises_everyone", `{"users_default":60,"kick":60,"users":{"@bob:b.test":0}}`, pleb, bob, MembershipJoin, MembershipLeave, true},
	}
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				if tc.pl != "" {
					f.setPL(tc.pl)
				}
				switch tc.name {
				case "invite_by_invitee":
					f.setMembership(bob, MembershipInvite)
				case "ban_by_invited_admin":
					f.setMembership(alice, MembershipInvite)
				}
				f.setMembership(tc.target, tc.prior)
				check(t, f.member(tc.sender, tc.target, tc.membership), f.st, tc.want)
			})
		}
	}
}

// TestMemberShape is rules 4.1, 4.2 and 4.8.
func TestMemberShape(t *testing.T) {
	table := []struct {
		name     string
		stateKey *string
		content  string
	}{
		{"no_state_key", nil, `{"membership":"join"}`},
		{"no_membership", sk(bob), `{"displayname":"Bob"}`},
		{"membership_not_a_string", sk(bob), `{"membership":1}`},
		{"membership_null", sk(bob), `{"membership":null}`},
		{"unknown_membership", sk(bob), `{"membership":"lurk"}`},
		{"content_not_an_object", sk(bob), `["join"]`},
	}
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				f.setJoinRule(JoinRulePublic)
				check(t, f.ev(typeMember, bob, tc.stateKey, tc.content), f.st, false)
			})
		}
	}
}

// TestCreatorFirstJoin is rule 4.3.1: the creator joins right after the
// create event, before any join rules or power levels exist.
func TestCreatorFirstJoin(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s/creator_after_create", v), func(t *testing.T) {
			f := bareRoom(t, v)
			ev := f.member(alice, alice, MembershipJoin)
			ev.PrevEvents = []string{f.create.ID}
			check(t, ev, f.st, true)
		})
		t.Run(fmt.Sprintf("v%s/other_user_after_create", v), func(t *testing.T) {
			f := bareRoom(t, v)
			ev := f.member(bob, bob, MembershipJoin)
			ev.PrevEvents = []string{f.create.ID}
			check(t, ev, f.st, false)
		})
		t.Run(fmt.Sprintf("v%s/creator_after_two_events", v), func(t *testing.T) {
			f := bareRoom(t, v)
			ev := f.member(alice, alice, MembershipJoin)
			ev.PrevEvents = []string{f.create.ID, "$other"}
			check(t, ev, f.st, false)
		})
		t.Run(fmt.Sprintf("v%s/creator_after_another_event", v), func(t *testing.T) {
			f := bareRoom(t, v)
			ev := f.member(alice, alice, MembershipJoin)
			ev.PrevEvents = []string{"$other"}
			check(t, ev, f.st, false)
		})
	}
	// In v10 the creator is content.creator; in v11, where that property is
	// gone, the create event's sender.
	t.Run("v10/creator_is_content_creator", func(t *testing.T) {
		f := &fixture{t: t, v: "10", st: StateMap{}}
		f.create = f.ev(typeCreate, alice, sk(""), `{"creator":"@bob:b.test","room_version":"10"}`)
		f.set(f.create)
		ev := f.member(bob, bob, MembershipJoin)
		ev.PrevEvents = []string{f.create.ID}
		check(t, ev, f.st, true)
		ev = f.member(alice, alice, MembershipJoin)
		ev.PrevEvents = []string{f.create.ID}
		check(t, ev, f.st, false)
	})
	t.Run("v11/creator_is_sender_not_content_creator", func(t *testing.T) {
		f := &fixture{t: t, v: "11", st: StateMap{}}
		f.create = f.ev(typeCreate, alice, sk(""), `{"creator":"@bob:b.test","room_version":"11"}`)
		f.set(f.create)
		ev := f.member(bob, bob, MembershipJoin)
		ev.PrevEvents = []string{f.create.ID}
		check(t, ev, f.st, false)
		ev = f.member(alice, alice, MembershipJoin)
		ev.PrevEvents = []string{f.create.ID}
		check(t, ev, f.st, true)
	})
}

// TestThirdPartyInvites is rule 4.4.1: the structural checks run, then
// Salon refuses the invite since it cannot check the signature yet.
func TestThirdPartyInvites(t *testing.T) {
	const tpiOK = `{"membership":"invite","third_party_invite":{"display_name":"b...","signed":{"mxid":"@bob:b.test","token":"tok","signatures":{}}}}`
	table := []struct {
		name        string
		content     string
		setup       func(f *fixture)
		unsupported bool // refused only for want of signature checks
	}{
		{name: "banned_target", content: tpiOK, setup: func(f *fixture) { f.set(f.member(alice, bob, MembershipBan)) }},
		{name: "no_signed", content: `{"membership":"invite","third_party_invite":{"display_name":"b..."}}`},
		{name: "no_token", content: `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@bob:b.test"}}}`},
		{name: "no_mxid", content: `{"membership":"invite","third_party_invite":{"signed":{"token":"tok"}}}`},
		{name: "mxid_mismatch", content: `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@carol:c.test","token":"tok"}}}`},
		{name: "no_invite_event", content: tpiOK, setup: func(f *fixture) {
			delete(f.st, events.StateTuple{Type: typeThirdPartyInvite, StateKey: "tok"})
		}},
		{name: "invite_event_by_someone_else", content: tpiOK, setup: func(f *fixture) {
			f.set(f.ev(typeThirdPartyInvite, alice, sk("tok"), `{"display_name":"b...","public_key":"AAAA"}`))
		}},
		{name: "well_formed", content: tpiOK, unsupported: true},
	}
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				f.set(f.ev(typeThirdPartyInvite, mod, sk("tok"), `{"display_name":"b...","public_key":"AAAA"}`))
				if tc.setup != nil {
					tc.setup(f)
				}
				err := Allowed(f.ev(typeMember, mod, sk(bob), tc.content), f.st)
				if !errors.Is(err, ErrForbidden) {
					t.Fatalf("Allowed: %v, want ErrForbidden", err)
				}
				if got := errors.Is(err, ErrThirdPartyInviteUnsupported); got != tc.unsupported {
					t.Fatalf("Allowed: %v; wraps ErrThirdPartyInviteUnsupported = %v, want %v", err, got, tc.unsupported)
				}
			})
		}
	}
}
