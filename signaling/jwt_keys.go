package signaling

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/salonhq/salon/internal/redact"
)

// KeyGrace is how long a key stays valid for verification after Rotate
// replaced it: long enough for every token it signed to expire
// (JWTConfig.TokenTTL is at most KeyGrace), so clients holding one can
// still connect and reconnect.
const KeyGrace = 24 * time.Hour

// KeySet holds the embedded SFU's LiveKit API keys: one current key that
// signs new tokens, and the keys it replaced, which verify tokens until
// their grace period ends. It is safe for concurrent use; Rotate and
// Reload swap the whole set at once.
//
// KeySet satisfies livekit/protocol/auth's KeyProvider, so the SFU can hand
// it to auth's verifier. Its secrets never reach logs: it prints REDACTED.
type KeySet struct {
	mu   sync.Mutex // serializes Rotate and Reload
	snap atomic.Pointer[keySnapshot]
	now  func() time.Time // time.Now; tests move it
}

var _ auth.KeyProvider = (*KeySet)(nil)

// keySnapshot is one immutable state of a KeySet.
type keySnapshot struct {
	current string
	keys    map[string]apiKey
}

// apiKey is one API key; NotAfter is zero for the current key.
type apiKey struct {
	Key      string    `json:"key"`
	Secret   string    `json:"secret"`
	Created  time.Time `json:"created"`
	NotAfter time.Time `json:"not_after,omitzero"`
}

// keysFile is the JSON kept on disk.
type keysFile struct {
	Current string   `json:"current"`
	Keys    []apiKey `json:"keys"`
}

const (
	keyIDRandomLen = 12 // "API" + 12 base62 characters, like LiveKit's own keys
	secretBytes    = 32
)

// LoadOrCreateKeys returns the key set kept in the file at path, creating
// it (mode 0600, in a directory made with mode 0700) with one fresh key
// when it does not exist. A key ID is "API" and 12 random characters; a
// secret is 32 random bytes as unpadded base64url text.
func LoadOrCreateKeys(path string) (*KeySet, error) {
	ks := &KeySet{now: time.Now}
	err := ks.Reload(path)
	if err == nil {
		return ks, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("signaling: keys directory: %w", err)
	}
	k, err := newAPIKey(ks.now())
	if err != nil {
		return nil, err
	}
	snap := &keySnapshot{current: k.Key, keys: map[string]apiKey{k.Key: k}}
	tmp, err := writeTemp(path, snap)
	if err != nil {
		return nil, err
	}
	// Link, unlike rename, fails when another process created the file
	// first; then theirs wins.
	err = os.Link(tmp, path)
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		if err := ks.Reload(path); err != nil {
			return nil, err
		}
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signaling: creating keys file: %w", err)
	}
	syncDir(filepath.Dir(path))
	ks.snap.Store(snap)
	return ks, nil
}

// Current returns the key and secret that sign new tokens.
func (ks *KeySet) Current() (key, secret string) {
	s := ks.snap.Load()
	return s.current, s.keys[s.current].Secret
}

// Secret returns the secret of key when it may still verify tokens: it is
// the current key, or a replaced one within its grace period.
func (ks *KeySet) Secret(key string) (string, bool) {
	s := ks.snap.Load()
	k, ok := s.keys[key]
	if !ok || (!k.NotAfter.IsZero() && !ks.now().Before(k.NotAfter)) {
		return "", false
	}
	return k.Secret, true
}

// GetSecret implements auth.KeyProvider: Secret, with "" for no.
func (ks *KeySet) GetSecret(key string) string {
	s, _ := ks.Secret(key)
	return s
}

// NumKeys implements auth.KeyProvider: how many keys verify tokens now.
func (ks *KeySet) NumKeys() int {
	s := ks.snap.Load()
	now := ks.now()
	n := 0
	for _, k := range s.keys {
		if k.NotAfter.IsZero() || now.Before(k.NotAfter) {
			n++
		}
	}
	return n
}

// Rotate makes a fresh key current. The key it replaces keeps verifying
// tokens for KeyGrace; keys whose grace has ended are dropped. The new set
// is written to path atomically before it takes effect, so a failed write
// leaves both the file and the set as they were.
func (ks *KeySet) Rotate(path string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	old := ks.snap.Load()
	k, err := newAPIKey(now)
	if err != nil {
		return err
	}
	next := &keySnapshot{current: k.Key, keys: map[string]apiKey{k.Key: k}}
	for id, o := range old.keys {
		if id == old.current {
			o.NotAfter = now.Add(KeyGrace)
		} else if !now.Before(o.NotAfter) {
			continue
		}
		next.keys[id] = o
	}
	tmp, err := writeTemp(path, next)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("signaling: replacing keys file: %w", err)
	}
	syncDir(filepath.Dir(path))
	ks.snap.Store(next)
	return nil
}

