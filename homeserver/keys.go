package homeserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
