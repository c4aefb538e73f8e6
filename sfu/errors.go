package sfu

import "errors"

// Errors returned by Join and Resume. signaling maps them to HTTP statuses
// and LiveKit disconnect reasons.
var (
	// ErrClosed: the SFU is shut down.
	ErrClosed = errors.New("sfu: closed")
	// ErrRoomFull: the call has sfu.max_participants participants.
	ErrRoomFull = errors.New("sfu: call is full")
	// ErrNoSession: a resume named a participant the SFU no longer has.
	ErrNoSession = errors.New("sfu: no such session to resume")
)
