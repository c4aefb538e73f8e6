package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

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
	for _, v := range []config{c, cq} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out = append(out, fmt.Sprintf(verb, v), fmt.Sprintf(verb, v.Password), fmt.Sprintf(verb, v.Database))
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j), string(y))
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			var b bytes.Buffer
			slog.New(h(&b)).Info("config", "config", v, "password", v.Password, "database", v.Database, slog.Any("any", v))
			out = append(out, b.String())
		}
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
