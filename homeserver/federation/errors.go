package federation

import (
	"errors"

	"github.com/salonhq/salon/internal/mxerr"
)

var (
	// ErrDisabled is returned by outbound calls when federation is off.
	ErrDisabled = errors.New("federation: disabled")
	// ErrDenied is returned for a server the allow and deny lists refuse.
	ErrDenied = errors.New("federation: server not allowed")
	// ErrUnknownKey is returned when a server's key cannot be found.
	ErrUnknownKey = errors.New("federation: unknown server key")
	// ErrBadResponse is returned for an answer that does not parse or
	// does not verify.
	ErrBadResponse = errors.New("federation: bad response")
	// ErrUnreachable is returned when a server cannot be reached.
	ErrUnreachable = errors.New("federation: server unreachable")
)

// RemoteError is a Matrix error answered by another server.
type RemoteError struct {
	Status  int
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	return "federation: remote answered " + e.Code + ": " + e.Message
}

// unauthorized is the 401 the spec gives for a request whose X-Matrix
// authorization is missing or does not verify.
func unauthorized(format string, args ...any) *mxerr.Error {
	return mxerr.New(mxerr.Unauthorized, format, args...)
}
