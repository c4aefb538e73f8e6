package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

func TestParsePowerLevelsDefaults(t *testing.T) {
	for _, v := range versions {
		pl, err := ParsePowerLevels(v, json.RawMessage(`{}`))
		if err != nil {
			t.Fatalf("v%s: ParsePowerLevels({}): %v", v, err)
		}
		var zero PowerLevels
		for _, tc := range []struct {
			name string
			pl   PowerLevels
		}{{"empty_content", pl}, {"zero_value", zero}, {"no_event", NoPowerLevels(alice)}} {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				p := tc.pl
				for _, c := range []struct {
					what      string
					got, want int64
				}{
					{"users_default", p.UsersDefault(), 0},
					{"events_default", p.EventsDefault(), 0},
					{"state_default", p.StateDefault(), 50},
					{"ban", p.Ban(), 50},
					{"kick", p.Kick(), 50},
					{"redact", p.Redact(), 50},
					{"invite", p.Invite(), 0},
					{"notifications.room", p.Notification("room"), 50},
					{"bob", p.UserLevel(bob), 0},
					{"message level", p.EventLevel("m.room.message", false), 0},
					{"state level", p.EventLevel("m.room.name", true), 50},
				} {
					if c.got != c.want {
						t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
					}
				}
			})
		}
	}
	t.Run("no_event_creator_has_100", func(t *testing.T) {
		p := NoPowerLevels(alice)
		if got := p.UserLevel(alice); got != 100 {
			t.Errorf("creator level = %d, want 100", got)
		}
		if got := NoPowerLevels("").UserLevel(""); got != 0 {
			t.Errorf("empty creator gives the empty user %d, want 0", got)
		}
	})
}

func TestParsePowerLevelsValues(t *testing.T) {
	const content = `{
		"users_default": 5, "events_default": 6, "state_default": 7,
		"ban": 8, "kick": 9, "redact": 10, "invite": 11,
		"users": {"@alice:a.test": 100, "@bob:b.test": -3, "@:odd.test": 1},
		"events": {"m.room.name": 20, "m.room.message": 21},
		"notifications": {"room": 30, "custom": 31},
		"historical": 100, "unknown_key": {"ignored": true}
	}`
	for _, v := range versions {
		t.Run("v"+string(v), func(t *testing.T) {
			p, err := ParsePowerLevels(v, json.RawMessage(content))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want int64
			}{
				{"users_default", p.UsersDefault(), 5},
				{"events_default", p.EventsDefault(), 6},
				{"state_default", p.StateDefault(), 7},
				{"ban", p.Ban(), 8},
				{"kick", p.Kick(), 9},
				{"redact", p.Redact(), 10},
				{"invite", p.Invite(), 11},
				{"alice", p.UserLevel(alice), 100},
				{"bob", p.UserLevel(bob), -3},
				{"carol (users_default)", p.UserLevel(carol), 5},
				{"m.room.name as state", p.EventLevel("m.room.name", true), 20},
				{"m.room.message as message", p.EventLevel("m.room.message", false), 21},
				{"listed type sent as the other kind", p.EventLevel("m.room.message", true), 21},
				{"unlisted state", p.EventLevel("m.room.topic", true), 7},
				{"unlisted message", p.EventLevel("m.reaction", false), 6},
				{"notifications.room", p.Notification("room"), 30},
				{"notifications.custom", p.Notification("custom"), 31},
				{"notifications.unlisted", p.Notification("other"), 50},
			} {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
				}
			}
		})
	}
}

