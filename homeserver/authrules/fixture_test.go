package authrules

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/salonhq/salon/homeserver/events"
)

// The cast of the test room. alice created it on a.test; the others are
// on b.test so that server checks can be told apart from user checks.
const (
	roomID = "!room:a.test"
	alice  = "@alice:a.test" // creator, level 100
	mod    = "@mod:b.test"   // level 50
	mod2   = "@mod2:b.test"  // level 50
	pleb   = "@pleb:b.test"  // level 0
	bob    = "@bob:b.test"   // the usual target, level 0
	carol  = "@carol:c.test" // not in the room
)

// versions are all the hosted versions; v10v11 are those for which the
// older tables were written, whose rules (knocking, restricted joins,
// integer-only levels, no privileged creators) are the same; the tables of
// versions_test.go cover where the others differ.
var (
	versions = events.SupportedVersions()
	v10v11   = []events.RoomVersion{events.RoomV10, events.RoomV11}
)

func sk(s string) *string { return &s }

// fixture is a room's state built up event by event.
type fixture struct {
	t      testing.TB
	v      events.RoomVersion
	roomID string // roomID, or in v12 the room the create event names
	st     StateMap
	create *events.Event
	n      int
}

// newRoom is a room of version v created by alice, who is joined, with
// power levels giving alice 100 (in v12, where creators have infinite
// power and are not listed, nothing) and mod and mod2 50, the join rule
// "invite", and mod, mod2 and pleb joined.
func newRoom(t testing.TB, v events.RoomVersion) *fixture {
	t.Helper()
	f := bareRoom(t, v)
	f.join(alice)
	if HasPrivilegedCreators(v) {
		f.setPL(`{"users":{"@mod:b.test":50,"@mod2:b.test":50}}`)
	} else {
		f.setPL(`{"users":{"@alice:a.test":100,"@mod:b.test":50,"@mod2:b.test":50}}`)
	}
	f.setJoinRule(JoinRuleInvite)
	f.join(mod)
	f.join(mod2)
	f.join(pleb)
	return f
}

// bareRoom is a room with only its create event.
func bareRoom(t testing.TB, v events.RoomVersion) *fixture {
	f := &fixture{t: t, v: v, st: StateMap{}, roomID: roomID}
	f.create = f.ev(typeCreate, alice, sk(""), createContent(v))
	f.create.PrevEvents = nil
	if HasPrivilegedCreators(v) {
		f.roomID = events.RoomIDForCreateEvent(f.create.ID)
		f.create.RoomID = f.roomID
	}
	f.set(f.create)
	return f
}

func createContent(v events.RoomVersion) string {
	if v.CreatorInContent() {
		return fmt.Sprintf(`{"creator":%q,"room_version":%q}`, alice, v)
	}
	return fmt.Sprintf(`{"room_version":%q}`, v)
}

// ev builds an event with a fresh ID. Its prev_events names an event that
// is not the create event, so rule 4.3.1 applies only where a test says so.
func (f *fixture) ev(typ, sender string, stateKey *string, content string) *events.Event {
	f.n++
	if !json.Valid([]byte(content)) {
		f.t.Fatalf("test content is not JSON: %s", content)
	}
	return &events.Event{
		Version:    f.v,
		ID:         fmt.Sprintf("$e%d", f.n),
		RoomID:     f.roomID,
		Sender:     sender,
		Type:       typ,
		StateKey:   stateKey,
		Content:    json.RawMessage(content),
		PrevEvents: []string{"$latest"},
		Depth:      int64(f.n),
	}
}

func (f *fixture) set(ev *events.Event) { f.st[ev.Tuple()] = ev }

func (f *fixture) member(sender, target, membership string) *events.Event {
	return f.ev(typeMember, sender, sk(target), fmt.Sprintf(`{"membership":%q}`, membership))
}

// setMembership records user's membership; "" removes it.
func (f *fixture) setMembership(user, membership string) {
	if membership == "" {
		delete(f.st, events.StateTuple{Type: typeMember, StateKey: user})
		return
	}
	f.set(f.member(user, user, membership))
}

func (f *fixture) join(user string) { f.setMembership(user, MembershipJoin) }

func (f *fixture) setPL(content string) { f.set(f.ev(typePowerLevels, alice, sk(""), content)) }

func (f *fixture) setJoinRule(rule string) {
	f.set(f.ev(typeJoinRules, alice, sk(""), fmt.Sprintf(`{"join_rule":%q}`, rule)))
}

// check runs Allowed and compares with want, demanding ErrForbidden on
// refusals.
func check(t *testing.T, ev *events.Event, st AuthState, want bool) {
	t.Helper()
	err := Allowed(ev, st)
	if want && err != nil {
		t.Fatalf("Allowed: %v, want allowed", err)
	}
	if !want {
		if err == nil {
			t.Fatalf("Allowed: nil, want refused")
		}
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("Allowed: %v, want an error wrapping ErrForbidden", err)
		}
		t.Logf("refused as expected: %v", err)
	}
}

func describeMembership(m string) string {
	if m == "" {
		return "none"
	}
	return m
}
