package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/mxtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// salonBinary builds the real binary once for the tests that run it as a
// separate process.
func salonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "salon-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "salon")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	return testnet.Addr(t)
}

// process is `salon serve` running as a child process.
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	return startProcessYAML(t, "", args...)
}

// startProcessYAML is startProcess with more top-level settings in its
// salon.yaml.
func startProcessYAML(t *testing.T, extraYAML string, args ...string) *process {
	t.Helper()
	addr := freePort(t)
	// The relay takes free ports so tests and a local coturn do not collide.
	conf := filepath.Join(t.TempDir(), "salon.yaml")
	yaml := fmt.Sprintf("turn:\n  listen_udp: 127.0.0.1:0\n  listen_tcp: 127.0.0.1:0\n  udp_sockets: 1\nsfu:\n  udp_port: %d\n  tcp_port: -1\nmetrics:\n  listen: 127.0.0.1:0\n", freeUDPPort(t)) + extraYAML
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(salonBinary(t), append([]string{"serve", "--config", conf, "--listen", addr}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if !testing.Verbose() {
		cmd.Stderr = nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Salon is running") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, "http://"+addr) {
			t.Fatalf("start line %q does not name http://%s", line, addr)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("salon serve did not start within 30s")
	}
	p := &process{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p
}

// TestKill9KeepsAcknowledgedWrites: every write the server acknowledged
// is there after kill -9 and a restart, on both backends.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db string) {
		dataDir := t.TempDir()
		p := startProcess(t, "--data-dir", dataDir, "--database", db)
		const n = 20
		var clients []*mxtest.Client
		for i := 0; i < n; i++ {
			c := mxtest.Register(t, p.url, fmt.Sprintf("user%d", i), "password number")
			c.Must(200, "PUT", "/_matrix/client/v3/profile/"+c.UserID+"/displayname", map[string]any{"displayname": fmt.Sprintf("User %d", i)})
			clients = append(clients, c)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()

		p2 := startProcess(t, "--data-dir", dataDir, "--database", db)
		for i, c := range clients {
			c.Base = p2.url
			c.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
			got := c.Must(200, "GET", "/_matrix/client/v3/profile/"+c.UserID, nil).Str("displayname")
			if got != fmt.Sprintf("User %d", i) {
				t.Fatalf("user%d displayname after kill -9 = %q", i, got)
			}
			mxtest.Login(t, p2.url, fmt.Sprintf("user%d", i), "password number")
		}
	})
}

// TestSIGTERMExitsCleanly: on SIGTERM the process drains, exits 0 and
// closes the database cleanly (the WAL is checkpointed).
func TestSIGTERMExitsCleanly(t *testing.T) {
	dataDir := t.TempDir()
	p := startProcess(t, "--data-dir", dataDir)
	c := mxtest.Register(t, p.url, "alice", "password one")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	// A clean close checkpoints the WAL.
	if fi, err := os.Stat(filepath.Join(dataDir, "salon.db-wal")); err == nil && fi.Size() > 0 {
		t.Fatalf("WAL not checkpointed on close: %d bytes", fi.Size())
	}
	p2 := startProcess(t, "--data-dir", dataDir)
	c.Base = p2.url
	c.Must(200, "GET", "/_matrix/client/v3/account/whoami", nil)
}

// TestSigningKey: the key is made on first start, kept across restarts and
// served signed by itself.
func TestSigningKey(t *testing.T) {
	dataDir := t.TempDir()
	p := startProcess(t, "--data-dir", dataDir)
	r := mxtest.New(t, p.url).Must(200, "GET", "/_matrix/key/v2/server", nil)
	var body struct {
		ServerName   string                       `json:"server_name"`
		ValidUntilTS int64                        `json:"valid_until_ts"`
		VerifyKeys   map[string]map[string]string `json:"verify_keys"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.ServerName != "localhost" || body.ValidUntilTS < time.Now().Add(24*time.Hour).UnixMilli() || len(body.VerifyKeys) != 1 {
		t.Fatalf("key answer = %s", r.Raw)
	}
	for id, k := range body.VerifyKeys {
		pub, err := events.DecodeBase64(k["key"])
		if err != nil {
			t.Fatal(err)
		}
		if err := events.VerifyJSON(r.Raw, "localhost", id, pub); err != nil {
			t.Fatalf("self-signature does not verify: %v", err)
		}
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p2 := startProcess(t, "--data-dir", dataDir)
	r2 := mxtest.New(t, p2.url).Must(200, "GET", "/_matrix/key/v2/server", nil)
	var body2 struct {
		VerifyKeys map[string]map[string]string `json:"verify_keys"`
	}
	_ = json.Unmarshal(r2.Raw, &body2)
	for id := range body.VerifyKeys {
		if body2.VerifyKeys[id]["key"] != body.VerifyKeys[id]["key"] {
			t.Fatal("signing key changed across a restart")
		}
	}
}
