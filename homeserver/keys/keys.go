// Package keys is the server half of end-to-end encryption: device keys,
// one-time and fallback keys, cross-signing keys and signatures, the
// send-to-device queue, dehydrated devices (MSC3814), and server-side key
// backup (backup.go). Clients encrypt and decrypt; this package stores
// public keys and opaque ciphertext and hands them to the right devices.
// It never sees a private key or a plaintext message.
//
// Every write that /sync shows (a device list change, a queued to-device
// message) takes a stream position in the store, and this package reports
// it to the Notifier itself, waking the users it concerns: the service
// that writes is the one that wakes.
//
// Spec: Client-Server API, "End-to-End Encryption" (key management API),
// "Send-to-Device messaging", "Cross-signing"; MSC3814 for dehydrated
// devices; MSC3967 for uploading the first cross-signing keys without
// user-interactive auth.
package keys

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Notifier wakes /sync long-polls after a write at a stream position.
type Notifier interface {
	Notify(pos int64, roomID string, userIDs []string)
}

// Params configure a Service.
type Params struct {
	Store      store.Store
	ServerName string
	Notifier   Notifier
	// RoomMates lists the users who share a joined room with userID, the
	// user included: whom a change of the user's devices concerns.
	RoomMates func(ctx context.Context, userID string) ([]string, error)
	Logger    *slog.Logger
	Now       func() time.Time
	// MaxQueue bounds each device's undelivered to-device messages
	// (default 1000).
	MaxQueue int
	// DeviceChanged hears of each change of a local user's device list
	// (a device's keys uploaded, a device deleted) at its position, for
	// the other servers sharing a room with the user (nil: nobody).
	DeviceChanged func(ctx context.Context, c DeviceChange)
}

// DeviceChange is one change of a user's device list: stream position,
// device, deleted or not, and its device keys as uploaded (nil when
// deleted).
type DeviceChange struct {
	UserID   string
	DeviceID string
	StreamID int64
	Deleted  bool
	Keys     json.RawMessage
}

// Service is the end-to-end encryption key store and to-device router.
type Service struct {
	p      Params
	remote Remote
}

// Limits of one request.
const (
	maxKeysPerUpload  = 1000
	maxKeyJSON        = 4096
	maxQueryUsers     = 1000
	maxClaimDevices   = 1000
	maxToDeviceTarget = 5000
	maxToDeviceBytes  = 65536
	maxIDLength       = 255
)

// New returns a Service.
func New(p Params) *Service {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.MaxQueue == 0 {
		p.MaxQueue = 1000
	}
	return &Service{p: p}
}

// notifyDeviceChange wakes the user's room-mates after a device-list change
// at pos.
func (s *Service) notifyDeviceChange(ctx context.Context, userID string, pos int64) {
	if pos == 0 {
		return
	}
	users := []string{userID}
	if s.p.RoomMates != nil {
		mates, err := s.p.RoomMates(ctx, userID)
		if err != nil {
			s.p.Logger.Warn("listing room-mates for a device change", "user", userID, "err", err)
		} else {
			users = mates
		}
	}
	s.p.Notifier.Notify(pos, "", users)
}

// deviceKeysJSON is the device_keys object of an upload.
type deviceKeysJSON struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
	// Signatures is checked for presence here; verifySelfSigned reads it.
	Signatures json.RawMessage `json:"signatures"`
}

