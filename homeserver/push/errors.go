package push

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a rule that does not exist in the kind named:
	// 404 M_NOT_FOUND at the Client-Server edge.
	ErrNotFound = errors.New("push rule not found")

	// ErrInvalid reports a request the rules cannot take: an unknown kind, a
	// reserved or malformed rule ID, a content rule without a pattern, a
	// condition missing its parameters, an action that is neither a string
	// nor an object, or a before/after that names no user-defined rule.
	// 400 M_INVALID_PARAM (or M_BAD_JSON for a malformed body) at the edge.
	ErrInvalid = errors.New("invalid push rule")

	// ErrDefaultRule reports an attempt to delete a server-default rule.
	// Such rules can only be disabled or given other actions. 400 at the
	// edge (M_INVALID_PARAM); it does not wrap ErrInvalid so that callers
	// can tell the two apart.
	ErrDefaultRule = errors.New("server-default push rules cannot be deleted")
)

// invalid returns an error wrapping ErrInvalid that says what was wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// notFound returns an error wrapping ErrNotFound that names the rule.
func notFound(kind, ruleID string) error {
	return fmt.Errorf("%w: %s/%s", ErrNotFound, kind, ruleID)
}
