package turn

import "errors"

var (
	// ErrClosed: the server is shut down.
	ErrClosed = errors.New("turn: server closed")
	// ErrUserQuota: the user already holds max_allocations_per_user
	// allocations. (pion answers 508 Insufficient Capacity.)
	ErrUserQuota = errors.New("turn: allocation quota reached for user")
	// ErrTCPRelay: RFC 6062 TCP relay allocations are not offered.
	ErrTCPRelay = errors.New("turn: TCP relay allocations are not supported")
	// ErrNoListener: neither the configuration nor Params gave a socket.
	ErrNoListener = errors.New("turn: no listener")
)
