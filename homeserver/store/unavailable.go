package store

import (
	"errors"
	"syscall"
)

// UnavailableError marks a failure that says the storage is out of
// service for now rather than that the request was wrong: the database
// cannot be reached or stopped answering, or its disk is full, read-only
// or failing. The request may succeed if retried later, so mxerr answers
// it 503 with Retry-After instead of 500 (docs/FAULTS.md). Err is the
// cause; it reaches the log, never the client.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "storage unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable is what mxerr looks for (through errors.As on an interface,
// so that it need not import this package).
func (e *UnavailableError) Unavailable() bool { return true }

// Unavailable wraps err in an *UnavailableError, unless it is nil or
// wraps one already.
func Unavailable(err error) error {
	if err == nil || IsUnavailable(err) {
		return err
	}
	return &UnavailableError{Err: err}
}

// IsUnavailable reports whether err is or wraps an *UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// FileUnavailable wraps err as Unavailable when it is a file system's
// refusal that a later retry may not meet: no space (ENOSPC, EDQUOT), a
// read-only or immutable file system (EROFS, EPERM, EACCES) or an I/O
// error (EIO). Other errors are returned as they are.
func FileUnavailable(err error) error {
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EPERM, syscall.EACCES, syscall.EIO} {
		if errors.Is(err, e) {
			return Unavailable(err)
		}
	}
	return err
}
