// This file is copied, with its package clause replaced, into each of
// Complement's test packages that cmd/conformance assembles; the go tool
// never builds it inside Salon (testdata). It replaces Complement's Docker
// deployer: every homeserver is a `salon serve` child process on a free
// loopback port, and blueprints are realised over the Client-Server API.
package complementsalon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matrix-org/complement"
	"github.com/matrix-org/complement/b"
	"github.com/matrix-org/complement/client"
	"github.com/matrix-org/complement/config"
	"github.com/matrix-org/complement/ct"
	"github.com/matrix-org/complement/helpers"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestMain runs the package with the Salon deployment.
func TestMain(m *testing.M) {
	complement.OldDeployHook = deployBlueprint
	complement.TestMain(m, "salon", complement.WithDeployment(deploySalon))
}

// defaultPassword is the password Complement's own deployer gives users.
const defaultPassword = "complement_meets_min_password_req"

// deploySalon is Complement's Deploy(t, n): n empty homeservers, hs1 … hsN,
// federating with each other and with Complement's federation server.
func deploySalon(t ct.TestLike, numServers int, cfg *config.Complement) complement.Deployment {
	t.Helper()
	var names []string
	for i := 1; i <= numServers; i++ {
		names = append(names, fmt.Sprintf("hs%d", i))
	}
	d := newDeployment(t, cfg, names)
	for _, name := range names {
		d.start(t, name)
	}
	return d
}

// deployBlueprint is Complement's OldDeploy: homeservers with users and
// rooms made through the API, as a client would.
func deployBlueprint(t ct.TestLike, bp b.Blueprint, cfg *config.Complement) complement.Deployment {
	t.Helper()
	var names []string
	for _, h := range bp.Homeservers {
		if len(h.ApplicationServices) > 0 {
			t.Skipf("blueprint %s registers application services; Salon has no Application Service API", bp.Name)
		}
		names = append(names, h.Name)
	}
	d := newDeployment(t, cfg, names)
	for _, name := range names {
		d.start(t, name)
	}
	for _, h := range bp.Homeservers {
		d.realise(t, d.hs[h.Name], h)
	}
	return d
}

// newDeployment chooses every server's ports first, so each server's
// configuration can name the others (federation.resolve).
func newDeployment(t ct.TestLike, cfg *config.Complement, names []string) *deployment {
	t.Helper()
	d := &deployment{cfg: cfg, hs: map[string]*server{}, fedAddr: map[string]string{}, rooms: map[string]blueprintRoom{}}
	for _, name := range names {
		d.fedAddr[name] = freePort(t, "tcp")
	}
	return d
}

type deployment struct {
	cfg       *config.Complement
	mu        sync.Mutex
	hs        map[string]*server
	fedAddr   map[string]string        // server name → its federation listener (TLS)
	rooms     map[string]blueprintRoom // blueprint room Ref → the room
	localpart atomic.Int64
}

type blueprintRoom struct{ id, server string }

