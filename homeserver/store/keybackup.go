package store

import (
	"context"
	"errors"
	"fmt"
)

// KeyBackup is one version of a user's server-side key backup (spec
// "Server-side key backups"). Versions are numbered per user from 1 and a
// number is never given out twice, even after its backup was deleted, so
// a client holding a stale version can never write into a newer backup.
type KeyBackup struct {
	UserID    string
	Version   int64
	Algorithm string
	AuthData  []byte // a JSON object, opaque to the server
	// ETag changes whenever the version's stored keys change.
	ETag  int64
	Count int64 // keys stored in this version
}

// BackupSession is one backed-up megolm session key.
type BackupSession struct {
	RoomID            string
	SessionID         string
	FirstMessageIndex int64
	ForwardedCount    int64
	IsVerified        bool
	SessionData       []byte // a JSON object, encrypted by the client
}

// Replaces reports whether s, uploaded for a session the backup already
// holds as old, takes its place. The rule is the spec's (v1.16,
// "Server-side key backups"): a different is_verified keeps the verified
// key; else the lower first_message_index wins; else the lower
// forwarded_count wins. On a complete tie the stored key stays, so
// uploading the same key again changes nothing (nor the etag).
func (s BackupSession) Replaces(old BackupSession) bool {
	if s.IsVerified != old.IsVerified {
		return s.IsVerified
	}
	if s.FirstMessageIndex != old.FirstMessageIndex {
		return s.FirstMessageIndex < old.FirstMessageIndex
	}
	return s.ForwardedCount < old.ForwardedCount
}

// ErrWrongBackupVersion is matched (errors.Is) by a *WrongBackupVersion.
var ErrWrongBackupVersion = errors.New("store: not the latest key backup version")

// WrongBackupVersion is returned when keys are written to a backup version
// that exists (or existed) but is not the user's latest.
type WrongBackupVersion struct {
	Current int64 // the user's latest version
}

func (e *WrongBackupVersion) Error() string {
	return fmt.Sprintf("%v (latest is %d)", ErrWrongBackupVersion, e.Current)
}

func (e *WrongBackupVersion) Is(target error) bool { return target == ErrWrongBackupVersion }

// BackupKeysFilter narrows a read or delete of backed-up keys to a room
// ("" for all rooms) and, within it, a session ("" for all sessions).
type BackupKeysFilter struct {
	RoomID    string
	SessionID string
}

// KeyBackups stores users' server-side key backups. Every method is
// scoped to one user: no call reads or changes another user's backup.
type KeyBackups interface {
	// CreateKeyBackup stores a new, empty backup version and returns its
	// number, one above every version the user ever had.
	CreateKeyBackup(ctx context.Context, userID, algorithm string, authData []byte) (int64, error)
	// KeyBackup returns a version; ErrNotFound when it never existed or
	// was deleted.
	KeyBackup(ctx context.Context, userID string, version int64) (KeyBackup, error)
	// LatestKeyBackup returns the newest version not deleted; ErrNotFound
	// when there is none.
	LatestKeyBackup(ctx context.Context, userID string) (KeyBackup, error)
	// UpdateKeyBackupAuthData replaces a version's auth_data; ErrNotFound
	// when the version never existed or was deleted.
	UpdateKeyBackupAuthData(ctx context.Context, userID string, version int64, authData []byte) error
	// DeleteKeyBackup deletes a version and every key in it. Deleting a
	// version deleted before succeeds; ErrNotFound when it never existed.
	DeleteKeyBackup(ctx context.Context, userID string, version int64) error
	// PutBackupKeys stores sessions (at most one per room and session ID)
	// in the user's latest version, each one only where it Replaces the
	// stored key, all in one transaction, and returns the version after
	// the write (its ETag and Count). ErrNotFound when the version never
	// existed or no version is left; *WrongBackupVersion when it is
	// (or was) an older one. On any error nothing is stored.
	PutBackupKeys(ctx context.Context, userID string, version int64, sessions []BackupSession) (KeyBackup, error)
	// BackupKeys returns the keys of a version matching f, ordered by room
	// and session ID; ErrNotFound when the version never existed or was
	// deleted (a filter that matches nothing is an empty list).
	BackupKeys(ctx context.Context, userID string, version int64, f BackupKeysFilter) ([]BackupSession, error)
	// DeleteBackupKeys deletes the keys of a version matching f (of any
	// version still there, not only the latest) and returns the version
	// after the delete; ErrNotFound when the version never existed or was
	// deleted.
	DeleteBackupKeys(ctx context.Context, userID string, version int64, f BackupKeysFilter) (KeyBackup, error)
}
