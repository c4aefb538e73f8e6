package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"

	"github.com/salonhq/salon/internal/testca"
)

// reservePort finds a loopback TCP port free right now.
func reservePort(t testing.TB) string {
	t.Helper()
	return testnet.Addr(t)
}

// fedNode is one Salon of a federation test: its server name, its
// federation address and its directories, kept across restarts.
type fedNode struct {
	Name    string
	FedAddr string
	DataDir string
	DB      string
	ca      *testca.CA
	peers   map[string]string
	srv     *testServer
}

func newFedNode(t testing.TB, ca *testca.CA, name, db string) *fedNode {
	return &fedNode{Name: name, FedAddr: reservePort(t), DataDir: t.TempDir(), DB: db, ca: ca, peers: map[string]string{}}
}

// start runs the node (again) with its data directory and database.
func (n *fedNode) start(t testing.TB, edit ...func(*Config)) *testServer {
	t.Helper()
	cert, key := n.ca.Issue(t, n.Name, n.Name)
	n.srv = startServer(t, n.DB, append([]func(*Config){func(c *Config) {
		c.ServerName = n.Name
		c.DataDir = n.DataDir
		c.Federation.Listen = n.FedAddr
		c.Federation.TLSCert, c.Federation.TLSKey = cert, key
		c.Federation.CAFile = n.ca.File
		c.Federation.Resolve = n.peers
	}}, edit...)...)
	return n.srv
}

// fedNodes makes one node per name under a new test CA, all peered: the
// first on database, the others each on a new database of the same
// backend.
func fedNodes(t testing.TB, database string, names ...string) []*fedNode {
	t.Helper()
	ca := testca.New(t)
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

func newFedHTTP(t testing.TB, ca *testca.CA, n *fedNode) *fedHTTP {
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
