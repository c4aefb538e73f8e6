package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/salonhq/salon/homeserver/mxtest"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("operator chose this\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "user", "create", "prof", "--admin", "--password-file", pw, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "created @prof:localhost") {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, "user", "create", "student", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "password: ") {
		t.Fatalf("create with generated password: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "user", "create", "prof", "--data-dir", dir); code != 1 || !strings.Contains(errs, "M_USER_IN_USE") {
		t.Fatalf("duplicate create: %d %q", code, errs)
	}

	srv := startServer(t, "sqlite:"+filepath.Join(dir, "salon.db"), func(c *Config) { c.DataDir = dir })
	c := mxtest.Login(t, srv.URL, "prof", "operator chose this")
	st := mxtest.Login(t, srv.URL, "student", strings.TrimSpace(strings.SplitN(out, "password: ", 2)[1]))
	room := c.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).Str("room_id")
	st.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

	if err := os.WriteFile(pw, []byte("a brand new one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "user", "reset-password", "prof", "--password-file", pw, "--data-dir", dir); code != 0 {
		t.Fatalf("reset: %d %q %q", code, out, errs)
	}
	mxtest.Login(t, srv.URL, "prof", "a brand new one")

	if code, _, errs := runCLI(t, "user", "deactivate", "@prof:localhost", "--data-dir", dir); code != 0 {
		t.Fatalf("deactivate: %q", errs)
	}
	mxtest.New(t, srv.URL).MustErr(403, "M_USER_DEACTIVATED", "POST", "/_matrix/client/v3/login",
		map[string]any{"type": "m.login.password", "user": "prof", "password": "a brand new one"})
	// The running server makes the deactivated account leave its rooms.
	srv.srv.hs.LeaveDeactivated(context.Background())
	jm := st.Must(200, "GET", mxtest.Path("/_matrix/client/v3/rooms/%s/joined_members", room), nil)
	if _, still := jm.Body["joined"].(map[string]any)["@prof:localhost"]; still {
		t.Fatalf("deactivated user still in the room: %s", jm.Raw)
	}
	if code, _, _ := runCLI(t, "user", "list"); code != 2 {
		t.Fatal("`salon user list` exists: the operator must not be able to enumerate content")
	}
	if code, _, _ := runCLI(t, "rooms"); code != 2 {
		t.Fatal("a rooms command exists")
	}
}

func TestConfigStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "salon.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, _, errs := runCLI(t, "config", "check", "--config", write("server_name: example.org\nregistraton:\n  mode: open\n"))
	if code != 1 || !strings.Contains(errs, "registraton") {
		t.Fatalf("unknown key: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, "config", "check", "--config", write("listen: nowhere\nregistration:\n  mode: maybe\nlog:\n  level: loud\n"))
	for _, key := range []string{"listen:", "registration.mode:", "log.level:"} {
		if !strings.Contains(errs, key) {
			t.Errorf("validation does not name %s: %q", key, errs)
		}
	}
	if code != 1 {
		t.Fatalf("invalid config accepted")
	}
	// Flags override the file.
	code, _, errs = runCLI(t, "config", "check", "--config", write("listen: nowhere\n"), "--listen", "127.0.0.1:9999")
	if code != 0 {
		t.Fatalf("flag did not override: %q", errs)
	}
}

// TestExampleConfig: `salon config example` is valid and names every key.
func TestExampleConfig(t *testing.T) {
	code, out, _ := runCLI(t, "config", "example")
	if code != 0 {
		t.Fatal(code)
	}
	cfg := Defaults()
	if err := decodeConfig(strings.NewReader(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example config invalid: %v", err)
	}
	if cfg.Registration.Mode == "open" {
		t.Fatal("example for a real deployment leaves registration open")
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(Config{}), "") {
		if !hasKey(doc, strings.Split(key, ".")) {
			t.Errorf("example config lacks %s", key)
		}
	}
}

func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		full := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type.NumField() > 0 && f.Type.Field(0).Tag.Get("yaml") != "" && !isLeafStruct(f.Type) {
			keys = append(keys, yamlKeys(f.Type, full+".")...)
			continue
		}
		keys = append(keys, full)
	}
	return keys
}

// isLeafStruct: structs written inline as one value ({per_second, burst}).
func isLeafStruct(t reflect.Type) bool { return t.Name() == "Rule" }

func hasKey(doc map[string]any, path []string) bool {
	v, ok := doc[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && hasKey(m, path[1:])
}
