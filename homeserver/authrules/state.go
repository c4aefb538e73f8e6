package authrules

import (
	"encoding/json"
	"fmt"

	"github.com/salonhq/salon/homeserver/events"
)

// AuthState is the room state an event is checked against: the state
// before the event, the current state (soft failure), or the event's own
// auth_events (CheckAuthEvents). Each method returns nil when that state
// is absent. Only these five kinds of state take part in authorization.
type AuthState interface {
	Create() *events.Event                       // m.room.create
	PowerLevels() *events.Event                  // m.room.power_levels
	JoinRules() *events.Event                    // m.room.join_rules
	Member(userID string) *events.Event          // m.room.member of userID
	ThirdPartyInvite(token string) *events.Event // m.room.third_party_invite keyed by token
}

// StateMap is room state keyed by state tuple, the shape the rooms layer
// keeps it in. A map[events.StateTuple]*events.Event converts to it without
// a copy: authrules.StateMap(roomState).
type StateMap map[events.StateTuple]*events.Event

var _ AuthState = StateMap(nil)

// The AuthState methods of StateMap look up the tuple each one names.

func (m StateMap) Create() *events.Event      { return m[events.StateTuple{Type: typeCreate}] }
func (m StateMap) PowerLevels() *events.Event { return m[events.StateTuple{Type: typePowerLevels}] }
func (m StateMap) JoinRules() *events.Event   { return m[events.StateTuple{Type: typeJoinRules}] }
func (m StateMap) Member(userID string) *events.Event {
	return m[events.StateTuple{Type: typeMember, StateKey: userID}]
}
func (m StateMap) ThirdPartyInvite(token string) *events.Event {
	return m[events.StateTuple{Type: typeThirdPartyInvite, StateKey: token}]
}

// memberFields is what the rules read from m.room.member content.
type memberFields struct {
	membership    string
	hasMembership bool // content.membership is present and a string
	// authoriser is content.join_authorised_via_users_server; hasAuthoriser
	// is set when the key is present, whatever its value.
	authoriser    string
	hasAuthoriser bool
	// thirdParty is content.third_party_invite, nil when absent.
	thirdParty json.RawMessage
	// token is content.third_party_invite.signed.token, "" when absent.
	token string
}

func parseMember(content json.RawMessage) (memberFields, error) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(content, &c); err != nil || c == nil {
		return memberFields{}, fmt.Errorf("content is not a JSON object")
	}
	var f memberFields
	if raw, ok := c["membership"]; ok && json.Unmarshal(raw, &f.membership) == nil {
		f.hasMembership = raw[0] == '"'
	}
	if raw, ok := c["join_authorised_via_users_server"]; ok {
		f.hasAuthoriser = true
		_ = json.Unmarshal(raw, &f.authoriser) // left "" unless a string
	}
	if raw, ok := c["third_party_invite"]; ok {
		f.thirdParty = raw
		var t struct {
			Signed struct {
				Token string `json:"token"`
			} `json:"signed"`
		}
		_ = json.Unmarshal(raw, &t)
		f.token = t.Signed.Token
	}
	return f, nil
}

// AuthEventTuples is the state a new event of room version v must cite as
// its auth_events, per the server-server spec's "auth events selection":
// the create event (not from v12, where the room ID names it), the power
// levels, the sender's membership, and for m.room.member events the
// target's membership, the join rules (join, invite and knock), the
// third-party invite named by its token, and, in versions with restricted
// rooms (v8 on), the membership of the user in
// join_authorised_via_users_server. An m.room.create event cites nothing.
// The caller includes each tuple that is present in the room state and
// skips the rest.
// https://spec.matrix.org/latest/server-server-api/#auth-events-selection
func AuthEventTuples(v events.RoomVersion, evType string, stateKey *string, sender string, content json.RawMessage) []events.StateTuple {
	if evType == typeCreate {
		return nil
	}
	vr := rulesOf[v]
	tuples := make([]events.StateTuple, 0, 6)
	add := func(t events.StateTuple) {
		for _, have := range tuples {
			if have == t {
				return
			}
		}
		tuples = append(tuples, t)
	}
	if !vr.privilegedCreators {
		add(events.StateTuple{Type: typeCreate})
	}
	add(events.StateTuple{Type: typePowerLevels})
	add(events.StateTuple{Type: typeMember, StateKey: sender})
	if evType != typeMember || stateKey == nil {
		return tuples
	}
	add(events.StateTuple{Type: typeMember, StateKey: *stateKey})
	m, err := parseMember(content)
	if err != nil {
		return tuples
	}
	switch m.membership {
	case MembershipJoin, MembershipInvite, MembershipKnock:
		add(events.StateTuple{Type: typeJoinRules})
	}
	if m.membership == MembershipInvite && m.thirdParty != nil && m.token != "" {
		add(events.StateTuple{Type: typeThirdPartyInvite, StateKey: m.token})
	}
	if vr.restricted && m.membership == MembershipJoin && m.authoriser != "" {
		add(events.StateTuple{Type: typeMember, StateKey: m.authoriser})
	}
	return tuples
}

