package turn

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func validConfig() Config {
	c := Defaults()
	c.Realm = "example.org"
	c.SharedSecret = "0123456789abcdef"
	return c
}

func TestDefaultsValidate(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with realm and secret: %v", err)
	}
	r := c.withDefaults()
	if r.RelayIP != "127.0.0.1" || r.RelayBind != "127.0.0.1" {
		t.Errorf("relay ip/bind derived as %q/%q, want 127.0.0.1 from the listen address", r.RelayIP, r.RelayBind)
	}
	if !c.Enabled || c.TLSEnabled() {
		t.Errorf("Enabled=%v TLSEnabled=%v", c.Enabled, c.TLSEnabled())
	}
	// A zero value means the default.
	var zero Config
	zero.Realm, zero.SharedSecret = "example.org", "0123456789abcdef"
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if zero.withDefaults().CredentialTTL != time.Hour {
		t.Error("zero credential_ttl is not the default")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		ListenUDP:             ":3478", // no specific address: relay_ip needed
		ListenTCP:             "nonsense",
		RelayPortMin:          60000,
		RelayPortMax:          50000,
		SharedSecret:          "short",
		AllowPeers:            []string{"10.0.0.0/8", "not-a-cidr"},
		TLSCert:               "/etc/cert.pem",
		CredentialTTL:         time.Second,
		TotalBytesPerSecond:   100,
		External:              External{URIs: []string{"stun:example.org"}},
		MaxAllocationsPerUser: -1,
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	msg := err.Error()
	for _, want := range []string{
		"turn.listen_tcp:",
		"turn.tls_cert: turn.tls_cert and turn.tls_key must be set together",
		"turn.realm: must be set",
		"turn.relay_ip: must be set",
		"turn.relay_port_min: must be ≤ turn.relay_port_max",
		"turn.shared_secret: must be at least 16 bytes",
		"turn.credential_ttl:",
		`turn.allow_peers: "not-a-cidr" is not a CIDR`,
		"turn.total_bytes_per_second:",
		"turn.external.uris: [0]",
		"turn.external.shared_secret:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "max_allocations_per_user") {
		t.Errorf("negative max_allocations_per_user (no limit) reported:\n%s", msg)
	}
}

func TestValidateSingleProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"all listeners off", func(c *Config) { c.ListenUDP, c.ListenTCP = Off, Off }, "turn.listen_udp: every listener is off"},
		{"tcp only", func(c *Config) { c.ListenUDP = Off }, ""},
		{"public with relay ip", func(c *Config) { c.ListenUDP, c.ListenTCP, c.RelayIP = ":3478", ":3478", "203.0.113.7" }, ""},
		{"ipv6 relay ip", func(c *Config) { c.RelayIP = "2001:db8::1" }, "turn.relay_ip:"},
		{"relay port zero range", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 70000, 70001 }, "turn.relay_port_min: must be within"},
		{"udp sockets", func(c *Config) { c.UDPSockets = 100 }, "turn.udp_sockets:"},
		{"tls pair", func(c *Config) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" }, ""},
		{"listen host not ip", func(c *Config) { c.ListenUDP = "turn.example.org:3478" }, "turn.listen_udp:"},
		{"external", func(c *Config) {
			c.External = External{URIs: []string{"turn:turn.example.org:3478?transport=udp"}, SharedSecret: "s"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// The section decodes strictly over Defaults(), as cmd/salon does.
func TestYAMLDecode(t *testing.T) {
	src := `
listen_udp: ":3478"
relay_ip: 203.0.113.7
relay_port_min: 50000
relay_port_max: 50999
credential_ttl: 12h
allow_peers: [127.0.0.0/8]
max_allocation_lifetime: 2h
shared_secret: "0123456789abcdef0123"
realm: example.org
`
	c := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.CredentialTTL != 12*time.Hour || c.MaxAllocationLifetime != 2*time.Hour || !c.Enabled ||
		c.ListenTCP != "127.0.0.1:3478" || string(c.SharedSecret) != "0123456789abcdef0123" {
		t.Errorf("decoded %+v", c)
	}
	if c.withDefaults().RelayBind != "0.0.0.0" {
		t.Errorf("relay_bind = %q, want 0.0.0.0 for a wildcard listener", c.withDefaults().RelayBind)
	}

	c = Defaults()
	dec = yaml.NewDecoder(strings.NewReader("relay_ipp: 1.2.3.4\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Error("unknown key accepted")
	}
}

func TestSecretRedacted(t *testing.T) {
	c := validConfig()
	c.External.SharedSecret = "external-secret-value"
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "secret", c.SharedSecret, "turn", c)
	printed := fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c.SharedSecret, c.SharedSecret)
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"slog": logs.String(), "fmt": printed, "yaml": string(out)} {
		if strings.Contains(text, "0123456789abcdef") || strings.Contains(text, "external-secret-value") {
			t.Errorf("%s output carries a secret:\n%s", where, text)
		}
		if !strings.Contains(text, "REDACTED") {
			t.Errorf("%s output does not say REDACTED:\n%s", where, text)
		}
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "turn_secret")
	first, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 40 {
		t.Errorf("secret %d bytes", len(first))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	second, err := LoadOrCreateSecret(path)
	if err != nil || string(second) != string(first) {
		t.Errorf("second load = %q, %v; want the first", second, err)
	}
	// An operator-written secret is used as written, less whitespace.
	if err := os.WriteFile(path, []byte("  shared-with-coturn-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadOrCreateSecret(path); err != nil || string(got) != "shared-with-coturn-0123" {
		t.Errorf("got %q, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(path); err == nil {
		t.Error("a short secret file was accepted")
	}
}
