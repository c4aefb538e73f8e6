// Package authrules owns the authorization rules of the room versions Salon
// hosts (1 to 12): whether an event may enter a room given the state it is
// checked against, which state an event must cite as its auth_events, how
// m.room.power_levels content is read and validated, who a room's creators
// are and what power they have, and when a redaction may take effect.
//
// Everything here is a pure function of its arguments. The package does no
// I/O, keeps no state, verifies no signatures and imports only
// homeserver/events. Callers look events up, verify hashes and signatures
// (see RequiredSigners), and map the sentinel errors of errors.go to wire
// codes at their own edge.
//
// The rules are those of the room version specifications,
// https://spec.matrix.org/latest/rooms/v{1..12}/#authorization-rules; where
// the versions differ is listed in versions.go. Comments cite the v11
// numbering ("rule 4.3.5" is the restricted-join rule); v12 inserted a rule
// 2, so its later rules are numbered one higher.
//
// State resolution is not here: homeserver/stateres resolves the states of
// concurrent branches (v2, and v2.1 for v12), calling Allowed for its
// iterative auth checks.
package authrules
