package homeserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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

// RotateSigningKey replaces dataDir/signing.key with a new key, keeping the
// old file as signing.key.VERSION.old. Run it while the server is stopped:
// at its next start the new key signs, and the old one is published in
// /_matrix/key/v2/server's old_verify_keys so that other servers can still
// check what it signed. It returns the old and the new key IDs.
func RotateSigningKey(dataDir string) (oldID, newID string, err error) {
	path := filepath.Join(dataDir, "signing.key")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	old, err := events.ParseSigningKeyFile(b)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	k, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	out, err := events.EncodeSigningKeyFile(k)
	if err != nil {
		return "", "", err
	}
	keep := path + "." + strings.TrimPrefix(old.ID, "ed25519:") + ".old"
	if err := os.WriteFile(keep, b, 0o600); err != nil {
		return "", "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", "", err
	}
	return old.ID, k.ID, nil
}
