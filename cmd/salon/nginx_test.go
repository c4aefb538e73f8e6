package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/salonhq/salon/homeserver/mxtest"
	"github.com/salonhq/salon/homeserver/store/storetest"
)

// TestBehindNginx runs deploy/nginx-salon.conf, as shipped, in a real
// nginx in front of a real Salon and uses the service through it: the
// well-known document, registration, a /sync long-poll woken by a message,
// an upload streamed and read back, a MatrixRTC token and the SFU's
// WebSocket, and the operational endpoints kept off the public side.
func TestBehindNginx(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			if storetest.MustReachPostgres() { // under CI=true the scripts install it
				t.Fatal("nginx is missing (scripts/test-deps.sh installs it)")
			}
			t.Skip("nginx is not installed (apt-get install nginx-light)")
		}
	}
	port := func() string { _, p, _ := net.SplitHostPort(freePort(t)); return p }
	httpsPort, httpPort := port(), port()
	srv := startServer(t, "sqlite:salon.db", func(c *Config) {
		c.PublicBaseURL = "https://matrix.test:" + httpsPort
		c.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
	})
	upstream := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	certPEM := writeTestCert(t, dir, "matrix.test")
	site, err := os.ReadFile("../../deploy/nginx-salon.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(site)
	for _, r := range []struct{ old, new string }{
		{"server 127.0.0.1:8008;", "server " + upstream + ";"},
		{"listen 80;", "listen 127.0.0.1:" + httpPort + ";"},
		{"listen [::]:80;", ""},
		{"listen 443 ssl http2;", "listen 127.0.0.1:" + httpsPort + " ssl http2;"},
		{"listen [::]:443 ssl http2;", ""},
		{"/etc/letsencrypt/live/matrix.example.org/fullchain.pem", filepath.Join(dir, "cert.pem")},
		{"/etc/letsencrypt/live/matrix.example.org/privkey.pem", filepath.Join(dir, "key.pem")},
		{"matrix.example.org", "matrix.test"},
	} {
		if !strings.Contains(conf, r.old) {
			t.Fatalf("deploy/nginx-salon.conf no longer has %q: update this test with it", r.old)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Getuid() == 0 {
		user = "user root;" // workers must write the temp directories below
	}
	main := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/site.conf;
}
`, user, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx: %s%s", stderr.String(), b)
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "matrix.test"}
	dial := func(network, _ string) (net.Conn, error) {
		return net.Dial(network, "127.0.0.1:"+httpsPort)
	}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   tlsConf,
		Dial:              dial,
		ForceAttemptHTTP2: true,
	}}
	base := "https://matrix.test:" + httpsPort
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := hc.Get(base + "/_matrix/client/versions")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				if res.ProtoMajor != 2 {
					t.Errorf("served over HTTP/%d, want HTTP/2", res.ProtoMajor)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := func() *mxtest.Client { c := mxtest.New(t, base); c.HTTP = hc; return c }

	t.Run("plain http redirects", func(t *testing.T) {
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noFollow.Get("http://127.0.0.1:" + httpPort + "/_matrix/client/versions")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(res.Header.Get("Location"), "https://") {
			t.Fatalf("got %d %q", res.StatusCode, res.Header.Get("Location"))
		}
	})

	t.Run("operational endpoints stay local", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/health"} {
			res, err := hc.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("%s through nginx: %d, want 404", p, res.StatusCode)
			}
		}
	})

	wk := client().Must(200, "GET", "/.well-known/matrix/client", nil)
	if hs, _ := wk.Body["m.homeserver"].(map[string]any); hs["base_url"] != base {
		t.Fatalf("well-known: %s", wk.Raw)
	}

	alice := client().Register("alice", "password alice")
	bob := client().Register("bob", "password bob")
	room := alice.Must(200, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}}).Str("room_id")
	bob.Must(200, "POST", mxtest.Path("/_matrix/client/v3/join/%s", room), map[string]any{})

	t.Run("a long-poll is woken by a message", func(t *testing.T) {
		since := bob.Must(200, "GET", "/_matrix/client/v3/sync?timeout=0", nil).Str("next_batch")
		got := make(chan mxtest.Response, 1)
		start := time.Now()
		go func() {
			got <- bob.Do("GET", "/_matrix/client/v3/sync?timeout=30000&since="+url.QueryEscape(since), nil)
		}()
		time.Sleep(300 * time.Millisecond)
		alice.Must(200, "PUT", mxtest.Path("/_matrix/client/v3/rooms/%s/send/m.room.message/t1", room), map[string]any{"msgtype": "m.text", "body": "through nginx"})
		r := <-got
		if r.Status != 200 || !bytes.Contains(r.Raw, []byte("through nginx")) {
			t.Fatalf("sync: %d %s", r.Status, r.Raw)
		}
		if waited := time.Since(start); waited > 20*time.Second {
			t.Fatalf("the long-poll answered only at its timeout (%s)", waited)
		}
	})

	t.Run("an upload streams through and reads back", func(t *testing.T) {
		body := make([]byte, 3<<20)
		_, _ = rand.Read(body)
		req, _ := http.NewRequest("POST", base+"/_matrix/media/v3/upload?filename=blob.bin", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var up struct {
			ContentURI string `json:"content_uri"`
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("upload: %d %s", res.StatusCode, raw)
		}
		if err := json.Unmarshal(raw, &up); err != nil || !strings.HasPrefix(up.ContentURI, "mxc://") {
			t.Fatalf("upload answer: %s", raw)
		}
		req, _ = http.NewRequest("GET", base+"/_matrix/client/v1/media/download/"+strings.TrimPrefix(up.ContentURI, "mxc://"), nil)
		req.Header.Set("Authorization", "Bearer "+bob.Token)
		res, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("download: %d, %d bytes, identical %v", res.StatusCode, len(got), bytes.Equal(got, body))
		}
	})

	t.Run("a call token and the SFU's WebSocket", func(t *testing.T) {
		tok := getToken(alice, room, openIDToken(t, alice))
		if tok.Status != 200 {
			t.Fatalf("get_token: %d %s", tok.Status, tok.Raw)
		}
		sfu := tok.Str("url")
		if !strings.HasPrefix(sfu, "wss://matrix.test:"+httpsPort+"/") {
			t.Fatalf("the SFU URL %q is not behind the proxy", sfu)
		}
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "matrix.test"}, NetDial: dial, HandshakeTimeout: 10 * time.Second}
		ws, res, err := d.Dial(sfu+"/rtc?access_token="+url.QueryEscape(tok.Str("jwt"))+"&protocol=15&sdk=go", nil)
		if err != nil {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Fatalf("dial %s: %v (HTTP %d)", sfu, err, status)
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var sr livekit.SignalResponse
		if typ != websocket.BinaryMessage || proto.Unmarshal(msg, &sr) != nil || sr.GetJoin() == nil {
			t.Fatalf("first message is not a join response: type %d, %v", typ, sr.String())
		}
		if sr.GetJoin().GetParticipant().GetName() != alice.UserID {
			t.Fatalf("joined as %q", sr.GetJoin().GetParticipant().GetName())
		}
	})
}

// writeTestCert writes a self-signed certificate and key for host into dir
// (cert.pem, key.pem) and returns the certificate's PEM.
func writeTestCert(t *testing.T, dir, host string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}
