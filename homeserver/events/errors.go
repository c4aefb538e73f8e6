package events

import "errors"

// Sentinel errors. Functions wrap them with %w and add detail, so callers
// test with errors.Is; the Matrix errcode is chosen at the edge (mxerr).
var (
	// ErrBadJSON: the input is not JSON, or not JSON the spec's canonical
	// form can represent (floats, integers outside ±(2^53-1), duplicate
	// keys, invalid UTF-8, lone surrogates). Maps to M_BAD_JSON / M_NOT_JSON.
	ErrBadJSON = errors.New("events: bad JSON")

	// ErrBadEvent: well-formed JSON that is not a valid PDU or Proto for the
	// room version (missing or mistyped field, malformed identifier).
	ErrBadEvent = errors.New("events: invalid event")

	// ErrTooLarge: the event, or one of its size-limited keys, exceeds the
	// spec's limits (65536 bytes for the whole PDU, 255 bytes for sender,
	// room_id, type and state_key). Maps to M_TOO_LARGE.
	ErrTooLarge = errors.New("events: too large")

	// ErrUnsupportedVersion: a room version this package does not implement.
	ErrUnsupportedVersion = errors.New("events: unsupported room version")

	// ErrBadKey: a malformed signing key, key ID, public key or key file.
	ErrBadKey = errors.New("events: bad signing key")

	// ErrMissingSignature: the object carries no signature from the given
	// server with the given key ID.
	ErrMissingSignature = errors.New("events: missing signature")

	// ErrBadSignature: a signature is present but malformed or does not
	// verify.
	ErrBadSignature = errors.New("events: bad signature")

	// ErrBadHash: the event's hashes.sha256 is missing, malformed, or does
	// not match its content. Per the server-server API such an event is
	// kept only in its redacted form, not rejected.
	ErrBadHash = errors.New("events: content hash mismatch")
)