// CheckAuthEvents applies rule 2 (v12: rules 2 and 3) to an event received
// with auth_events, and returns them as the AuthState to check it against
// with Allowed. authEvents are the events ev.AuthEvents names, in any
// order. roomCreate is the create event the event's room ID names: from
// v12 auth_events do not cite it and it joins the returned state; before,
// it is ignored. The caller must already have refused ev if any of them
// was itself rejected (rule 2.3): this package cannot know.
func CheckAuthEvents(ev *events.Event, authEvents []*events.Event, roomCreate *events.Event) (StateMap, error) {
	vr, err := rules(ev.Version)
	if err != nil {
		return nil, err
	}
	if len(authEvents) != len(ev.AuthEvents) {
		return nil, forbid("auth_events names %d events but %d were given", len(ev.AuthEvents), len(authEvents))
	}
	wanted := make(map[string]int, len(ev.AuthEvents))
	for _, id := range ev.AuthEvents {
		wanted[id]++
	}
	allowed := make(map[events.StateTuple]bool)
	for _, t := range AuthEventTuples(ev.Version, ev.Type, ev.StateKey, ev.Sender, ev.Content) {
		allowed[t] = true
	}
	st := make(StateMap, len(authEvents))
	for _, ae := range authEvents {
		if ae == nil {
			return nil, forbid("auth event missing")
		}
		if wanted[ae.ID] == 0 {
			return nil, forbid("auth event %s is not in the event's auth_events", ae.ID)
		}
		wanted[ae.ID]--
		if !ae.IsState() {
			return nil, forbid("auth event %s is not a state event", ae.ID)
		}
		if ae.RoomID != ev.RoomID {
			return nil, forbid("auth event %s belongs to room %s, not %s", ae.ID, ae.RoomID, ev.RoomID)
		}
		t := ae.Tuple()
		if _, dup := st[t]; dup {
			return nil, forbid("auth_events has two entries for (%s, %q)", t.Type, t.StateKey) // 2.1
		}
		if !allowed[t] {
			return nil, forbid("auth_events entry (%s, %q) is not one the auth events selection picks", t.Type, t.StateKey) // 2.2
		}
		st[t] = ae
	}
	if ev.Type == typeCreate {
		return st, nil
	}
	if vr.privilegedCreators { // v12 rule 2
		if roomCreate == nil || roomCreate.Type != typeCreate || events.RoomIDForCreateEvent(roomCreate.ID) != ev.RoomID {
			return nil, forbid("room %s is not named by a known m.room.create event", ev.RoomID)
		}
		st[events.StateTuple{Type: typeCreate}] = roomCreate
		return st, nil
	}
	if st.Create() == nil {
		return nil, forbid("auth_events has no m.room.create event") // 2.4
	}
	return st, nil
}

// CurrentPowerLevels is the power levels in force in st for room version
// v: the parsed m.room.power_levels event, or NoPowerLevels with the room's
// creator when there is none. It fails if st has no create event, or if
// the power levels event does not parse (which an accepted event cannot).
//
// From v12 the levels know the room's creators (Creators), whose level is
// InfiniteLevel with or without a power levels event.
func CurrentPowerLevels(v events.RoomVersion, st AuthState) (PowerLevels, error) {
	vr, err := rules(v)
	if err != nil {
		return PowerLevels{}, err
	}
	create := st.Create()
	var p PowerLevels
	if pl := st.PowerLevels(); pl != nil {
		if p, err = ParsePowerLevels(v, pl.Content); err != nil {
			return PowerLevels{}, fmt.Errorf("%w: current power levels %s: %w", ErrForbidden, pl.ID, err)
		}
	} else {
		if create == nil {
			return PowerLevels{}, forbid("no m.room.create event in the auth state")
		}
		p = NoPowerLevels(creatorOf(v, create))
	}
	if vr.privilegedCreators {
		if create == nil {
			return PowerLevels{}, forbid("no m.room.create event in the auth state")
		}
		p = p.withCreators(Creators(v, create))
	}
	return p, nil
}

// creatorOf is the room's creator: content.creator up to v10; from v11 the
// create event's sender, since the creator property was removed.
func creatorOf(v events.RoomVersion, create *events.Event) string {
	if rulesOf[v].creatorInContent {
		var c struct {
			Creator string `json:"creator"`
		}
		_ = json.Unmarshal(create.Content, &c)
		return c.Creator
	}
	return create.Sender
}

// RequiredSigners lists the servers whose signatures ev must carry for the
// authorization rules to hold: the sender's server, in v1 and v2 the event
// ID's server, and for m.room.member events with
// join_authorised_via_users_server that user's server (rule 4.2, from v8).
// Allowed verifies no signatures; the caller checks these before.
func RequiredSigners(ev *events.Event) []string {
	servers := []string{events.ServerOf(ev.Sender)}
	// v1 and v2: also the server of the event ID (rooms/v3.md).
	if events.SenderChoosesEventID(ev.Version) {
		if s := events.ServerOf(ev.ID); s != "" && s != servers[0] {
			servers = append(servers, s)
		}
	}
	if ev.Type != typeMember || !rulesOf[ev.Version].restricted {
		return servers // before v8 the key has no meaning
	}
	m, err := parseMember(ev.Content)
	if err != nil || !m.hasAuthoriser {
		return servers
	}
	if s := events.ServerOf(m.authoriser); s != "" && s != servers[0] {
		servers = append(servers, s)
	}
	return servers
}
