package signaling

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/redact"
	"gopkg.in/yaml.v3"
)

// decodeJWTConfig decodes a `livekit:` section as cmd/salon does: strictly,
// over the defaults.
func decodeJWTConfig(t *testing.T, text string) (JWTConfig, error) {
	t.Helper()
	cfg := JWTDefaults()
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, err
	}
	return cfg, nil
}

func TestJWTConfigDefaults(t *testing.T) {
	cfg, err := decodeJWTConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if cfg.TokenTTL != 10*time.Minute || cfg.KeysFile != "livekit_keys" || cfg.External() {
		t.Errorf("defaults: %+v", cfg)
	}
	// A zero value means the default too.
	if err := (JWTConfig{}).Validate(); err != nil {
		t.Errorf("zero value invalid: %v", err)
	}
	if got := (JWTConfig{}).KeysPath("/data"); got != filepath.Join("/data", "livekit_keys") {
		t.Errorf("KeysPath = %q", got)
	}
	if got := (JWTConfig{KeysFile: "/etc/salon/keys"}).KeysPath("/data"); got != "/etc/salon/keys" {
		t.Errorf("absolute KeysPath = %q", got)
	}
}

func TestJWTConfigDecode(t *testing.T) {
	cfg, err := decodeJWTConfig(t, `
external_url: wss://livekit.example.org
external_key: APIabc
external_secret: 0123456789abcdef0123456789abcdef
token_ttl: 30m
keys_file: keys.json
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.External() || cfg.TokenTTL != 30*time.Minute || string(cfg.ExternalSecret) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("decoded %+v", cfg)
	}
	if _, err := decodeJWTConfig(t, "externl_url: wss://x\n"); err == nil {
		t.Error("unknown key accepted")
	}
}

// Validate reports every problem, each with its key.
func TestJWTConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  JWTConfig
		keys []string
	}{
		{"http URL, short secret, no key, TTL too long",
			JWTConfig{ExternalURL: "https://lk.example", ExternalSecret: "short", TokenTTL: 48 * time.Hour},
			[]string{"livekit.external_url", "livekit.external_key", "livekit.external_secret", "livekit.token_ttl"}},
		{"key without URL or secret", JWTConfig{ExternalKey: "K"},
			[]string{"livekit.external_url", "livekit.external_secret"}},
		{"URL with a query", JWTConfig{ExternalURL: "wss://lk.example/?x=1", ExternalKey: "K", ExternalSecret: redact.Secret(strings.Repeat("s", 32))},
			[]string{"livekit.external_url"}},
		{"TTL too short", JWTConfig{TokenTTL: time.Second}, []string{"livekit.token_ttl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.keys) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tc.keys), err)
			}
			for _, k := range tc.keys {
				if !strings.Contains(err.Error(), k+": ") {
					t.Errorf("no problem for %s in:\n%v", k, err)
				}
			}
			if strings.Contains(err.Error(), "short\"") {
				t.Error("the secret is in the error")
			}
		})
	}
}