// TestParsePowerLevelsStrict: rooms v10 and v11 want real integers
// (v10 "Values in m.room.power_levels events must be integers", rules
// 9.1 to 9.3) within the canonical JSON range.
func TestParsePowerLevelsStrict(t *testing.T) {
	table := []struct {
		name    string
		content string
		ok      bool
	}{
		{"string_50_in_ban", `{"ban":"50"}`, false},
		{"string_in_users", `{"users":{"@bob:b.test":"50"}}`, false},
		{"string_in_events", `{"events":{"m.room.name":"50"}}`, false},
		{"string_in_notifications", `{"notifications":{"room":"50"}}`, false},
		{"fraction", `{"users_default":0.5}`, false},
		{"integral_fraction", `{"kick":50.0}`, false},
		{"exponent", `{"state_default":5e1}`, false},
		{"upper_exponent", `{"redact":1E2}`, false},
		{"above_max_safe", `{"invite":9007199254740992}`, false},
		{"below_min_safe", `{"invite":-9007199254740992}`, false},
		{"beyond_int64", `{"invite":99999999999999999999}`, false},
		{"boolean", `{"ban":true}`, false},
		{"null_level", `{"ban":null}`, false},
		{"object_level", `{"ban":{}}`, false},
		{"users_null", `{"users":null}`, false},
		{"users_array", `{"users":["@bob:b.test"]}`, false},
		{"events_number", `{"events":5}`, false},
		{"notifications_string", `{"notifications":"room"}`, false},
		{"users_key_no_sigil", `{"users":{"bob:b.test":1}}`, false},
		{"users_key_no_colon", `{"users":{"@bob":1}}`, false},
		{"users_key_empty_server", `{"users":{"@bob:":1}}`, false},
		{"users_key_room_id", `{"users":{"!room:a.test":1}}`, false},
		{"content_array", `[]`, false},
		{"content_null", `null`, false},
		{"content_string", `"{}"`, false},
		{"content_not_json", `{"ban":`, false},
		{"max_safe", `{"invite":9007199254740991}`, true},
		{"min_safe", `{"invite":-9007199254740991}`, true},
		{"negative", `{"users_default":-1}`, true},
		{"negative_zero", `{"users_default":-0}`, true},
		{"empty_maps", `{"users":{},"events":{},"notifications":{}}`, true},
		{"unknown_keys_ignored", `{"historical":"100","extra":[1]}`, true},
	}
	for _, v := range v10v11 {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				_, err := ParsePowerLevels(v, json.RawMessage(tc.content))
				if tc.ok && err != nil {
					t.Fatalf("ParsePowerLevels: %v, want ok", err)
				}
				if !tc.ok && !errors.Is(err, ErrInvalidPowerLevels) {
					t.Fatalf("ParsePowerLevels: %v, want ErrInvalidPowerLevels", err)
				}
			})
		}
	}
	t.Run("unsupported_version", func(t *testing.T) {
		_, err := ParsePowerLevels("13", json.RawMessage(`{}`))
		if !errors.Is(err, ErrUnsupportedRoomVersion) {
			t.Fatalf("ParsePowerLevels(v9): %v, want ErrUnsupportedRoomVersion", err)
		}
	})
}

