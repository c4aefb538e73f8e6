// Package push owns a user's push rules: the server-default rules of the
// Client-Server API, the user's changes to them as a storable record, and the
// evaluation of a rule set against an event that decides whether the event
// notifies and highlights.
//
// It serves two callers. The /pushrules handlers read and edit the rules
// through Defaults, Overrides, Apply, Get and Rules; /sync counts unread
// notifications and highlights through Compile and (*Compiled).Evaluate.
//
// Everything here is a pure function of its arguments: the package does no
// I/O, keeps no state and imports no other package of the project. Callers
// store Overrides as JSON, look up display names, member counts and power
// levels, and map the sentinel errors of errors.go to wire codes at their
// own edge.
//
// The rules, conditions and actions are those of
// https://spec.matrix.org/latest/client-server-api/#push-rules; key paths
// follow https://spec.matrix.org/latest/appendices/#dot-separated-property-paths
// and patterns https://spec.matrix.org/latest/appendices/#glob-style-matching.
package push
