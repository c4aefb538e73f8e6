package federation_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"

	"gopkg.in/yaml.v3"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/internal/testca"
)

// dendriteVersion is the release the interop runs against, the one
// build-dendrite.sh builds by default ($DENDRITE_VERSION for both).
func dendriteVersion() string {
	if v := os.Getenv("DENDRITE_VERSION"); v != "" {
		return v
	}
	return "v0.13.8"
}

// dendriteDir finds the Dendrite binaries build-dendrite.sh made:
// $SALON_DENDRITE_DIR, else the script's cache directory. Without them the
// test skips, saying how to build them — and fails under CI=true, where a
// missing prerequisite is an error of the set-up, not a reason to pass.
func dendriteDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SALON_DENDRITE_DIR")
	if dir == "" {
		cache := os.Getenv("SALON_INTEROP_CACHE")
		if cache == "" {
			base := os.Getenv("XDG_CACHE_HOME")
			if base == "" {
				home, _ := os.UserHomeDir()
				base = filepath.Join(home, ".cache")
			}
			cache = filepath.Join(base, "salon-interop")
		}
		dir = filepath.Join(cache, "dendrite-"+dendriteVersion())
	}
	for _, bin := range []string{"dendrite", "generate-keys", "generate-config"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			msg := fmt.Sprintf("Dendrite %s is not built in %s (%v): run interop/federation/build-dendrite.sh or make interop-federation", dendriteVersion(), dir, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// salonBinary builds ./cmd/salon once per run, or takes $SALON_BIN.
func salonBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SALON_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "salon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/salon")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/salon: %v\n%s", err, out)
	}
	return bin
}

// freePort finds a loopback TCP port free right now.
func freePort(t *testing.T) string { return freePortOn(t, "127.0.0.1") }

// freePortOn finds a TCP port of the address ip free right now, as
// "HOST:PORT" (IPv6 in brackets).
func freePortOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeUDPPort finds a loopback UDP port free right now (Salon's SFU wants a
// fixed one).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	return testnet.Port(t)
}

// server is one homeserver of the pair: its server name, which is an IP
// literal with the port of its federation listener ("127.0.0.1:PORT" or
// "[::1]:PORT", so that neither server needs DNS, .well-known or SRV to
// find the other), its client API and its log.
type server struct {
	Name      string // server name = federation address
	ClientURL string // http://127.0.0.1:PORT
	Metrics   string // Salon's metrics URL ("" for Dendrite)
	Log       string // path of the process's output
	Dir       string
	Bin       string            // Salon's binary
	What      string            // "Salon" or "Dendrite"
	signing   events.SigningKey // Dendrite's, which the test generated
	newCmd    func() *exec.Cmd  // the command that starts it
	ready     func() bool       // nil: wait for "Salon is running"
	stop      func()            // kills the running process and waits
	owner     *testing.T        // the test whose end stops the process
}

// pair is a Salon and a Dendrite that federate with each other.
type pair struct {
	CA       *testca.CA
	Salon    *server
	Dendrite *server
	fed      *http.Client
}

// startPair starts Dendrite and Salon, each knowing the other's name, with
// their federation listeners (and so their server names) on the loopback
// address ip: "127.0.0.1" or "::1".
func startPair(t *testing.T, ip string) *pair {
	t.Helper()
	ddir := dendriteDir(t)
	salonBin := salonBinary(t)
	ca := testca.New(t)
	p := &pair{CA: ca}
	p.Salon = &server{Name: freePortOn(t, ip), ClientURL: "http://" + freePort(t), Metrics: "http://" + freePort(t), Dir: t.TempDir()}
	p.Dendrite = &server{Name: freePortOn(t, ip), ClientURL: "http://" + freePort(t), Dir: t.TempDir()}
	p.fed = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(p.fed.CloseIdleConnections)
	startDendrite(t, ddir, ca, p.Dendrite, net.ParseIP(ip))
	startSalon(t, salonBin, ca, p.Salon, p.Dendrite, net.ParseIP(ip))
	return p
}