// TestValidatePowerLevels: the send path hears of every problem at once.
func TestValidatePowerLevels(t *testing.T) {
	err := ValidatePowerLevels(events.RoomV10, json.RawMessage(`{"ban":"50","kick":1.5,"users":{"bob":1,"@ok:a.test":"2"},"events":[]}`))
	if !errors.Is(err, ErrInvalidPowerLevels) {
		t.Fatalf("ValidatePowerLevels: %v, want ErrInvalidPowerLevels", err)
	}
	for _, want := range []string{`ban is a string`, `kick is not an integer`, `users key "bob" is not a user ID`, `users["@ok:a.test"] is a string`, `events is not an object`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := ValidatePowerLevels(events.RoomV11, json.RawMessage(`{"ban":50}`)); err != nil {
		t.Errorf("ValidatePowerLevels(valid): %v", err)
	}
}

// TestPowerLevelChecks covers rules 5 to 8 for events other than
// memberships: the sender is joined, third-party invites need the invite
// level, each event type its required level, and user state keys belong
// to their user.
func TestPowerLevelChecks(t *testing.T) {
	table := []struct {
		name     string
		pl       string // replaces the room's power levels; "-" removes them
		sender   string
		evType   string
		stateKey *string
		want     bool
	}{
		{"message_events_default_0", "", pleb, "m.room.message", nil, true},
		{"message_below_events_default", `{"events_default":10}`, pleb, "m.room.message", nil, false},
		{"message_at_events_default", `{"events_default":10,"users":{"@pleb:b.test":10}}`, pleb, "m.room.message", nil, true},
		{"state_below_state_default", "", pleb, "m.room.topic", sk(""), false},
		{"state_at_state_default", "", mod, "m.room.topic", sk(""), true},
		{"events_entry_lowers_state", `{"events":{"m.room.topic":0}}`, pleb, "m.room.topic", sk(""), true},
		{"events_entry_raises_message", `{"users":{"@mod:b.test":50},"events":{"m.room.message":60}}`, mod, "m.room.message", nil, false},
		{"state_default_0", `{"state_default":0}`, pleb, "com.example.state", sk(""), true},
		{"state_default_above_sender", `{"state_default":70,"users":{"@mod:b.test":50}}`, mod, "com.example.state", sk(""), false},
		{"events_default_ignored_for_state", `{"events_default":100,"state_default":0}`, pleb, "m.room.topic", sk(""), true},
		{"state_default_ignored_for_messages", `{"events_default":0,"state_default":100}`, pleb, "m.room.message", nil, true},
		{"users_default_raises_everyone", `{"users_default":60}`, pleb, "m.room.topic", sk(""), true},
		{"users_entry_beats_users_default", `{"users_default":60,"users":{"@pleb:b.test":0}}`, pleb, "m.room.topic", sk(""), false},
		{"negative_user_level", `{"users":{"@pleb:b.test":-1}}`, pleb, "m.room.message", nil, false},
		{"state_key_names_other_user", `{"state_default":0}`, pleb, "com.example.profile", sk(bob), false},
		{"state_key_names_sender", `{"state_default":0}`, pleb, "com.example.profile", sk(pleb), true},
		{"state_key_not_a_user", `{"state_default":0}`, pleb, "com.example.profile", sk("x@y"), true},
		{"admin_state_key_names_other_user", "", alice, "com.example.profile", sk(bob), false},
		{"not_joined_never_member", "", carol, "m.room.message", nil, false},
		{"not_joined_left", "", "left", "m.room.message", nil, false},
		{"not_joined_invited", "", "invited", "m.room.message", nil, false},
		{"not_joined_banned", "", "banned", "m.room.message", nil, false},
		{"not_joined_knocking", "", "knocking", "m.room.message", nil, false},
		{"third_party_invite_at_invite_level", `{"events":{"m.room.third_party_invite":100}}`, pleb, typeThirdPartyInvite, sk("tok"), true},
		{"third_party_invite_below_invite_level", `{"invite":50}`, pleb, typeThirdPartyInvite, sk("tok"), false},
		{"third_party_invite_not_joined", "", carol, typeThirdPartyInvite, sk("tok"), false},
		{"redaction_ignores_redact_level", `{"redact":100}`, pleb, typeRedaction, nil, true},
		{"redaction_below_events_entry", `{"users":{"@mod:b.test":50},"events":{"m.room.redaction":60}}`, mod, typeRedaction, nil, false},
		{"no_power_levels_creator_sets_state", "-", alice, "m.room.topic", sk(""), true},
		{"no_power_levels_member_sets_state", "-", pleb, "m.room.topic", sk(""), false},
		{"no_power_levels_member_sends_message", "-", pleb, "m.room.message", nil, true},
	}
	for _, v := range versions {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				switch tc.pl {
				case "":
				case "-":
					delete(f.st, events.StateTuple{Type: typePowerLevels})
				default:
					f.setPL(tc.pl)
				}
				// "left", "invited", ... name a user with that membership.
				sender := tc.sender
				if m, ok := map[string]string{
					"left": MembershipLeave, "invited": MembershipInvite,
					"banned": MembershipBan, "knocking": MembershipKnock,
				}[sender]; ok {
					sender = "@" + sender + ":b.test"
					f.setMembership(sender, m)
				}
				want := tc.want
				if tc.evType == typeRedaction && rulesOf[v].redactionRule && tc.pl != "" {
					// v1 and v2 check the redact level (rule 11; the
					// fixture's event IDs name no server): see
					// TestRedactionRuleV1.
					want = false
				}
				check(t, f.ev(tc.evType, sender, tc.stateKey, `{}`), f.st, want)
			})
		}
	}
}

