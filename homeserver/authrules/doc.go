// Package authrules owns the authorization rules of the room versions Salon
// hosts (10 and 11): whether an event may enter a room given the state it is
// checked against, which state an event must cite as its auth_events, how
// m.room.power_levels content is read and validated, and when a redaction may
// take effect.
//
// Everything here is a pure function of its arguments. The package does no
// I/O, keeps no state, verifies no signatures and imports only
// homeserver/events. Callers look events up, verify hashes and signatures
// (see RequiredSigners), and map the sentinel errors of errors.go to wire
// codes at their own edge.
//
// The rules are those of the room version specifications:
// https://spec.matrix.org/latest/rooms/v10/#authorization-rules and
// https://spec.matrix.org/latest/rooms/v11/#authorization-rules. Comments
// cite their numbering ("rule 4.3.5" is the restricted-join rule).
package authrules
