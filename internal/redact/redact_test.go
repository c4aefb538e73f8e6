package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/salonhq/salon/internal/redact/redacttest"
	"gopkg.in/yaml.v3"
)

type config struct {
	Name     string `json:"name" yaml:"name"`
	Password Secret `json:"password" yaml:"password"`
	Database URL    `json:"database" yaml:"database"`
}

// TestSecretNeverPrints: a secret, alone or inside a struct, is REDACTED
// in every printing, logging and marshalling path, and the password of a
// URL is hidden while the rest of it stays readable.
func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-very-secret"
	c := config{Name: "n", Password: pw, Database: "postgres://salon:" + pw + "@db.example/salon?sslmode=disable"}
	cq := config{Name: "n", Password: pw, Database: "postgres://db.example/salon?password=" + pw}
	var out []string
	for _, v := range []any{c, cq, c.Password, c.Database, cq.Database} {
		out = append(out, redacttest.Renderings(t, v)...)
	}
	for _, o := range out {
		if strings.Contains(o, pw) {
			t.Errorf("secret printed: %s", o)
		}
	}
	if got := c.Database.String(); got != "postgres://salon:REDACTED@db.example/salon?sslmode=disable" {
		t.Errorf("URL = %s", got)
	}
	if got := URL("sqlite:salon.db").String(); got != "sqlite:salon.db" {
		t.Errorf("URL = %s", got)
	}
}

// TestSecretDecodes: decoding reads the secret itself, and a conversion
// gives it back.
func TestSecretDecodes(t *testing.T) {
	var c config
	if err := yaml.Unmarshal([]byte("password: s3cret\ndatabase: postgres://u:p@h/d\n"), &c); err != nil {
		t.Fatal(err)
	}
	if string(c.Password) != "s3cret" || string(c.Database) != "postgres://u:p@h/d" {
		t.Fatalf("decoded %q %q", string(c.Password), string(c.Database))
	}
	if err := json.Unmarshal([]byte(`{"password":"s4"}`), &c); err != nil || string(c.Password) != "s4" {
		t.Fatalf("json: %v %q", err, string(c.Password))
	}
}