// Reload replaces the set with the one in the file at path, for a process
// whose keys were rotated by another (such as an admin command).
func (ks *KeySet) Reload(path string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("signaling: reading keys file: %w", err)
	}
	snap, err := parseKeys(b)
	if err != nil {
		return fmt.Errorf("signaling: keys file %s: %w", path, err)
	}
	ks.snap.Store(snap)
	return nil
}

func parseKeys(b []byte) (*keySnapshot, error) {
	var f keysFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	snap := &keySnapshot{current: f.Current, keys: make(map[string]apiKey, len(f.Keys))}
	var problems []error
	for i, k := range f.Keys {
		switch {
		case k.Key == "":
			problems = append(problems, fmt.Errorf("keys[%d]: no key ID", i))
		case len(k.Secret) < minAPISecretLen:
			problems = append(problems, fmt.Errorf("keys[%d] (%s): secret holds %d bytes, want at least %d", i, k.Key, len(k.Secret), minAPISecretLen))
		case snap.keys[k.Key].Key != "":
			problems = append(problems, fmt.Errorf("keys[%d]: key %s appears twice", i, k.Key))
		case k.Key == f.Current && !k.NotAfter.IsZero():
			problems = append(problems, fmt.Errorf("keys[%d]: the current key %s has not_after set", i, k.Key))
		default:
			snap.keys[k.Key] = k
		}
	}
	if _, ok := snap.keys[f.Current]; !ok && len(problems) == 0 {
		problems = append(problems, fmt.Errorf("current key %q is not among the keys", f.Current))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return snap, nil
}

func newAPIKey(now time.Time) (apiKey, error) {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	id := make([]byte, 0, 3+keyIDRandomLen)
	id = append(id, "API"...)
	for range keyIDRandomLen {
		// rand.Text would do, but its alphabet is base32; keep LiveKit's look.
		var b [1]byte
		for {
			if _, err := rand.Read(b[:]); err != nil {
				return apiKey{}, fmt.Errorf("signaling: generating key ID: %w", err)
			}
			if b[0] < 248 { // 248 = 4×62: no modulo bias
				break
			}
		}
		id = append(id, base62[int(b[0])%62])
	}
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return apiKey{}, fmt.Errorf("signaling: generating key secret: %w", err)
	}
	return apiKey{
		Key:     string(id),
		Secret:  base64.RawURLEncoding.EncodeToString(raw),
		Created: now.UTC().Truncate(time.Second),
	}, nil
}

// writeTemp writes snap to a fresh mode-0600 file beside path, synced,
// and returns its name.
func writeTemp(path string, snap *keySnapshot) (string, error) {
	f := keysFile{Current: snap.current}
	f.Keys = append(f.Keys, snap.keys[snap.current])
	for id, k := range snap.keys {
		if id != snap.current {
			f.Keys = append(f.Keys, k)
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", fmt.Errorf("signaling: encoding keys: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("signaling: writing keys file: %w", err)
	}
	name := tmp.Name()
	werr := tmp.Chmod(0o600) // CreateTemp's mode already, whatever the umask; say so
	if werr == nil {
		_, werr = tmp.Write(b)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", fmt.Errorf("signaling: writing keys file: %w", werr)
	}
	return name, nil
}

// syncDir makes a rename or link in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// String implements fmt.Stringer without the secrets.
func (ks *KeySet) String() string {
	s := ks.snap.Load()
	if s == nil {
		return "KeySet{}"
	}
	return "KeySet{current: " + s.current + ", keys: " + strconv.Itoa(len(s.keys)) + ", secrets: " + redact.Redacted + "}"
}

// GoString implements fmt.GoStringer, for %#v.
func (ks *KeySet) GoString() string { return ks.String() }

// LogValue implements slog.LogValuer.
func (ks *KeySet) LogValue() slog.Value {
	s := ks.snap.Load()
	if s == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.String("current", s.current), slog.Int("keys", len(s.keys)), slog.String("secrets", redact.Redacted))
}
