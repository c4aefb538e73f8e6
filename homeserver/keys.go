package homeserver

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/events"
)

// LoadOrCreateSigningKey reads the server's ed25519 signing key from
// dataDir/signing.key, generating it on first start (the file format is
// Synapse's, so keys can move between servers).
func LoadOrCreateSigningKey(dataDir string) (events.SigningKey, error) {
	path := filepath.Join(dataDir, "signing.key")
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := events.ParseSigningKeyFile(b)
		if err != nil {
			return k, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return events.SigningKey{}, err
	}
	k, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		return k, err
	}
	out, err := events.EncodeSigningKeyFile(k)
	if err != nil {
		return k, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return k, err
	}
	// Write then rename, so a crash never leaves half a key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return k, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return k, err
	}
	return k, nil
}

// serverKeys answers GET /_matrix/key/v2/server: the server's verify key,
// signed by itself, valid for a week; the answer is cached for a day.
type serverKeys struct {
	name string
	key  events.SigningKey
	now  func() time.Time

	mu      sync.Mutex
	body    []byte
	refresh time.Time
}

func newServerKeys(name string, key events.SigningKey) *serverKeys {
	return &serverKeys{name: name, key: key, now: time.Now}
}

func (s *serverKeys) json() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.body != nil && now.Before(s.refresh) {
		return s.body, nil
	}
	obj, err := json.Marshal(map[string]any{
		"server_name":     s.name,
		"valid_until_ts":  now.Add(7 * 24 * time.Hour).UnixMilli(),
		"old_verify_keys": map[string]any{},
		"verify_keys":     map[string]any{s.key.ID: map[string]string{"key": s.key.PublicBase64()}},
	})
	if err != nil {
		return nil, err
	}
	signed, err := events.SignJSON(obj, s.name, s.key)
	if err != nil {
		return nil, err
	}
	s.body, s.refresh = signed, now.Add(24*time.Hour)
	return signed, nil
}
