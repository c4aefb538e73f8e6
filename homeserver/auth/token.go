package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"

	"github.com/salonhq/salon/internal/redact"
)

// newToken returns a token of 32 random bytes with a prefix that tells what
// it is (so a leaked one is recognisable in a secret scanner).
func newToken(prefix string) redact.Secret {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the runtime's reader never fails
	}
	return redact.Secret(prefix + base64.RawURLEncoding.EncodeToString(b))
}

// HashToken is how tokens are stored and looked up. It takes a token as
// made (redact.Secret) or as a client sent it (string): this is the one
// place a made token's secret value is read for storing.
func HashToken[T ~string](t T) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// newDeviceID returns ten random upper-case letters, as Synapse does.
func newDeviceID() string { return RandomID(10) }

// RandomID returns n random upper-case letters.
func RandomID(n int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
