package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/salonhq/salon/internal/redact/redacttest"
)

// TestConfigSecretsNeverPrint: a configuration holding every kind of
// secret (registration token, LDAP bind password, TURN shared secrets,
// LiveKit API secret, database password) is logged, printed and dumped,
// and none of the secrets appears; the decoded values are the secrets.
func TestConfigSecretsNeverPrint(t *testing.T) {
	secrets := map[string]string{
		"registration.token":          "reg-token-0123456789",
		"ldap.bind_password":          "ldap-bind-0123456789",
		"turn.shared_secret":          "turn-secret-0123456789",
		"turn.external.shared_secret": "coturn-secret-0123456789",
		"livekit.external_secret":     "livekit-secret-0123456789-0123456789",
		"database":                    "pg-password-0123456789",
	}
	doc := fmt.Sprintf(`
database: postgres://salon:%s@db.example/salon
registration:
  mode: token
  token: %s
ldap:
  bind_password: %s
turn:
  shared_secret: %s
  external:
    shared_secret: %s
livekit:
  external_secret: %s
`, secrets["database"], secrets["registration.token"], secrets["ldap.bind_password"],
		secrets["turn.shared_secret"], secrets["turn.external.shared_secret"], secrets["livekit.external_secret"])
	cfg := Defaults()
	if err := decodeConfig(strings.NewReader(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	// Decoding keeps the secrets themselves.
	for key, got := range map[string]string{
		"registration.token":          string(cfg.Registration.Token),
		"ldap.bind_password":          string(cfg.LDAP.BindPassword),
		"turn.shared_secret":          string(cfg.TURN.SharedSecret),
		"turn.external.shared_secret": string(cfg.TURN.External.SharedSecret),
		"livekit.external_secret":     string(cfg.LiveKit.ExternalSecret),
	} {
		if got != secrets[key] {
			t.Errorf("%s decoded as %q", key, got)
		}
	}
	if !strings.Contains(string(cfg.Database), secrets["database"]) {
		t.Errorf("database decoded as %q", string(cfg.Database))
	}

	var outputs []string
	for _, v := range []any{cfg, cfg.TURN, cfg.LiveKit, cfg.LDAP, cfg.Database} {
		outputs = append(outputs, redacttest.Renderings(t, v)...)
	}
	for _, out := range outputs {
		for key, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s printed in:\n%s", key, out)
			}
		}
	}
	// What is not secret stays readable.
	if !strings.Contains(outputs[0], "db.example/salon") {
		t.Errorf("database host hidden too:\n%s", outputs[0])
	}
}
