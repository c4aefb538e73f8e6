package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test: it issues the
// federation listeners' certificates, and the servers trust it through
// federation.ca_file.
type testCA struct {
	dir    string
	CAFile string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	Pool   *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Salon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key, Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	ca.CAFile = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for host and returns its PEM files.
func (ca *testCA) issue(t testing.TB, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, host+".pem"), filepath.Join(ca.dir, host+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reservePort finds a loopback TCP port free right now.
func reservePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// fedNode is one Salon of a federation test: its server name, its
// federation address and its directories, kept across restarts.
type fedNode struct {
	Name    string
	FedAddr string
	DataDir string
	DB      string
	ca      *testCA
	peers   map[string]string
	srv     *testServer
}

func newFedNode(t testing.TB, ca *testCA, name, db string) *fedNode {
	return &fedNode{Name: name, FedAddr: reservePort(t), DataDir: t.TempDir(), DB: db, ca: ca, peers: map[string]string{}}
}

// start runs the node (again) with its data directory and database.
func (n *fedNode) start(t testing.TB, edit ...func(*Config)) *testServer {
	t.Helper()
	cert, key := n.ca.issue(t, n.Name)
	n.srv = startServer(t, n.DB, append([]func(*Config){func(c *Config) {
		c.ServerName = n.Name
		c.DataDir = n.DataDir
		c.Federation.Listen = n.FedAddr
		c.Federation.TLSCert, c.Federation.TLSKey = cert, key
		c.Federation.CAFile = n.ca.CAFile
		c.Federation.Resolve = n.peers
	}}, edit...)...)
	return n.srv
}

// fedNodes makes one node per name under a new test CA, all peered: the
// first on database, the others each on a new database of the same
// backend.
func fedNodes(t testing.TB, database string, names ...string) []*fedNode {
	t.Helper()
	ca := newTestCA(t)
	nodes := make([]*fedNode, len(names))
	for i, name := range names {
		db := database
		if i > 0 {
			db = backends(t)[backendOf(database)](t)
		}
		nodes[i] = newFedNode(t, ca, name, db)
	}
	peer(nodes...)
	return nodes
}

// peer makes each node reach the other at its federation address.
func peer(nodes ...*fedNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.peers[b.Name] = b.FedAddr
			}
		}
	}
}

// fedHTTP calls a federation listener directly, trusting the test CA.
type fedHTTP struct {
	t    testing.TB
	http *http.Client
	addr string
	name string
}

func newFedHTTP(t testing.TB, ca *testCA, n *fedNode) *fedHTTP {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: n.Name, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, n.FedAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &fedHTTP{t: t, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, addr: n.FedAddr, name: n.Name}
}

// do sends a request with the given Authorization header ("" for none)
// and returns the status and decoded body.
func (f *fedHTTP) do(method, uri, auth string, body []byte) (int, map[string]any, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+f.name+uri, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}
