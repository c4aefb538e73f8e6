// Package keys holds the server half of end-to-end encryption. This file
// is server-side key backup (spec v1.16, "Server-side key backups"):
// versions of a user's backup and the encrypted megolm session keys in
// them. The server never sees a key in the clear; it keeps what clients
// upload, picks between two copies of a session by the spec's rule, and
// lets nobody but the owner read or change a backup.
package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Limits on what one backup upload may name.
const (
	maxBackupIDBytes        = 255 // room IDs, session IDs, algorithm names
	maxBackupVersionDigits  = 18  // fits an int64
	errUnknownBackupVersion = "Unknown backup version"
)

// Backups is the key backup service. Every call is scoped to the calling
// user: a version number names a version of that user's own backup.
type Backups struct {
	store store.KeyBackups
}

// NewBackups returns the key backup service over s.
func NewBackups(s store.KeyBackups) *Backups { return &Backups{store: s} }

// BackupInfo is the answer of GET /room_keys/version[/{version}].
type BackupInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int64           `json:"count"`
	ETag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// KeysUpdate is the answer of a PUT or DELETE of backed-up keys.
type KeysUpdate struct {
	ETag  string `json:"etag"`
	Count int64  `json:"count"`
}

// KeyData is one backed-up session key on the wire, both ways (spec
// KeyBackupData). Fields are pointers so that an upload missing one is
// told apart from one sending zero.
type KeyData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// RoomKeys is the backed-up keys of one room (spec RoomKeyBackup).
type RoomKeys struct {
	Sessions map[string]KeyData `json:"sessions"`
}