// TestErrorNamesRule: refusals say which rule failed, for people to read.
func TestErrorNamesRule(t *testing.T) {
	f := newRoom(t, events.RoomV11)
	err := Allowed(f.ev("m.room.topic", pleb, sk(""), `{"topic":"x"}`), f.st)
	const want = "forbidden: sender's power level 0 is below 50 required for m.room.topic"
	if err == nil || err.Error() != want {
		t.Fatalf("Allowed: %v, want %q", err, want)
	}
}

// basePL is the power levels TestPowerLevelChanges starts from. mod and
// mod2 share level 50; pleb has 10.
func basePL() map[string]any {
	return map[string]any{
		"users": map[string]any{
			alice: 100, mod: 50, mod2: 50, pleb: 10,
		},
		"events": map[string]any{
			"m.room.tombstone": 100, "m.room.name": 50, "m.room.power_levels": 50,
		},
		"notifications": map[string]any{"room": 50},
		"ban":           50,
		"redact":        100,
	}
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// TestPowerLevelChanges covers rule 9.4 to 9.9: what a sender may change
// in the power levels, comparing the current content with the new one.
func TestPowerLevelChanges(t *testing.T) {
	table := []struct {
		name   string
		sender string
		change func(m map[string]any)
		want   bool
	}{
		{"no_change", mod, func(m map[string]any) {}, true},
		// users (9.8, 9.9)
		{"raise_self_above_own", mod, func(m map[string]any) { sub(m, "users")[mod] = 60 }, false},
		{"raise_other_to_own", mod, func(m map[string]any) { sub(m, "users")[pleb] = 50 }, true},
		{"raise_other_above_own", mod, func(m map[string]any) { sub(m, "users")[pleb] = 51 }, false},
		{"add_user_at_own", mod, func(m map[string]any) { sub(m, "users")[bob] = 50 }, true},
		{"add_user_above_own", mod, func(m map[string]any) { sub(m, "users")[bob] = 75 }, false},
		{"demote_equal", mod, func(m map[string]any) { sub(m, "users")[mod2] = 0 }, false},
		{"remove_equal", mod, func(m map[string]any) { delete(sub(m, "users"), mod2) }, false},
		{"demote_lower", mod, func(m map[string]any) { sub(m, "users")[pleb] = 0 }, true},
		{"remove_lower", mod, func(m map[string]any) { delete(sub(m, "users"), pleb) }, true},
		{"demote_higher", mod, func(m map[string]any) { sub(m, "users")[alice] = 0 }, false},
		{"demote_self", mod, func(m map[string]any) { sub(m, "users")[mod] = 0 }, true},
		{"remove_self", mod, func(m map[string]any) { delete(sub(m, "users"), mod) }, true},
		{"admin_demotes_mod", alice, func(m map[string]any) { sub(m, "users")[mod] = 0 }, true},
		{"admin_raises_mod_to_admin", alice, func(m map[string]any) { sub(m, "users")[mod] = 100 }, true},
		{"admin_raises_above_admin", alice, func(m map[string]any) { sub(m, "users")[mod] = 101 }, false},
		{"remove_all_users_by_mod", mod, func(m map[string]any) { delete(m, "users") }, false},
		// top-level keys (9.5)
		{"lower_ban", mod, func(m map[string]any) { m["ban"] = 40 }, true},
		{"raise_ban_above_own", mod, func(m map[string]any) { m["ban"] = 60 }, false},
		{"lower_redact_from_above_own", mod, func(m map[string]any) { m["redact"] = 50 }, false},
		{"remove_redact_above_own", mod, func(m map[string]any) { delete(m, "redact") }, false},
		{"remove_ban_at_own", mod, func(m map[string]any) { delete(m, "ban") }, true},
		{"add_kick_at_own", mod, func(m map[string]any) { m["kick"] = 50 }, true},
		{"add_kick_above_own", mod, func(m map[string]any) { m["kick"] = 60 }, false},
		{"add_invite", mod, func(m map[string]any) { m["invite"] = 0 }, true},
		{"add_state_default_at_own", mod, func(m map[string]any) { m["state_default"] = 50 }, true},
		{"add_users_default_above_own", mod, func(m map[string]any) { m["users_default"] = 51 }, false},
		{"add_events_default_above_own", mod, func(m map[string]any) { m["events_default"] = 51 }, false},
		{"admin_changes_redact", alice, func(m map[string]any) { m["redact"] = 0 }, true},
		// events (9.6, 9.7)
		{"add_event_at_own", mod, func(m map[string]any) { sub(m, "events")["m.room.topic"] = 50 }, true},
		{"add_event_above_own", mod, func(m map[string]any) { sub(m, "events")["m.room.topic"] = 60 }, false},
		{"lower_event_from_above_own", mod, func(m map[string]any) { sub(m, "events")["m.room.tombstone"] = 50 }, false},
		{"remove_event_above_own", mod, func(m map[string]any) { delete(sub(m, "events"), "m.room.tombstone") }, false},
		{"lower_event_at_own", mod, func(m map[string]any) { sub(m, "events")["m.room.name"] = 0 }, true},
		{"remove_event_at_own", mod, func(m map[string]any) { delete(sub(m, "events"), "m.room.name") }, true},
		{"raise_event_above_own", mod, func(m map[string]any) { sub(m, "events")["m.room.name"] = 60 }, false},
		// notifications (9.6, 9.7)
		{"lower_notification", mod, func(m map[string]any) { sub(m, "notifications")["room"] = 0 }, true},
		{"raise_notification_above_own", mod, func(m map[string]any) { sub(m, "notifications")["room"] = 60 }, false},
		{"add_notification", mod, func(m map[string]any) { sub(m, "notifications")["custom"] = 40 }, true},
		{"remove_notifications", mod, func(m map[string]any) { delete(m, "notifications") }, true},
		// rule 7 still applies to the power levels event itself
		{"below_power_levels_event_level", pleb, func(m map[string]any) {}, false},
	}
	for _, v := range v10v11 {
		for _, tc := range table {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				cur, _ := json.Marshal(basePL())
				f.setPL(string(cur))
				next := basePL()
				tc.change(next)
				content, _ := json.Marshal(next)
				check(t, f.ev(typePowerLevels, tc.sender, sk(""), string(content)), f.st, tc.want)
			})
		}
	}
}

