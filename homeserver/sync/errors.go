package sync

import (
	"errors"
	"fmt"

	"github.com/salonhq/salon/internal/mxerr"
)

// Sentinel errors. The errors this package returns wrap one of them and a
// *mxerr.Error carrying the wire code, so handlers can both test with
// errors.Is and write the response with mxerr.Write.
var (
	// ErrBadToken: a since, from or to token that this server did not make
	// (M_INVALID_PARAM, 400).
	ErrBadToken = errors.New("sync: malformed stream token")
	// ErrBadFilter: a filter that is not valid JSON of the filter's shape
	// (M_BAD_JSON) or has a value out of range (M_INVALID_PARAM).
	ErrBadFilter = errors.New("sync: invalid filter")
)

func badToken(tok string) error {
	return fmt.Errorf("%w: %w", ErrBadToken, mxerr.InvalidParamf("Malformed token %q", tok))
}

func badFilterJSON(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrBadFilter, mxerr.BadJSONf(format, args...))
}

func badFilterParam(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrBadFilter, mxerr.InvalidParamf(format, args...))
}