type server struct {
	name    string
	dir     string
	conf    string
	addr    string
	baseURL string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}

	mu      sync.Mutex
	clients []*client.CSAPI
	tokens  map[string]string
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func freePort(t ct.TestLike, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			ct.Fatalf(t, "free UDP port: %s", err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ct.Fatalf(t, "free TCP port: %s", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (d *deployment) start(t ct.TestLike, name string) *server {
	t.Helper()
	base := os.Getenv("SALON_CONFORMANCE_DIR")
	dir, err := os.MkdirTemp(base, unsafeName.ReplaceAllString(t.Name(), "_")+"-"+name+"-")
	if err != nil {
		ct.Fatalf(t, "deployment dir: %s", err)
	}
	addr := freePort(t, "tcp")
	_, udpPort, _ := net.SplitHostPort(freePort(t, "udp"))
	fedAddr := d.fedAddr[name]
	certPath, keyPath := filepath.Join(dir, "federation.crt"), filepath.Join(dir, "federation.key")
	if err := writeServerCert(d.cfg, name, certPath, keyPath); err != nil {
		ct.Fatalf(t, "federation certificate: %s", err)
	}
	caPath, err := caFile(d.cfg)
	if err != nil {
		ct.Fatalf(t, "Complement CA: %s", err)
	}
	var resolve []string
	for other, a := range d.fedAddr {
		resolve = append(resolve, fmt.Sprintf("%q: %q", other, a))
	}
	sort.Strings(resolve)
	level := os.Getenv("SALON_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	yaml := fmt.Sprintf(`server_name: %s
public_base_url: http://%s
data_dir: %s
sqlite_synchronous: normal
shutdown_timeout: 5s
log: {level: %s, format: text}
registration: {mode: open}
rate_limits:
  login_per_ip: {per_second: 0, burst: 1}
  login_per_account: {per_second: 0, burst: 1}
  register_per_ip: {per_second: 0, burst: 1}
  messages_per_user: {per_second: 0, burst: 1}
turn: {enabled: false}
metrics: {listen: "off"}
# Federation: a TLS listener of its own with a certificate from
# Complement's CA (which outbound connections trust); the deployment's
# other servers by name (resolve); and loopback allowed for any name, as
# Complement's federation server is 127.0.0.1:PORT with a new port per
# test (allowed here only, never by default).
federation:
  enabled: true
  listen: %s
  tls_cert: %s
  tls_key: %s
  ca_file: %s
  resolve: {%s}
  allow_networks: ["127.0.0.1/32"]
# Complement's TestUrlPreview previews a page it serves on loopback:
# allowed here only, never by default. Its media tests download fresh
# uploads through the legacy /_matrix/media/v3 endpoints, which the
# default authenticated-media freeze keeps to media uploaded before it.
media:
  url_preview: {enabled: true, allow_networks: ["127.0.0.1/32"]}
  authenticated_media: false
sfu: {listen_host: 127.0.0.1, udp_port: %s, tcp_port: -1}
`, name, addr, filepath.Join(dir, "data"), level, fedAddr, certPath, keyPath, caPath, strings.Join(resolve, ", "), udpPort)
	s := &server{
		name: name, dir: dir, conf: filepath.Join(dir, "salon.yaml"), addr: addr,
		baseURL: "http://" + addr, logPath: filepath.Join(dir, "salon.log"),
		tokens: map[string]string{},
	}
	if err := os.WriteFile(s.conf, []byte(yaml), 0o600); err != nil {
		ct.Fatalf(t, "write config: %s", err)
	}
	if err := s.run(d.cfg.SpawnHSTimeout); err != nil {
		ct.Fatalf(t, "start %s: %s\n%s", name, err, s.logTail())
	}
	d.mu.Lock()
	d.hs[name] = s
	d.mu.Unlock()
	return s
}

// run starts the process and waits until /versions answers.
func (s *server) run(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	bin := os.Getenv("SALON_BIN")
	if bin == "" {
		return fmt.Errorf("SALON_BIN is not set")
	}
	cmd := exec.Command(bin, "serve", "--config", s.conf, "--listen", s.addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("salon serve exited")
		default:
		}
		res, err := http.Get(s.baseURL + "/_matrix/client/versions")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("no answer on %s within %s", s.baseURL, timeout)
}

func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
	}
	s.cmd = nil
}

func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 8000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func (d *deployment) server(t ct.TestLike, hsName string) *server {
	t.Helper()
	d.mu.Lock()
	s := d.hs[hsName]
	d.mu.Unlock()
	if s == nil {
		ct.Fatalf(t, "homeserver %q is not in this deployment", hsName)
	}
	return s
}

func (d *deployment) newClient(t ct.TestLike, s *server, opts client.CSAPIOpts) *client.CSAPI {
	opts.BaseURL = s.baseURL
	opts.Client = client.NewLoggedClient(t, s.name, nil)
	opts.SyncUntilTimeout = 5 * time.Second
	opts.Debug = d.cfg.DebugLoggingEnabled
	c := client.NewCSAPI(opts)
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

func (d *deployment) GetFullyQualifiedHomeserverName(t ct.TestLike, hsName string) spec.ServerName {
	return spec.ServerName(d.server(t, hsName).name)
}

func (d *deployment) UnauthenticatedClient(t ct.TestLike, hsName string) *client.CSAPI {
	t.Helper()
	return d.newClient(t, d.server(t, hsName), client.CSAPIOpts{})
}

func (d *deployment) Register(t ct.TestLike, hsName string, opts helpers.RegistrationOpts) *client.CSAPI {
	t.Helper()
	s := d.server(t, hsName)
	password := opts.Password
	if password == "" {
		password = defaultPassword
	}
	c := d.newClient(t, s, client.CSAPIOpts{Password: password})
	localpart := fmt.Sprintf("user-%d", d.localpart.Add(1))
	if opts.LocalpartSuffix != "" {
		localpart += "-" + opts.LocalpartSuffix
	}
	if opts.IsAdmin {
		c.UserID, c.AccessToken, c.DeviceID = c.RegisterSharedSecret(t, localpart, password, true)
	} else {
		c.UserID, c.AccessToken, c.DeviceID = c.RegisterUser(t, localpart, password)
	}
	s.mu.Lock()
	s.tokens[c.UserID] = c.AccessToken
	s.mu.Unlock()
	return c
}

func (d *deployment) Login(t ct.TestLike, hsName string, existing *client.CSAPI, opts helpers.LoginOpts) *client.CSAPI {
	t.Helper()
	s := d.server(t, hsName)
	localpart := strings.TrimPrefix(strings.SplitN(existing.UserID, ":", 2)[0], "@")
	c := d.newClient(t, s, client.CSAPIOpts{Password: existing.Password})
	if opts.Password != "" {
		c.Password = opts.Password
	}
	if opts.DeviceID == "" {
		c.UserID, c.AccessToken, c.DeviceID = c.LoginUser(t, localpart, opts.Password)
	} else {
		c.UserID, c.AccessToken, c.DeviceID = c.LoginUser(t, localpart, opts.Password, client.WithDeviceID(opts.DeviceID))
	}
	return c
}

func (d *deployment) AppServiceUser(t ct.TestLike, hsName, userID string) *client.CSAPI {
	t.Helper()
	s := d.server(t, hsName)
	s.mu.Lock()
	token := s.tokens[userID]
	s.mu.Unlock()
	if token == "" && userID != "" {
		ct.Fatalf(t, "AppServiceUser: no access token for %s on %s", userID, hsName)
	}
	return d.newClient(t, s, client.CSAPIOpts{UserID: userID, AccessToken: token})
}

func (d *deployment) Restart(t ct.TestLike) error {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.hs {
		s.stop()
		if err := s.run(d.cfg.SpawnHSTimeout); err != nil {
			t.Errorf("Restart %s: %s", s.name, err)
			return err
		}
	}
	return nil
}

func (d *deployment) StopServer(t ct.TestLike, hsName string) {
	t.Helper()
	d.server(t, hsName).stop()
}

func (d *deployment) StartServer(t ct.TestLike, hsName string) {
	t.Helper()
	s := d.server(t, hsName)
	if s.cmd != nil {
		ct.Fatalf(t, "StartServer: %s is running", hsName)
	}
	if err := s.run(d.cfg.SpawnHSTimeout); err != nil {
		ct.Fatalf(t, "StartServer %s: %s", hsName, err)
	}
}

func (d *deployment) PauseServer(t ct.TestLike, hsName string) {
	t.Helper()
	if s := d.server(t, hsName); s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

func (d *deployment) UnpauseServer(t ct.TestLike, hsName string) {
	t.Helper()
	if s := d.server(t, hsName); s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

func (d *deployment) ContainerID(t ct.TestLike, hsName string) string {
	t.Helper()
	s := d.server(t, hsName)
	if s.cmd == nil {
		return ""
	}
	return fmt.Sprintf("pid-%d", s.cmd.Process.Pid)
}

func (d *deployment) Destroy(t ct.TestLike) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.hs {
		s.kill()
		if t.Failed() || d.cfg.AlwaysPrintServerLogs {
			t.Logf("salon %s log (%s):\n%s", s.name, s.logPath, s.logTail())
		}
		if os.Getenv("SALON_KEEP_DIRS") == "" {
			_ = os.RemoveAll(s.dir)
		}
	}
}

func (d *deployment) GetConfig() *config.Complement   { return d.cfg }
func (d *deployment) RoundTripper() http.RoundTripper { return roundTripper{d} }
func (d *deployment) Network() string                 { return "" }

// roundTripper sends Complement's federation requests (https://hs1/…) to
// the named server's federation listener, as Complement's Docker
// deployment does (TLS without verification: the test is the client).
// Other hosts (Complement's own federation server, 127.0.0.1:PORT) are
// dialled as named.
type roundTripper struct{ d *deployment }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.d.mu.Lock()
	addr, ok := rt.d.fedAddr[req.URL.Host]
	rt.d.mu.Unlock()
	req = req.Clone(req.Context())
	if ok {
		req.URL.Host = addr
	}
	req.URL.Scheme = "https"
	return federationTransport.RoundTrip(req)
}

// federationTransport keeps no idle connections: servers stop and restart.
var federationTransport = &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test is the client, as in Complement's Docker deployment
	DisableKeepAlives: true,
}

var (
	caOnce sync.Once
	caPath string
	caErr  error
)

// caFile writes Complement's CA certificate once per test process.
func caFile(cfg *config.Complement) (string, error) {
	caOnce.Do(func() {
		var pemBytes []byte
		if pemBytes, caErr = cfg.CACertificateBytes(); caErr != nil {
			return
		}
		caPath = filepath.Join(os.Getenv("SALON_CONFORMANCE_DIR"), fmt.Sprintf("complement-ca-%d.pem", os.Getpid()))
		caErr = os.WriteFile(caPath, pemBytes, 0o644)
	})
	return caPath, caErr
}

// writeServerCert issues the federation listener's certificate for name
// (and 127.0.0.1) from Complement's CA.
func writeServerCert(cfg *config.Complement, name, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, cfg.CACertificate, &key.PublicKey, cfg.CAPrivateKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// realise makes a blueprint homeserver's users and rooms over the API.
func (d *deployment) realise(t ct.TestLike, s *server, h b.Homeserver) {
	t.Helper()
	users := map[string]*client.CSAPI{}
	for _, u := range h.Users {
		c := d.newClient(t, s, client.CSAPIOpts{Password: defaultPassword})
		c.UserID, c.AccessToken, c.DeviceID = c.RegisterUser(t, u.Localpart, defaultPassword)
		if u.DisplayName != "" {
			c.MustDo(t, "PUT", []string{"_matrix", "client", "v3", "profile", c.UserID, "displayname"},
				client.WithJSONBody(t, map[string]any{"displayname": u.DisplayName}))
		}
		if u.AvatarURL != "" {
			c.MustDo(t, "PUT", []string{"_matrix", "client", "v3", "profile", c.UserID, "avatar_url"},
				client.WithJSONBody(t, map[string]any{"avatar_url": u.AvatarURL}))
		}
		for _, ad := range u.AccountData {
			c.MustSetGlobalAccountData(t, ad.Type, ad.Value)
		}
		users[c.UserID] = c
		s.mu.Lock()
		s.tokens[c.UserID] = c.AccessToken
		s.mu.Unlock()
	}
	for _, r := range h.Rooms {
		var roomID string
		var via []spec.ServerName
		if r.Creator == "" {
			// A room another server of the blueprint made (its Ref).
			d.mu.Lock()
			room, ok := d.rooms[r.Ref]
			d.mu.Unlock()
			if !ok {
				ct.Fatalf(t, "blueprint room %q has no creator and no earlier server made it", r.Ref)
			}
			roomID, via = room.id, []spec.ServerName{spec.ServerName(room.server)}
		} else {
			creator := users[r.Creator]
			if creator == nil {
				ct.Fatalf(t, "blueprint room %q: creator %s is not a blueprint user", r.Ref, r.Creator)
			}
			body := r.CreateRoom
			if body == nil {
				body = map[string]any{}
			}
			roomID = creator.MustCreateRoom(t, body)
			if r.Ref != "" {
				d.mu.Lock()
				d.rooms[r.Ref] = blueprintRoom{id: roomID, server: s.name}
				d.mu.Unlock()
			}
		}
		for _, ev := range r.Events {
			sender := users[ev.Sender]
			if sender == nil {
				ct.Fatalf(t, "blueprint room %q: sender %s is not a blueprint user", r.Ref, ev.Sender)
			}
			if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == ev.Sender && ev.Content["membership"] == "join" {
				sender.MustJoinRoom(t, roomID, via)
				continue
			}
			path := []string{"_matrix", "client", "v3", "rooms", roomID}
			if ev.StateKey != nil {
				path = append(path, "state", ev.Type, *ev.StateKey)
			} else {
				path = append(path, "send", ev.Type, fmt.Sprintf("blueprint-%d", time.Now().UnixNano()))
			}
			sender.MustDo(t, "PUT", path, client.WithJSONBody(t, ev.Content))
		}
	}
}
