package signaling

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/salonhq/salon/internal/redact"
)

// JWTConfigSection is the key of the JWTConfig section in salon.yaml; it
// prefixes the keys Validate names.
const JWTConfigSection = "livekit"

// JWTConfig is the `livekit:` section of salon.yaml: where the MatrixRTC JWT
// service sends clients, and how it signs their LiveKit access tokens.
// Decode it strictly over JWTDefaults(); a zero value in any field also
// means its default.
//
// With the External* fields empty the focus is Salon's embedded SFU, and
// tokens are signed with the keys in KeysFile. With them set, the focus is
// a LiveKit deployment Salon does not run: tokens are signed with its API
// key and secret and clients are sent to ExternalURL.
type JWTConfig struct {
	// ExternalURL is the WebSocket URL (ws:// or wss://) of an external
	// LiveKit deployment, handed to clients as is.
	ExternalURL string `yaml:"external_url"`
	// ExternalKey and ExternalSecret are that deployment's API key and
	// secret (livekit.yaml `keys:`). The secret is at least 32 bytes, as
	// livekit-server requires.
	ExternalKey    string        `yaml:"external_key"`
	ExternalSecret redact.Secret `yaml:"external_secret"`

	// TokenTTL is how long an issued access token may be used to connect
	// or resume. (LiveKit checks expiry when a client connects, not
	// afterwards.) The embedded SFU sends connected clients a fresh token
	// at least every half of it, so calls go on for as long as they last;
	// short, so that a token that leaked or outlived its holder's
	// membership is soon worthless. Default 10 minutes, as LiveKit's own
	// refreshed tokens; at least 10 seconds, at most KeyGrace, so a token
	// outlives no key rotation.
	TokenTTL time.Duration `yaml:"token_ttl"`

	// KeysFile holds the embedded SFU's API keys, generated at first
	// start; a relative path is taken in the data directory.
	KeysFile string `yaml:"keys_file"`
}

// JWTDefaults returns the configuration a fresh install runs with.
func JWTDefaults() JWTConfig {
	return JWTConfig{
		TokenTTL: 10 * time.Minute,
		KeysFile: "livekit_keys",
	}
}

// withDefaults fills zero values from JWTDefaults().
func (c JWTConfig) withDefaults() JWTConfig {
	d := JWTDefaults()
	if c.TokenTTL == 0 {
		c.TokenTTL = d.TokenTTL
	}
	if c.KeysFile == "" {
		c.KeysFile = d.KeysFile
	}
	return c
}

// External reports whether the focus is an external LiveKit deployment.
func (c JWTConfig) External() bool {
	return c.ExternalURL != ""
}

// KeysPath is where the embedded SFU's keys are kept: KeysFile, taken in
// dataDir when relative.
func (c JWTConfig) KeysPath(dataDir string) string {
	f := c.withDefaults().KeysFile
	if filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(dataDir, f)
}

const (
	// minAPISecretLen is livekit-server's minimum secret length.
	minAPISecretLen = 32
	minTokenTTL     = 10 * time.Second
)

// Validate checks the configuration, with zero values taken as defaults,
// and reports every problem at once, each with its key.
func (c JWTConfig) Validate() error {
	c = c.withDefaults()
	var problems []error
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s.%s: %s", JWTConfigSection, key, fmt.Sprintf(format, args...)))
	}

	anyExternal := c.ExternalURL != "" || c.ExternalKey != "" || c.ExternalSecret != ""
	if anyExternal {
		if c.ExternalURL == "" {
			bad("external_url", "must be set when %s.external_key or %s.external_secret is", JWTConfigSection, JWTConfigSection)
		} else if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			bad("external_url", "%q must be a ws:// or wss:// URL such as wss://livekit.example.org", c.ExternalURL)
		} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad("external_url", "%q must not carry credentials, a query or a fragment", c.ExternalURL)
		}
		if c.ExternalKey == "" {
			bad("external_key", "must be set when %s.external_url is (the API key in livekit.yaml `keys:`)", JWTConfigSection)
		}
		if c.ExternalSecret == "" {
			bad("external_secret", "must be set when %s.external_url is (the API secret in livekit.yaml `keys:`)", JWTConfigSection)
		} else if len(c.ExternalSecret) < minAPISecretLen {
			bad("external_secret", "must be at least %d bytes, got %d", minAPISecretLen, len(c.ExternalSecret))
		}
	}
	if c.TokenTTL < minTokenTTL || c.TokenTTL > KeyGrace {
		bad("token_ttl", "must be between %v and %v, got %v", minTokenTTL, KeyGrace, c.TokenTTL)
	}
	return errors.Join(problems...)
}
