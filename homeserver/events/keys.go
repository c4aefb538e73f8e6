package events

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// SigningKey is a server's ed25519 signing key and its key ID.
type SigningKey struct {
	ID   string // "ed25519:" + version, e.g. "ed25519:a_bcDE"
	Priv ed25519.PrivateKey
}

// keyAlgorithm is the only signing algorithm the spec defines.
const keyAlgorithm = "ed25519"

// keyIDLen is the length of the version part of generated key IDs.
const keyIDLen = 8

// keyVersionChars are the characters a key version may use: the server-
// server API's /key/v2/server says "[a-zA-Z0-9_]".
const keyVersionChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

// GenerateSigningKey makes a new key from rand, with a random key ID of the
// form "ed25519:" + 8 characters from [a-zA-Z0-9_].
func GenerateSigningKey(rand io.Reader) (SigningKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return SigningKey{}, fmt.Errorf("events: generating signing key: %w", err)
	}
	version := make([]byte, 0, keyIDLen)
	var buf [16]byte
	for len(version) < keyIDLen {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return SigningKey{}, fmt.Errorf("events: generating key ID: %w", err)
		}
		for _, b := range buf {
			// Rejection sampling keeps the choice uniform: 252 = 4×63.
			if b < 252 && len(version) < keyIDLen {
				version = append(version, keyVersionChars[b%63])
			}
		}
	}
	return SigningKey{ID: keyAlgorithm + ":" + string(version), Priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// SigningKeyFromSeed builds a key from its 32-byte ed25519 seed.
func SigningKeyFromSeed(keyID string, seed []byte) (SigningKey, error) {
	if !validKeyID(keyID) {
		return SigningKey{}, fmt.Errorf("%w: key ID %q", ErrBadKey, keyID)
	}
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKey, len(seed), ed25519.SeedSize)
	}
	return SigningKey{ID: keyID, Priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// validKeyID reports whether id is "ed25519:" followed by a non-empty
// version of [a-zA-Z0-9_].
func validKeyID(id string) bool {
	version, ok := strings.CutPrefix(id, keyAlgorithm+":")
	if !ok || version == "" {
		return false
	}
	for i := 0; i < len(version); i++ {
		if strings.IndexByte(keyVersionChars, version[i]) < 0 {
			return false
		}
	}
	return true
}

// check reports whether k can sign.
func (k SigningKey) check() error {
	if !validKeyID(k.ID) {
		return fmt.Errorf("%w: key ID %q", ErrBadKey, k.ID)
	}
	if len(k.Priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key is %d bytes", ErrBadKey, len(k.Priv))
	}
	return nil
}

// Public is the key's public half, or nil if the key is malformed.
func (k SigningKey) Public() ed25519.PublicKey {
	if len(k.Priv) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Priv.Public().(ed25519.PublicKey)
}

// PublicBase64 is the public key as /_matrix/key/v2/server publishes it.
func (k SigningKey) PublicBase64() string { return EncodeBase64(k.Public()) }

// String keeps the private key out of fmt output.
func (k SigningKey) String() string { return "SigningKey{" + k.ID + " REDACTED}" }

// GoString keeps the private key out of %#v output.
func (k SigningKey) GoString() string { return k.String() }

// LogValue keeps the private key out of logs.
func (k SigningKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("priv", "REDACTED"))
}

// EncodeSigningKeyFile writes k in Synapse's signing key file format: one
// line "ed25519 VERSION SEED", the seed in unpadded base64.
func EncodeSigningKeyFile(k SigningKey) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	version := strings.TrimPrefix(k.ID, keyAlgorithm+":")
	return []byte(keyAlgorithm + " " + version + " " + EncodeBase64(k.Priv.Seed()) + "\n"), nil
}

// ParseSigningKeyFile reads a Synapse-format signing key file. Blank lines
// are ignored; every other line must be a valid key. Synapse signs with the
// first key of the file, and so does this: it is the one returned.
func ParseSigningKeyFile(data []byte) (SigningKey, error) {
	var first SigningKey
	found := false
	for n, line := range bytes.Split(data, []byte("\n")) {
		parts := strings.Fields(string(line))
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 3 || parts[0] != keyAlgorithm {
			return SigningKey{}, fmt.Errorf("%w: key file line %d: want %q", ErrBadKey, n+1, "ed25519 VERSION SEED")
		}
		seed, err := DecodeBase64(parts[2])
		if err != nil {
			return SigningKey{}, fmt.Errorf("%w: key file line %d: seed: %v", ErrBadKey, n+1, err)
		}
		k, err := SigningKeyFromSeed(keyAlgorithm+":"+parts[1], seed)
		if err != nil {
			return SigningKey{}, fmt.Errorf("key file line %d: %w", n+1, err)
		}
		if !found {
			first, found = k, true
		}
	}
	if !found {
		return SigningKey{}, fmt.Errorf("%w: key file holds no key", ErrBadKey)
	}
	return first, nil
}

