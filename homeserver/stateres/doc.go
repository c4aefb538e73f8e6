// Package stateres owns state resolution for room versions 2 to 12: given
// the room states at the ends of concurrent branches of a room's DAG, it
// computes the one state every server agrees the room is in.
//
// Versions 2 to 11 use the algorithm of
// https://spec.matrix.org/latest/rooms/v2/#state-resolution ("v2"); version
// 12 uses v2.1 (MSC4297), which widens the full conflicted set with the
// conflicted state subgraph and starts the iterative auth checks of the
// power events from an empty state rather than the unconflicted one.
// Version 1 (the original algorithm) is not supported.
//
// The package is pure: it reads events through the Source its caller
// provides, checks them with the authorization rules of homeserver/authrules
// (or an Authorizer the caller supplies), keeps nothing between calls and
// does no I/O of its own. Which branches to resolve, where the events come
// from and what to do with the result belong to the caller (rooms, when it
// accepts PDUs over federation).
package stateres