// TestFirstPowerLevels is rule 9.4: with no power levels yet, any valid
// content goes, from someone rule 7 lets send it.
func TestFirstPowerLevels(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%s/creator_sets_anything", v), func(t *testing.T) {
			f := bareRoom(t, v)
			f.join(alice)
			check(t, f.ev(typePowerLevels, alice, sk(""), `{"users":{"@bob:b.test":1000},"ban":1000}`), f.st, true)
		})
		t.Run(fmt.Sprintf("v%s/member_below_state_default", v), func(t *testing.T) {
			f := bareRoom(t, v)
			f.join(alice)
			f.setJoinRule(JoinRulePublic)
			f.join(pleb)
			check(t, f.ev(typePowerLevels, pleb, sk(""), `{"users":{"@pleb:b.test":100}}`), f.st, false)
		})
	}
}

// TestPowerLevelsSchemaInAuth: invalid content is refused by rules 9.1 to
// 9.3 even from the room's admin, wrapping both sentinels.
func TestPowerLevelsSchemaInAuth(t *testing.T) {
	for _, v := range v10v11 {
		for _, tc := range []struct{ name, content string }{
			{"v10_string_50_in_ban", `{"ban":"50"}`},
			{"string_user_level", `{"users":{"@alice:a.test":"100"}}`},
			{"string_event_level", `{"events":{"m.room.name":"50"}}`},
			{"string_notification_level", `{"notifications":{"room":"50"}}`},
			{"float_users_default", `{"users_default":50.5}`},
			{"exponent_state_default", `{"state_default":5e1}`},
			{"null_invite", `{"invite":null}`},
			{"users_key_not_user_id", `{"users":{"alice":100}}`},
		} {
			t.Run(fmt.Sprintf("v%s/%s", v, tc.name), func(t *testing.T) {
				f := newRoom(t, v)
				err := Allowed(f.ev(typePowerLevels, alice, sk(""), tc.content), f.st)
				if !errors.Is(err, ErrForbidden) || !errors.Is(err, ErrInvalidPowerLevels) {
					t.Fatalf("Allowed: %v, want ErrForbidden and ErrInvalidPowerLevels", err)
				}
			})
		}
	}
}
