package stateres

import "errors"

var (
	// ErrMissingEvent is wrapped when an event a state or an auth chain
	// names cannot be had from the Source. Resolution cannot go on without
	// it: the caller fetches it (from the origin server, /event_auth) first.
	ErrMissingEvent = errors.New("event needed for state resolution is missing")

	// ErrUnsupportedRoomVersion reports a room version without a state
	// resolution algorithm here (version 1, or an unknown one).
	ErrUnsupportedRoomVersion = errors.New("state resolution: unsupported room version")
)