// startSalon runs `salon serve` as a real process with federation on its
// own TLS listener at s.Name, open registration and peer listed in
// federation.resolve (a loopback address is private: Salon dials it only
// when the operator names it).
func startSalon(t *testing.T, bin string, ca *testca.CA, s, peer *server, ip net.IP) {
	t.Helper()
	cert, key := ca.Issue(t, "salon", ip.String())
	conf := fmt.Sprintf(`server_name: %q
listen: %s
data_dir: %s
database: sqlite:salon.db
sqlite_synchronous: normal
log: {level: debug, format: text}
registration: {mode: open}
metrics: {listen: %s}
turn: {listen_udp: "127.0.0.1:0", listen_tcp: "127.0.0.1:0", udp_sockets: 1}
sfu: {listen_host: 127.0.0.1, udp_port: %d, tcp_port: -1}
federation:
  enabled: true
  listen: %q
  tls_cert: %s
  tls_key: %s
  ca_file: %s
  resolve: {%q: %q}
`, s.Name, strings.TrimPrefix(s.ClientURL, "http://"), s.Dir, strings.TrimPrefix(s.Metrics, "http://"), freeUDPPort(t),
		s.Name, cert, key, ca.File, peer.Name, peer.Name)
	confFile := filepath.Join(s.Dir, "salon.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Log = filepath.Join(s.Dir, "salon.log")
	s.What, s.Bin = "Salon", bin
	s.newCmd = func() *exec.Cmd { return exec.Command(bin, "serve", "--config", confFile) }
	startProcess(t, s)
}

// startDendrite writes a configuration with generate-config -ci (SQLite
// databases in a temporary directory, no rate limits, no key notaries,
// open registration) and a signing key with generate-keys, then runs the
// monolith: client API over HTTP, federation over HTTPS at d.Name with a
// certificate of the test CA, which it also trusts for outbound requests.
func startDendrite(t *testing.T, bin string, ca *testca.CA, d *server, ip net.IP) {
	t.Helper()
	keyFile := filepath.Join(d.Dir, "matrix_key.pem")
	runTool(t, exec.Command(filepath.Join(bin, "generate-keys"), "--private-key", keyFile))
	d.signing = readDendriteKey(t, keyFile)
	out := runTool(t, exec.Command(filepath.Join(bin, "generate-config"), "-ci", "-server", d.Name, "-dir", d.Dir))
	var cfg map[string]any
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("generate-config output: %v", err)
	}
	set := func(path string, v any) {
		m := cfg
		parts := strings.Split(path, ".")
		for _, k := range parts[:len(parts)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	set("global.private_key", keyFile)
	set("global.presence", map[string]any{"enable_inbound": false, "enable_outbound": false})
	set("federation_api.key_perspectives", []any{})
	set("federation_api.prefer_direct_fetch", true)
	set("federation_api.disable_tls_validation", false)
	set("sync_api.search", map[string]any{"enabled": false, "index_path": filepath.Join(d.Dir, "searchindex"), "language": "en"})
	set("logging", []any{map[string]any{"type": "std", "level": "debug"}})
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(d.Dir, "dendrite.yaml")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := ca.Issue(t, "dendrite", ip.String())
	d.Log = filepath.Join(d.Dir, "dendrite.log")
	d.What = "Dendrite"
	d.newCmd = func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, "dendrite"), "--config", confFile,
			"--http-bind-address", strings.TrimPrefix(d.ClientURL, "http://"),
			"--https-bind-address", d.Name, "--tls-cert", cert, "--tls-key", key,
			"--really-enable-open-registration")
		cmd.Dir = d.Dir
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca.File)
		return cmd
	}
	d.ready = func() bool {
		res, err := http.Get(d.ClientURL + "/_matrix/client/versions")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}
	startProcess(t, d)
}