// EncodeBase64 is the spec's unpadded standard base64.
func EncodeBase64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// DecodeBase64 decodes standard base64 with or without padding, as the
// appendices ask of implementations.
func DecodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// SignJSON signs the JSON object obj as server serverName, following the
// appendices' "Signing JSON": "signatures" and "unsigned" are set aside, the
// rest is signed in canonical form, and the signature is merged into any
// existing signatures. The result is canonical JSON, "unsigned" included.
func SignJSON(obj []byte, serverName string, key SigningKey) ([]byte, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	canon, err := CanonicalJSON(obj)
	if err != nil {
		return nil, err
	}
	fields, err := objectFields(canon)
	if err != nil {
		return nil, err
	}
	return signFields(fields, fields, serverName, key)
}

// signFields signs the canonical form of signed (minus "signatures" and
// "unsigned") and returns out with the signature merged into out's
// "signatures". Events sign their redacted form but carry the signature on
// the full event, hence two field sets.
func signFields(signed, out []field, serverName string, key SigningKey) ([]byte, error) {
	return signPayload(joinObject(nil, without(signed, "signatures", "unsigned")), out, serverName, key)
}

// signPayload signs payload and returns out, as canonical JSON, with the
// signature merged into its "signatures".
func signPayload(payload []byte, out []field, serverName string, key SigningKey) ([]byte, error) {
	if !utf8.ValidString(serverName) {
		return nil, fmt.Errorf("%w: server name is not UTF-8", ErrBadKey)
	}
	sig := ed25519.Sign(key.Priv, payload)
	existing, _ := lookup(out, "signatures")
	sigs, err := addSignature(existing, serverName, key.ID, EncodeBase64(sig))
	if err != nil {
		return nil, err
	}
	out = set(append([]field(nil), out...), "signatures", sigs)
	return joinObject(make([]byte, 0, fieldsSize(out)), out), nil
}

// addSignature returns the canonical signatures object sigs (nil for none)
// with signatures[server][keyID] = sig.
func addSignature(sigs []byte, server, keyID, sig string) ([]byte, error) {
	var servers []field
	if sigs != nil {
		var err error
		if servers, err = objectFields(sigs); err != nil {
			return nil, fmt.Errorf("%w: signatures is not an object", ErrBadSignature)
		}
	}
	var keys []field
	if v, ok := lookup(servers, server); ok {
		var err error
		if keys, err = objectFields(v); err != nil {
			return nil, fmt.Errorf("%w: signatures[%q] is not an object", ErrBadSignature, server)
		}
	}
	keys = set(keys, keyID, jsonString(sig))
	servers = set(servers, server, joinObject(nil, keys))
	return joinObject(nil, servers), nil
}

// VerifyJSON checks the signature by serverName's key keyID on the JSON
// object obj, following the appendices' "Checking for a Signature".
func VerifyJSON(obj []byte, serverName, keyID string, pub ed25519.PublicKey) error {
	canon, err := CanonicalJSON(obj)
	if err != nil {
		return err
	}
	fields, err := objectFields(canon)
	if err != nil {
		return err
	}
	return verifyFields(fields, fields, serverName, keyID, pub)
}

// verifyFields checks the signature found in carrier's "signatures" against
// the canonical form of signed minus "signatures" and "unsigned".
func verifyFields(signed, carrier []field, serverName, keyID string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes", ErrBadKey, len(pub))
	}
	if !strings.HasPrefix(keyID, keyAlgorithm+":") {
		return fmt.Errorf("%w: unsupported key algorithm in %q", ErrBadKey, keyID)
	}
	sig, err := findSignature(carrier, serverName, keyID)
	if err != nil {
		return err
	}
	payload := joinObject(nil, without(signed, "signatures", "unsigned"))
	if !ed25519.Verify(pub, payload, sig) {
		return fmt.Errorf("%w: %s %s does not verify", ErrBadSignature, serverName, keyID)
	}
	return nil
}

// findSignature returns the decoded signatures[serverName][keyID].
func findSignature(fields []field, serverName, keyID string) ([]byte, error) {
	missing := fmt.Errorf("%w: none by %s with %s", ErrMissingSignature, serverName, keyID)
	sigs, ok := lookup(fields, "signatures")
	if !ok {
		return nil, missing
	}
	servers, err := objectFields(sigs)
	if err != nil {
		return nil, fmt.Errorf("%w: signatures is not an object", ErrBadSignature)
	}
	byServer, ok := lookup(servers, serverName)
	if !ok {
		return nil, missing
	}
	keys, err := objectFields(byServer)
	if err != nil {
		return nil, fmt.Errorf("%w: signatures[%q] is not an object", ErrBadSignature, serverName)
	}
	v, ok := lookup(keys, keyID)
	if !ok {
		return nil, missing
	}
	s, ok := stringValue(v)
	if !ok {
		return nil, fmt.Errorf("%w: signature is not a string", ErrBadSignature)
	}
	sig, err := DecodeBase64(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	return sig, nil
}