// VersionUpdate is the body of PUT /room_keys/version/{version}.
type VersionUpdate struct {
	Algorithm *string         `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   *string         `json:"version"`
}

func info(b store.KeyBackup) BackupInfo {
	return BackupInfo{
		Algorithm: b.Algorithm, AuthData: json.RawMessage(b.AuthData), Count: b.Count,
		ETag: strconv.FormatInt(b.ETag, 10), Version: strconv.FormatInt(b.Version, 10),
	}
}

func update(b store.KeyBackup) KeysUpdate {
	return KeysUpdate{ETag: strconv.FormatInt(b.ETag, 10), Count: b.Count}
}

// parseVersion reads a version as this server writes them: a positive
// decimal number without leading zeros. Anything else names no backup.
func parseVersion(s string) (int64, error) {
	unknown := mxerr.NotFoundf(errUnknownBackupVersion)
	if s == "" || len(s) > maxBackupVersionDigits || s[0] == '0' {
		return 0, unknown
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, unknown
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, unknown
	}
	return v, nil
}

// jsonObject compacts raw, which must be a JSON object.
func jsonObject(raw json.RawMessage, field string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, mxerr.BadJSONf("%s must be an object", field)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, mxerr.BadJSONf("%s must be an object", field)
	}
	return buf.Bytes(), nil
}

func checkAlgorithm(alg *string) (string, error) {
	if alg == nil {
		return "", mxerr.BadJSONf("algorithm is required")
	}
	if *alg == "" || len(*alg) > maxBackupIDBytes {
		return "", mxerr.InvalidParamf("algorithm must be a non-empty string of at most %d bytes", maxBackupIDBytes)
	}
	return *alg, nil
}

// notFound turns the store's ErrNotFound into the Matrix error.
func notFound(err error, msg string) error {
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("%s", msg)
	}
	return err
}

// Create is POST /room_keys/version: a new, empty backup version that
// becomes the latest.
func (s *Backups) Create(ctx context.Context, userID string, algorithm *string, authData json.RawMessage) (string, error) {
	alg, err := checkAlgorithm(algorithm)
	if err != nil {
		return "", err
	}
	auth, err := jsonObject(authData, "auth_data")
	if err != nil {
		return "", err
	}
	v, err := s.store.CreateKeyBackup(ctx, userID, alg, auth)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v, 10), nil
}

// Latest is GET /room_keys/version.
func (s *Backups) Latest(ctx context.Context, userID string) (BackupInfo, error) {
	b, err := s.store.LatestKeyBackup(ctx, userID)
	if err != nil {
		return BackupInfo{}, notFound(err, "No current backup version")
	}
	return info(b), nil
}

// Get is GET /room_keys/version/{version}.
func (s *Backups) Get(ctx context.Context, userID, version string) (BackupInfo, error) {
	v, err := parseVersion(version)
	if err != nil {
		return BackupInfo{}, err
	}
	b, err := s.store.KeyBackup(ctx, userID, v)
	if err != nil {
		return BackupInfo{}, notFound(err, errUnknownBackupVersion)
	}
	return info(b), nil
}

// Update is PUT /room_keys/version/{version}: only auth_data changes; the
// algorithm must be the backup's and a version in the body the path's.
func (s *Backups) Update(ctx context.Context, userID, version string, req VersionUpdate) error {
	v, err := parseVersion(version)
	if err != nil {
		return err
	}
	alg, err := checkAlgorithm(req.Algorithm)
	if err != nil {
		return err
	}
	auth, err := jsonObject(req.AuthData, "auth_data")
	if err != nil {
		return err
	}
	if req.Version != nil && *req.Version != version {
		return mxerr.InvalidParamf("version in the body does not match the version in the path")
	}
	b, err := s.store.KeyBackup(ctx, userID, v)
	if err != nil {
		return notFound(err, errUnknownBackupVersion)
	}
	if b.Algorithm != alg {
		return mxerr.InvalidParamf("Algorithm does not match")
	}
	return notFound(s.store.UpdateKeyBackupAuthData(ctx, userID, v, auth), errUnknownBackupVersion)
}

// Delete is DELETE /room_keys/version/{version}: the version and its keys
// go; deleting it again succeeds.
func (s *Backups) Delete(ctx context.Context, userID, version string) error {
	v, err := parseVersion(version)
	if err != nil {
		return err
	}
	return notFound(s.store.DeleteKeyBackup(ctx, userID, v), errUnknownBackupVersion)
}

func checkBackupID(kind, id string) error {
	if id == "" || len(id) > maxBackupIDBytes {
		return mxerr.InvalidParamf("%s must be a non-empty string of at most %d bytes", kind, maxBackupIDBytes)
	}
	return nil
}

// checkRoomID accepts what a room ID can look like in any room version
// ("!opaque:server", or "!hash" from version 12).
func checkRoomID(id string) error {
	if err := checkBackupID("room ID", id); err != nil {
		return err
	}
	if id[0] != '!' {
		return mxerr.InvalidParamf("%q is not a room ID", id)
	}
	return nil
}

// sessionKey validates one uploaded key and turns it into a store row.
func sessionKey(roomID, sessionID string, k KeyData) (store.BackupSession, error) {
	if err := checkRoomID(roomID); err != nil {
		return store.BackupSession{}, err
	}
	if err := checkBackupID("session ID", sessionID); err != nil {
		return store.BackupSession{}, err
	}
	switch {
	case k.FirstMessageIndex == nil:
		return store.BackupSession{}, mxerr.BadJSONf("first_message_index is required")
	case k.ForwardedCount == nil:
		return store.BackupSession{}, mxerr.BadJSONf("forwarded_count is required")
	case k.IsVerified == nil:
		return store.BackupSession{}, mxerr.BadJSONf("is_verified is required")
	case *k.FirstMessageIndex < 0:
		return store.BackupSession{}, mxerr.InvalidParamf("first_message_index must not be negative")
	case *k.ForwardedCount < 0:
		return store.BackupSession{}, mxerr.InvalidParamf("forwarded_count must not be negative")
	}
	data, err := jsonObject(k.SessionData, "session_data")
	if err != nil {
		return store.BackupSession{}, err
	}
	return store.BackupSession{
		RoomID: roomID, SessionID: sessionID, FirstMessageIndex: *k.FirstMessageIndex,
		ForwardedCount: *k.ForwardedCount, IsVerified: *k.IsVerified, SessionData: data,
	}, nil
}

// PutKeys is PUT /room_keys/keys[/{roomId}[/{sessionId}]]: every key is
// checked before any is stored, then each one replaces the stored copy of
// its session only where the spec's rule prefers it. Only the latest
// version takes keys.
func (s *Backups) PutKeys(ctx context.Context, userID, version string, rooms map[string]RoomKeys) (KeysUpdate, error) {
	v, err := parseVersion(version)
	if err != nil {
		return KeysUpdate{}, err
	}
	var keys []store.BackupSession
	for roomID, rk := range rooms {
		if rk.Sessions == nil {
			return KeysUpdate{}, mxerr.BadJSONf("sessions of %s must be an object", roomID)
		}
		for sessionID, k := range rk.Sessions {
			row, err := sessionKey(roomID, sessionID, k)
			if err != nil {
				return KeysUpdate{}, err
			}
			keys = append(keys, row)
		}
	}
	b, err := s.store.PutBackupKeys(ctx, userID, v, keys)
	var wrong *store.WrongBackupVersion
	if errors.As(err, &wrong) {
		return KeysUpdate{}, mxerr.New(mxerr.WrongRoomKeysVer, "Wrong backup version.").
			With("current_version", strconv.FormatInt(wrong.Current, 10))
	}
	if err != nil {
		return KeysUpdate{}, notFound(err, errUnknownBackupVersion)
	}
	return update(b), nil
}

// Keys is GET /room_keys/keys[/{roomId}[/{sessionId}]]: the stored keys
// of any version still there, grouped by room.
func (s *Backups) Keys(ctx context.Context, userID, version string, f store.BackupKeysFilter) (map[string]RoomKeys, error) {
	v, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	list, err := s.store.BackupKeys(ctx, userID, v, f)
	if err != nil {
		return nil, notFound(err, errUnknownBackupVersion)
	}
	out := map[string]RoomKeys{}
	for _, k := range list {
		rk, ok := out[k.RoomID]
		if !ok {
			rk = RoomKeys{Sessions: map[string]KeyData{}}
			out[k.RoomID] = rk
		}
		rk.Sessions[k.SessionID] = KeyData{
			FirstMessageIndex: &k.FirstMessageIndex, ForwardedCount: &k.ForwardedCount,
			IsVerified: &k.IsVerified, SessionData: json.RawMessage(k.SessionData),
		}
	}
	return out, nil
}

// DeleteKeys is DELETE /room_keys/keys[/{roomId}[/{sessionId}]], on any
// version still there.
func (s *Backups) DeleteKeys(ctx context.Context, userID, version string, f store.BackupKeysFilter) (KeysUpdate, error) {
	v, err := parseVersion(version)
	if err != nil {
		return KeysUpdate{}, err
	}
	b, err := s.store.DeleteBackupKeys(ctx, userID, v, f)
	if err != nil {
		return KeysUpdate{}, notFound(err, errUnknownBackupVersion)
	}
	return update(b), nil
}