// startProcess starts s (s.newCmd) with its output appended to s.Log and
// waits until it is ready: s.ready() true, or (nil) a "Salon is running"
// line. s.stop kills it; the end of the test does too, and prints the end
// of its log when the test failed.
func startProcess(t *testing.T, s *server) {
	t.Helper()
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := s.newCmd()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	up := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !once && s.ready == nil && strings.HasPrefix(sc.Text(), "Salon is running") {
				once = true
				close(up)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := cmd.Start(); err != nil {
		pw.Close()
		<-copied
		logf.Close()
		t.Fatalf("start %s: %v", s.What, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			err := <-exited
			exited <- err
			<-copied
			logf.Close()
		})
	}
	// The process outlives a subtest that restarted it: the test that first
	// started it stops it (whichever start is the latest) at its end, once.
	if s.owner == nil {
		owner := t
		s.owner = owner
		owner.Cleanup(func() {
			s.stop()
			if owner.Failed() {
				b, _ := os.ReadFile(s.Log)
				owner.Logf("%s log (%s), last lines:\n%s", s.What, s.Log, tail(b, 60))
			}
		})
	}
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-up:
			return
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(s.Log)
			t.Fatalf("%s exited at start (%v):\n%s", s.What, err, tail(b, 40))
		case <-tick.C:
			if s.ready != nil && s.ready() {
				return
			}
		case <-deadline:
			t.Fatalf("%s did not start within 90s", s.What)
		}
	}
}

// restart stops s and starts it again with the same configuration and
// data (run, when not nil, while it is down).
func restart(t *testing.T, s *server, whileDown func()) {
	t.Helper()
	s.stop()
	if whileDown != nil {
		whileDown()
	}
	startProcess(t, s)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runTool runs a tool to completion and returns its standard output.
func runTool(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, errb.String())
	}
	return out.Bytes()
}

// readDendriteKey reads the "MATRIX PRIVATE KEY" PEM block generate-keys
// writes: a Key-ID header and the ed25519 seed.
func readDendriteKey(t *testing.T, path string) events.SigningKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s holds no MATRIX PRIVATE KEY block", path)
		}
		if blk.Type == "MATRIX PRIVATE KEY" {
			k, err := events.SigningKeyFromSeed(blk.Headers["Key-ID"], blk.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return k
		}
	}
}

// user registers name on s (both servers: m.login.dummy with open
// registration) and sets its display name.
func (s *server) user(t *testing.T, name, displayName string) *mxtest.Client {
	t.Helper()
	c := mxtest.Register(t, s.ClientURL, name, "interop password "+name)
	c.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/profile/%s/displayname", c.UserID), map[string]any{"displayname": displayName})
	return c
}

// fedGet is an unauthenticated GET on a federation listener (the key
// endpoints need no signature), trusting the test CA.
func (p *pair) fedGet(t *testing.T, s *server, path string) (int, map[string]any) {
	t.Helper()
	res, err := p.fed.Get("https://" + s.Name + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", s.Name, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// fedPost is an unauthenticated POST of a JSON body on a federation
// listener (the notary key query needs no signature).
func (p *pair) fedPost(t *testing.T, s *server, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := p.fed.Post("https://"+s.Name+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s%s: %v", s.Name, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("POST %s%s: %d %s", s.Name, path, res.StatusCode, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("POST %s%s: %v: %s", s.Name, path, err, raw)
	}
	return m
}

// asDendrite sends a federation request to Salon signed with Dendrite's
// own key, as Dendrite would; Salon checks it against the key it fetches
// from the real Dendrite. The room probes use it to ask Salon what it
// accepts.
func (p *pair) asDendrite(t *testing.T, method, path string, body any) (int, map[string]any, []byte) {
	t.Helper()
	var content []byte
	if body != nil {
		var err error
		if content, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	x, err := federation.SignRequest(p.Dendrite.signing, method, path, p.Dendrite.Name, p.Salon.Name, content)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+p.Salon.Name+path, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", x.String())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := p.fed.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m, raw
}

// eventually retries check until it returns "" or the time is up, then
// fails with its last complaint.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// as is c failing t (a subtest) rather than the test that made it.
func as(t *testing.T, c *mxtest.Client) *mxtest.Client {
	cp := *c
	cp.T = t
	return &cp
}
