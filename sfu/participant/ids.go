package participant

import (
	"crypto/rand"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns prefix followed by 12 random base62 characters, the shape
// of LiveKit's SIDs ("PA_", "TR_", "RM_"); livekit-client checks the
// prefixes.
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(prefix)+len(b))
	copy(out, prefix)
	for i, v := range b {
		out[len(prefix)+i] = idAlphabet[int(v)%len(idAlphabet)]
	}
	return string(out)
}