// UploadRequest is the body of POST /keys/upload.
type UploadRequest struct {
	DeviceKeys   json.RawMessage            `json:"device_keys"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
}

// Upload stores a device's keys and returns its one-time key counts.
func (s *Service) Upload(ctx context.Context, userID, deviceID string, req UploadRequest) (map[string]int, error) {
	var devKeys []byte
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		dk, err := s.checkDeviceKeys(ctx, userID, deviceID, req.DeviceKeys)
		if err != nil {
			return nil, err
		}
		devKeys = dk
	}
	if len(req.OneTimeKeys)+len(req.FallbackKeys) > maxKeysPerUpload {
		return nil, mxerr.New(mxerr.TooLarge, "At most %d keys per upload", maxKeysPerUpload)
	}
	otks, err := checkKeyMap("one_time_keys", req.OneTimeKeys)
	if err != nil {
		return nil, err
	}
	fbs, err := checkKeyMap("fallback_keys", req.FallbackKeys)
	if err != nil {
		return nil, err
	}
	algs := map[string]bool{}
	for _, k := range fbs {
		alg, _, _ := strings.Cut(k.KeyID, ":")
		if algs[alg] {
			return nil, mxerr.InvalidParamf("fallback_keys holds two keys of algorithm %s", alg)
		}
		algs[alg] = true
	}
	pos, err := s.p.Store.UploadKeys(ctx, userID, deviceID, devKeys, otks, fbs)
	if errors.Is(err, store.ErrExists) {
		return nil, mxerr.InvalidParamf("One-time key already exists with another value")
	}
	if err != nil {
		return nil, err
	}
	s.notifyDeviceChange(ctx, userID, pos)
	if devKeys != nil && pos != 0 && s.p.DeviceChanged != nil {
		s.p.DeviceChanged(ctx, DeviceChange{UserID: userID, DeviceID: deviceID, StreamID: pos, Keys: devKeys})
	}
	counts, err := s.p.Store.OneTimeKeyCounts(ctx, userID, deviceID)
	if err != nil {
		return nil, err
	}
	if _, ok := counts["signed_curve25519"]; !ok {
		counts["signed_curve25519"] = 0
	}
	return counts, nil
}

// checkDeviceKeys validates uploaded device keys and returns their stored
// (canonical, without "unsigned") form: they must be the caller's own
// device's, carry the device's ed25519 key, be signed by it, and, if the
// device has keys already, keep the same identity keys.
func (s *Service) checkDeviceKeys(ctx context.Context, userID, deviceID string, raw json.RawMessage) ([]byte, error) {
	var dk deviceKeysJSON
	if err := strictObject(raw, &dk); err != nil {
		return nil, mxerr.BadJSONf("device_keys: %v", err)
	}
	// A required field missing is a malformed body (M_BAD_JSON, as
	// Complement's "Rejects invalid device keys" expects); a field present
	// with a wrong value is M_INVALID_PARAM below.
	if dk.UserID == "" || dk.DeviceID == "" || dk.Algorithms == nil || dk.Keys == nil || len(dk.Signatures) == 0 {
		return nil, mxerr.BadJSONf("device_keys must have user_id, device_id, algorithms, keys and signatures")
	}
	if dk.UserID != userID || dk.DeviceID != deviceID {
		return nil, mxerr.InvalidParamf("device_keys must be the keys of this device (%s %s)", userID, deviceID)
	}
	if len(dk.Algorithms) == 0 || len(dk.Algorithms) > 16 {
		return nil, mxerr.InvalidParamf("device_keys.algorithms must list the device's algorithms")
	}
	for _, a := range dk.Algorithms {
		if !validAlgorithm(a) {
			return nil, mxerr.InvalidParamf("device_keys.algorithms: malformed algorithm %q", a)
		}
	}
	if len(dk.Keys) == 0 || len(dk.Keys) > 16 {
		return nil, mxerr.InvalidParamf("device_keys.keys must hold the device's keys")
	}
	for id, v := range dk.Keys {
		alg, dev, ok := strings.Cut(id, ":")
		if !ok || !validAlgorithm(alg) || dev != deviceID || v == "" || len(v) > 256 {
			return nil, mxerr.InvalidParamf("device_keys.keys: malformed key ID %q (want algorithm:%s)", id, deviceID)
		}
	}
	pub, err := ed25519Key(dk.Keys["ed25519:"+deviceID])
	if err != nil {
		return nil, mxerr.InvalidParamf("device_keys.keys must hold the device's ed25519 key: %v", err)
	}
	canon, err := events.CanonicalJSON(raw)
	if err != nil {
		return nil, mxerr.BadJSONf("device_keys: %v", err)
	}
	canon, err = withoutField(canon, "unsigned")
	if err != nil {
		return nil, mxerr.BadJSONf("device_keys: %v", err)
	}
	if err := events.VerifyJSON(canon, userID, "ed25519:"+deviceID, pub); err != nil {
		return nil, mxerr.InvalidParamf("device_keys are not signed by the device's own key: %v", err)
	}
	old, err := s.p.Store.DeviceKeys(ctx, []string{userID})
	if err != nil {
		return nil, err
	}
	for _, k := range old {
		if k.DeviceID != deviceID {
			continue
		}
		var prev deviceKeysJSON
		if json.Unmarshal(k.JSON, &prev) == nil && !sameKeys(prev.Keys, dk.Keys) {
			// A device's identity keys are what other devices verified;
			// new keys are a new device (log in again).
			return nil, mxerr.InvalidParamf("This device already has other identity keys; log in as a new device")
		}
	}
	return canon, nil
}

func sameKeys(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkKeyMap validates a one_time_keys or fallback_keys map.
func checkKeyMap(field string, m map[string]json.RawMessage) ([]store.KeyJSON, error) {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]store.KeyJSON, 0, len(m))
	for _, id := range ids {
		alg, kid, ok := strings.Cut(id, ":")
		if !ok || !validAlgorithm(alg) || !validKeyID(kid) {
			return nil, mxerr.InvalidParamf("%s: malformed key ID %q (want algorithm:id)", field, id)
		}
		v := m[id]
		if len(v) > maxKeyJSON {
			return nil, mxerr.New(mxerr.TooLarge, "%s: key %q is too large", field, id)
		}
		switch {
		case len(v) > 0 && v[0] == '"':
			var str string
			if json.Unmarshal(v, &str) != nil || str == "" {
				return nil, mxerr.BadJSONf("%s: key %q is not a key", field, id)
			}
		case len(v) > 0 && v[0] == '{':
			var obj struct {
				Key string `json:"key"`
			}
			if json.Unmarshal(v, &obj) != nil || obj.Key == "" {
				return nil, mxerr.BadJSONf("%s: key %q has no key", field, id)
			}
		default:
			return nil, mxerr.BadJSONf("%s: key %q must be a string or an object", field, id)
		}
		canon, err := events.CanonicalJSON(v)
		if err != nil {
			return nil, mxerr.BadJSONf("%s: key %q: %v", field, id, err)
		}
		out = append(out, store.KeyJSON{KeyID: id, JSON: canon})
	}
	return out, nil
}

// validAlgorithm accepts algorithm names such as signed_curve25519 or
// m.megolm.v1.aes-sha2: see plainToken.
func validAlgorithm(a string) bool { return plainToken(a, 64) }

// validKeyID accepts the ID part of a key ID (and device IDs).
func validKeyID(id string) bool { return plainToken(id, maxIDLength) }

// plainToken reports whether s is 1 to max bytes of printable ASCII
// without spaces, ':', quotes or backslashes.
func plainToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ed25519Key decodes an unpadded base64 ed25519 public key.
func ed25519Key(b64 string) (ed25519.PublicKey, error) {
	b, err := events.DecodeBase64(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("not an unpadded base64 ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// strictObject decodes a JSON object (not null, not another kind).
func strictObject(raw json.RawMessage, v any) error {
	t := strings.TrimSpace(string(raw))
	if t == "" || t[0] != '{' {
		return errors.New("must be an object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("wrong shape")
	}
	return nil
}

// withoutField returns the canonical object canon without a top-level
// field.
func withoutField(canon []byte, field string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(canon, &m); err != nil {
		return nil, err
	}
	if _, ok := m[field]; !ok {
		return canon, nil
	}
	delete(m, field)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return events.CanonicalJSON(b)
}

// isLocal reports whether userID is a user of this server.
func (s *Service) isLocal(userID string) bool {
	return strings.HasPrefix(userID, "@") && strings.HasSuffix(userID, ":"+s.p.ServerName)
}
