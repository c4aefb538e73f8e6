package ldap

import "errors"

var (
	// ErrUnavailable: the directory cannot be reached or refused the
	// service account. Sign-in answers 503; local accounts are unaffected.
	ErrUnavailable = errors.New("ldap: directory unavailable")
	// ErrNotInDirectory: no entry matches the login name (or it no longer
	// matches the user filter).
	ErrNotInDirectory = errors.New("ldap: not in the directory")
)
