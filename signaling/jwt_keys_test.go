package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
)

func TestKeysCreatedPersistedReloaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "livekit_keys")
	ks, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	key, secret := ks.Current()
	if !strings.HasPrefix(key, "API") || len(key) != 15 {
		t.Errorf("key %q, want API and 12 characters", key)
	}
	if len(secret) < 43 { // 32 bytes, unpadded base64
		t.Errorf("secret is %d characters", len(secret))
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{path, 0o600}, {dir, 0o700}} {
		st, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != p.mode {
			t.Errorf("%s mode %o, want %o", p.path, st.Mode().Perm(), p.mode)
		}
	}
	again, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if k2, s2 := again.Current(); k2 != key || s2 != secret {
		t.Errorf("reloaded %s, want %s and the same secret", k2, key)
	}
	if got, ok := again.Secret(key); !ok || got != secret {
		t.Error("Secret does not know the current key")
	}
	if _, ok := again.Secret("APInope"); ok {
		t.Error("Secret knows a made-up key")
	}
	if again.NumKeys() != 1 || again.GetSecret(key) != secret || again.GetSecret("x") != "" {
		t.Error("KeyProvider methods wrong")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the keys file", len(entries))
	}
}

// Several processes (here goroutines) starting on an empty data directory
// end up with one key.
func TestKeysCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livekit_keys")
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Go(func() {
			ks, err := LoadOrCreateKeys(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i], _ = ks.Current()
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatalf("different keys: %v", keys)
		}
	}
}

func TestKeysRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livekit_keys")
	ks, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	ks.now = func() time.Time { return clock }

	// A token a client holds from before the rotation.
	oldKey, oldSecret := ks.Current()
	oldJWT, err := auth.NewAccessToken(oldKey, oldSecret).SetIdentity("p").
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "r"}).ToJWT()
	if err != nil {
		t.Fatal(err)
	}

	if err := ks.Rotate(path); err != nil {
		t.Fatal(err)
	}
	newKey, newSecret := ks.Current()
	if newKey == oldKey || newSecret == oldSecret {
		t.Fatal("Rotate kept the key")
	}
	// The old token still verifies, through KeySet.Secret.
	v, err := auth.ParseAPIToken(oldJWT)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := ks.Secret(v.APIKey())
	if !ok {
		t.Fatalf("no secret for the previous key %s after rotation", v.APIKey())
	}
	if _, _, err := v.Verify(secret); err != nil {
		t.Errorf("old token does not verify: %v", err)
	}
	if ks.NumKeys() != 2 {
		t.Errorf("NumKeys = %d, want 2", ks.NumKeys())
	}

	// The rotation is on disk: a restart keeps both keys.
	reloaded, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	reloaded.now = ks.now
	if k, _ := reloaded.Current(); k != newKey {
		t.Errorf("reloaded current %q, want %q", k, newKey)
	}
	if s, ok := reloaded.Secret(oldKey); !ok || s != oldSecret {
		t.Error("reloaded set lost the previous key")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after rotation %o", st.Mode().Perm())
	}

	// After the grace period the old key verifies nothing, and the next
	// rotation drops it.
	clock = clock.Add(KeyGrace)
	if _, ok := ks.Secret(oldKey); ok {
		t.Error("old key valid after its grace period")
	}
	if ks.NumKeys() != 1 {
		t.Errorf("NumKeys = %d, want 1", ks.NumKeys())
	}
	if err := ks.Rotate(path); err != nil {
		t.Fatal(err)
	}
	var f keysFile
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Keys) != 2 || strings.Contains(string(b), oldKey) {
		t.Errorf("after the second rotation the file holds %d keys (want 2, without %s)", len(f.Keys), oldKey)
	}
	if _, ok := ks.Secret(newKey); !ok {
		t.Error("the key replaced second is not in its grace period")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left: %d entries", len(entries))
	}
}

// Another process rotates the file; Reload picks it up.
func TestKeysReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livekit_keys")
	running, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Rotate(path); err != nil {
		t.Fatal(err)
	}
	want, _ := admin.Current()
	if err := running.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got, _ := running.Current(); got != want {
		t.Errorf("after Reload current %q, want %q", got, want)
	}
}

// A failed write leaves the set as it was.
func TestKeysRotateFailureKeepsSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livekit_keys")
	ks, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ks.Current()
	if err := ks.Rotate(filepath.Join(t.TempDir(), "missing-dir", "keys")); err == nil {
		t.Fatal("Rotate into a missing directory succeeded")
	}
	if after, _ := ks.Current(); after != before {
		t.Error("a failed Rotate changed the current key")
	}
}

func TestKeysFileRefused(t *testing.T) {
	good := `"secret": "` + strings.Repeat("s", 43) + `"`
	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", `keys`, "invalid character"},
		{"short secret", `{"current": "K", "keys": [{"key": "K", "secret": "short"}]}`, "secret holds 5 bytes"},
		{"no current", `{"current": "X", "keys": [{"key": "K", ` + good + `}]}`, `current key "X" is not among`},
		{"twice", `{"current": "K", "keys": [{"key": "K", ` + good + `}, {"key": "K", ` + good + `}]}`, "appears twice"},
		{"no key ID", `{"current": "K", "keys": [{"key": "", ` + good + `}]}`, "no key ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			os.WriteFile(path, []byte(tc.content), 0o600)
			ks, err := LoadOrCreateKeys(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || ks != nil {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Error("a refused file was rewritten")
			}
		})
	}
}

// Secrets never print: not the key set's, not the configuration's.
func TestSecretsRedacted(t *testing.T) {
	ks, err := LoadOrCreateKeys(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	_, keySecret := ks.Current()
	const cfgSecret = "config-secret-config-secret-config-secret"
	cfg := JWTConfig{ExternalURL: "wss://lk.example", ExternalKey: "K", ExternalSecret: cfgSecret}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "keys", ks, "cfg", cfg, "secret", cfg.ExternalSecret)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "keys", ks, "cfg", cfg)
	fmt.Fprintf(&buf, "%v %+v %#v %s %v %#v\n", cfg, cfg, cfg, cfg.ExternalSecret, ks, ks)
	j, _ := json.Marshal(cfg)
	buf.Write(j)
	out := buf.String()
	for _, s := range []string{keySecret, cfgSecret} {
		if strings.Contains(out, s) {
			t.Errorf("a secret printed:\n%s", out)
		}
	}
	if !strings.Contains(out, "REDACTED") {
		t.Errorf("no REDACTED in:\n%s", out)
	}
}
