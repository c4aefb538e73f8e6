package credential

import "errors"

var (
	// ErrMalformed: the username is not in the EXPIRY:USERID form.
	ErrMalformed = errors.New("credential: malformed TURN username")
	// ErrExpired: the username's expiry time has passed.
	ErrExpired = errors.New("credential: TURN credential expired")
)
