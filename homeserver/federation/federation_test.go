package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newKey(t *testing.T) events.SigningKey {
	t.Helper()
	k, err := events.GenerateSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestResolve(t *testing.T) {
	srv := map[string][]*net.SRV{
		"matrix-fed.srv.example":   {{Target: "fed.srv.example.", Port: 1234}},
		"matrix.old.example":       {{Target: "legacy.old.example.", Port: 4321}},
		"matrix-fed.deleg.example": {{Target: "target.deleg.example.", Port: 999}},
	}
	wk := map[string]string{
		"wk.example":      "deleg.example",
		"wkport.example":  "other.example:8000",
		"wkip.example":    "10.0.0.5",
		"wknosrv.example": "plain.example",
	}
	r := &Resolver{
		Overrides: map[string]string{"over.example": "127.0.0.1:5555"},
		LookupSRV: func(_ context.Context, service, _, name string) (string, []*net.SRV, error) {
			if a, ok := srv[service+"."+name]; ok {
				return "", a, nil
			}
			return "", nil, errors.New("no such record")
		},
		WellKnown: func(_ context.Context, host string) (string, error) {
			if d, ok := wk[host]; ok {
				return d, nil
			}
			return "", errors.New("404")
		},
	}
	for _, tc := range []struct {
		name, server        string
		addr, host, tlsName string
	}{
		{"ipv4 literal", "192.0.2.1", "192.0.2.1:8448", "192.0.2.1", "192.0.2.1"},
		{"ipv4 with port", "192.0.2.1:99", "192.0.2.1:99", "192.0.2.1:99", "192.0.2.1"},
		{"ipv6 literal", "[2001:db8::1]", "[2001:db8::1]:8448", "[2001:db8::1]", "2001:db8::1"},
		{"explicit port", "example.org:8080", "example.org:8080", "example.org:8080", "example.org"},
		{"well-known then SRV", "wk.example", "target.deleg.example:999", "deleg.example", "deleg.example"},
		{"well-known with port", "wkport.example", "other.example:8000", "other.example:8000", "other.example"},
		{"well-known IP", "wkip.example", "10.0.0.5:8448", "10.0.0.5", "10.0.0.5"},
		{"well-known then 8448", "wknosrv.example", "plain.example:8448", "plain.example", "plain.example"},
		{"SRV matrix-fed", "srv.example", "fed.srv.example:1234", "srv.example", "srv.example"},
		{"SRV matrix (deprecated)", "old.example", "legacy.old.example:4321", "old.example", "old.example"},
		{"default port", "none.example", "none.example:8448", "none.example", "none.example"},
		{"override", "over.example", "127.0.0.1:5555", "over.example", "over.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := r.Resolve(context.Background(), tc.server)
			if err != nil {
				t.Fatal(err)
			}
			if d.Addr != tc.addr || d.Host != tc.host || d.TLSName != tc.tlsName {
				t.Fatalf("Resolve(%s) = %+v, want addr %s host %s tls %s", tc.server, d, tc.addr, tc.host, tc.tlsName)
			}
		})
	}
}

func TestXMatrix(t *testing.T) {
	key := newKey(t)
	x, err := SignRequest(key, "PUT", "/_matrix/federation/v1/send/1?a=b", "a.example", "b.example", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseXMatrix(x.String())
	if err != nil || got != x {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, x)
	}
	// Unquoted values, other order, other case of the scheme.
	got, err = ParseXMatrix(`x-matrix key=ed25519:1,sig=abc,origin=o.example`)
	if err != nil || got.Origin != "o.example" || got.KeyID != "ed25519:1" || got.Sig != "abc" || got.Destination != "" {
		t.Fatalf("unquoted: %+v %v", got, err)
	}
	for _, bad := range []string{"", "Bearer x", `X-Matrix origin="a.example"`, `X-Matrix origin="bad name",key="k",sig="s"`, `X-Matrix garbage`} {
		if _, err := ParseXMatrix(bad); err == nil {
			t.Errorf("ParseXMatrix(%q) accepted", bad)
		}
	}
	// The signature covers what the receiver rebuilds.
	obj, _ := requestJSON("PUT", "/_matrix/federation/v1/send/1?a=b", "a.example", "b.example", []byte(`{"x":1}`))
	var m map[string]any
	_ = json.Unmarshal(obj, &m)
	m["signatures"] = map[string]any{"a.example": map[string]string{key.ID: x.Sig}}
	signed, _ := json.Marshal(m)
	if err := events.VerifyJSON(signed, "a.example", key.ID, key.Public()); err != nil {
		t.Fatal(err)
	}
	// What the receiver checks: verifies for the destination signed for,
	// not for another.
	signed, err = x.signedRequestJSON("PUT", "/_matrix/federation/v1/send/1?a=b", "b.example", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.VerifyJSON(signed, "a.example", key.ID, key.Public()); err != nil {
		t.Fatal(err)
	}
	signed, _ = x.signedRequestJSON("PUT", "/_matrix/federation/v1/send/1?a=b", "c.example", []byte(`{"x":1}`))
	if err := events.VerifyJSON(signed, "a.example", key.ID, key.Public()); err == nil {
		t.Fatal("signature verified for another destination")
	}
}

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		allow, deny []string
		server      string
		want        bool
	}{
		{nil, nil, "any.example", true},
		{nil, []string{"bad.example"}, "bad.example", false},
		{nil, []string{"bad.example"}, "bad.example:8448", false},
		{nil, []string{"*.bad.example"}, "x.bad.example", false},
		{nil, []string{"*.bad.example"}, "bad.example", true},
		{[]string{"uni.example", "*.campus.example"}, nil, "uni.example", true},
		{[]string{"uni.example", "*.campus.example"}, nil, "a.campus.example", true},
		{[]string{"uni.example"}, nil, "other.example", false},
		{[]string{"uni.example"}, []string{"uni.example"}, "uni.example", false},
	} {
		if got := NewPolicy(tc.allow, tc.deny).Allowed(tc.server); got != tc.want {
			t.Errorf("allow %v deny %v: Allowed(%s) = %v", tc.allow, tc.deny, tc.server, got)
		}
	}
}

func TestConfig(t *testing.T) {
	c := Defaults()
	if c.On("localhost") || c.On("localhost:8008") || !c.On("uni.example") {
		t.Fatal("default enabled must follow the server name")
	}
	on := true
	c.Enabled = &on
	c.Listen = "nonsense"
	c.TLSCert = "/nonexistent.pem"
	c.Deny = []string{"bad name"}
	c.Resolve = map[string]string{"x.example": "noport"}
	c.KeyValidity = time.Minute
	err := c.Validate("localhost")
	for _, want := range []string{"federation.enabled", "federation.listen", "federation.tls_cert", "federation.deny[0]", "federation.resolve", "federation.key_validity"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want a problem with %s", err, want)
		}
	}
	d := Defaults()
	if err := d.Validate("uni.example"); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRotation: after the signing key changes, /key/v2/server lists the
// old key in old_verify_keys with the time it stopped, everything signed by
// the new key, and the keyring accepts the old key for what it signed
// before then only.
func TestKeyRotation(t *testing.T) {
	st := openStore(t)
	k1, k2 := newKey(t), newKey(t)
	now := time.UnixMilli(1_000_000)
	clock := func() time.Time { return now }
	s1, err := New(context.Background(), Params{ServerName: "a.example", Key: k1, Store: st, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
	now = now.Add(time.Hour)
	s2, err := New(context.Background(), Params{ServerName: "a.example", Key: k2, Store: st, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	raw, err := s2.ServerKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, validUntil, err := parseKeyAnswer(raw, "a.example", now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if validUntil != now.Add(7*24*time.Hour).UnixMilli() || len(keys) != 2 {
		t.Fatalf("answer: %s", raw)
	}
	var a keyAnswer
	_ = json.Unmarshal(raw, &a)
	if _, ok := a.VerifyKeys[k2.ID]; !ok {
		t.Fatalf("current key missing: %s", raw)
	}
	if old, ok := a.OldVerifyKeys[k1.ID]; !ok || old.ExpiredTS != now.UnixMilli() || old.Key != k1.PublicBase64() {
		t.Fatalf("old key: %s", raw)
	}
	if _, err := s2.Keyring.VerifyKey(context.Background(), "a.example", k1.ID, now.Add(-time.Minute).UnixMilli()); err != nil {
		t.Fatalf("old key before its expiry: %v", err)
	}
	if _, err := s2.Keyring.VerifyKey(context.Background(), "a.example", k1.ID, now.Add(time.Minute).UnixMilli()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key after its expiry: %v", err)
	}
}

// tlsNet is a CA and TLS test servers named by it.
type tlsNet struct {
	ca    *x509.Certificate
	key   *ecdsa.PrivateKey
	roots *x509.CertPool
}

func newTLSNet(t *testing.T) *tlsNet {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	n := &tlsNet{ca: ca, key: key, roots: x509.NewCertPool()}
	n.roots.AddCert(ca)
	return n
}

// serve starts h with TLS for host and returns its address.
func (n *tlsNet) serve(t *testing.T, host string, h http.Handler) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.DNSNames, tmpl.IPAddresses = nil, []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, n.ca, &key.PublicKey, n.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestNotary: a server whose keys cannot be fetched directly is found
// through a notary; the notary's answer must carry its own signature and
// the server's.
func TestNotary(t *testing.T) {
	ctx := context.Background()
	n := newTLSNet(t)
	yes := true
	newService := func(name string, resolve map[string]string, notaries []string) *Service {
		s, err := New(ctx, Params{ServerName: name, Key: newKey(t), Store: openStore(t), Roots: n.roots,
			Config: Config{Enabled: &yes, Resolve: resolve, Notaries: notaries}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	// y.example is reachable by the notary only.
	yResolve := map[string]string{}
	y := newService("y.example", yResolve, nil)
	yAddr := n.serve(t, "y.example", y.Handler())
	notaryResolve := map[string]string{"y.example": yAddr}
	notary := newService("notary.example", notaryResolve, nil)
	notaryAddr := n.serve(t, "notary.example", notary.Handler())
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	x := newService("x.example", map[string]string{"y.example": closed, "nowhere.example": closed, "notary.example": notaryAddr}, []string{"notary.example"})

	// Something y.example signed verifies at x through the notary.
	obj, _ := events.SignJSON([]byte(`{"hello":"world"}`), "y.example", y.p.Key)
	if err := x.Keyring.VerifyJSON(ctx, "y.example", obj, time.Now().UnixMilli()); err != nil {
		t.Fatalf("verify through the notary: %v", err)
	}
	// Tampered: refused.
	bad := []byte(strings.Replace(string(obj), "world", "w0rld", 1))
	if err := x.Keyring.VerifyJSON(ctx, "y.example", bad, time.Now().UnixMilli()); !errors.Is(err, events.ErrBadSignature) {
		t.Fatalf("tampered object: %v", err)
	}
	// An unknown server: refused, and not asked again at once.
	if _, err := x.Keyring.VerifyKey(ctx, "nowhere.example", "ed25519:x", time.Now().UnixMilli()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown server: %v", err)
	}
}

// TestPrivateAddressRefused: discovery never leads into the server's own
// network; only federation.resolve may name such an address.
func TestPrivateAddressRefused(t *testing.T) {
	n := newTLSNet(t)
	reached := false
	addr := n.serve(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	yes := true
	s, err := New(context.Background(), Params{ServerName: "x.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
		Config: Config{Enabled: &yes}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Client.Get(context.Background(), addr, "/_matrix/federation/v1/version", nil, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not public") || reached {
		t.Fatalf("loopback server name: %v (reached %v)", err, reached)
	}
}

// TestAllowNetworks: federation.allow_networks lets outbound connections
// reach a listed private network under any server name (an IP literal
// with a port no resolve entry names, as Complement's federation server
// has); an address outside the list stays refused; a bad prefix is a
// configuration error.
func TestAllowNetworks(t *testing.T) {
	n := newTLSNet(t)
	var reached atomic.Int32
	addr := n.serve(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"server":{"name":"test"}}`))
	}))
	yes := true
	newService := func(nets []string) *Service {
		s, err := New(context.Background(), Params{ServerName: "x.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
			Config: Config{Enabled: &yes, AllowNetworks: nets}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	var out map[string]any
	if err := newService([]string{"127.0.0.0/8"}).Client.Get(context.Background(), addr, "/_matrix/federation/v1/version", nil, &out); err != nil || reached.Load() != 1 {
		t.Fatalf("listed loopback: %v (reached %d)", err, reached.Load())
	}
	err := newService([]string{"10.0.0.0/8"}).Client.Get(context.Background(), addr, "/_matrix/federation/v1/version", nil, &out)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not public") || reached.Load() != 1 {
		t.Fatalf("loopback outside the list: %v (reached %d)", err, reached.Load())
	}
	c := Defaults()
	c.AllowNetworks = []string{"127.0.0.1/32", "loopback"}
	if err := c.Validate("x.example"); err == nil || !strings.Contains(err.Error(), "federation.allow_networks[1]") || strings.Contains(err.Error(), "allow_networks[0]") {
		t.Fatalf("Validate: %v", err)
	}
}

// TestQueueBackoffEndsWhenDestinationCalls: a destination in backoff gets
// its queued transaction as soon as it contacts this server, not when the
// backoff ends.
func TestQueueBackoffEndsWhenDestinationCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := newTLSNet(t)
	yes := true
	xResolve, yResolve := map[string]string{}, map[string]string{}
	xStore := openStore(t)
	x, err := New(ctx, Params{ServerName: "x.example", Key: newKey(t), Store: xStore, Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: xResolve}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	y, err := New(ctx, Params{ServerName: "y.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: yResolve}})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	xResolve["y.example"] = n.serve(t, "y.example", y.Handler())
	yResolve["x.example"] = n.serve(t, "x.example", x.Handler())

	if err := xStore.SetFederationRetry(ctx, store.DestinationRetry{Destination: "y.example", Failures: 10,
		RetryTS: time.Now().Add(10 * time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := x.QueueEDU(ctx, "y.example", "m.typing", map[string]any{"room_id": "!r:y.example", "user_id": "@u:x.example", "typing": true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = x.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	depth := func() int {
		d, err := xStore.FederationQueueDepths(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d["y.example"]
	}
	time.Sleep(300 * time.Millisecond)
	if depth() != 1 {
		t.Fatal("the backoff was not respected")
	}
	// y.example calls: a signed query (for a user x does not have).
	err = y.Client.Get(ctx, "x.example", "/_matrix/federation/v1/query/profile", map[string][]string{"user_id": {"@nobody:x.example"}}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusNotFound {
		t.Fatalf("signed query: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for depth() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the queued transaction did not go when the destination called")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r, _ := xStore.FederationRetry(ctx, "y.example"); r.Failures != 0 {
		t.Fatalf("backoff not cleared: %+v", r)
	}
}

// pduRecorder is a PDUReceiver that records what it gets and refuses
// PDUs with "bad": true.
type pduRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *pduRecorder) ReceivePDU(_ context.Context, origin string, pdu json.RawMessage) (string, error) {
	var p struct {
		N   int  `json:"n"`
		Bad bool `json:"bad"`
	}
	if err := json.Unmarshal(pdu, &p); err != nil {
		return "", err
	}
	id := fmt.Sprintf("$%d", p.N)
	if p.Bad {
		return id, mxerr.Forbid("refused")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, origin+" "+id)
	return id, nil
}

// TestPDUsThroughQueue: PDUs queued for a destination go out in
// transactions of at most 50, in order, to the receiver's PDUReceiver; a
// refused PDU is answered alone and not sent again.
func TestPDUsThroughQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := newTLSNet(t)
	yes := true
	xResolve, yResolve := map[string]string{}, map[string]string{}
	xStore := openStore(t)
	x, err := New(ctx, Params{ServerName: "x.example", Key: newKey(t), Store: xStore, Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: xResolve}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rec := &pduRecorder{}
	y, err := New(ctx, Params{ServerName: "y.example", Key: newKey(t), Store: openStore(t), Roots: n.roots, PDUs: rec,
		Config: Config{Enabled: &yes, Resolve: yResolve}})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	var sends atomic.Int32
	yh := y.Handler()
	xResolve["y.example"] = n.serve(t, "y.example", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			sends.Add(1)
		}
		yh.ServeHTTP(w, r)
	}))
	yResolve["x.example"] = n.serve(t, "x.example", x.Handler())

	for i := 0; i < 60; i++ {
		pdu := fmt.Sprintf(`{"n":%d,"bad":%v}`, i, i == 7)
		if err := x.QueuePDU(ctx, []string{"y.example", "x.example"}, json.RawMessage(pdu)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = x.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := xStore.FederationQueueDepths(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained: %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 59 || rec.got[0] != "x.example $0" || rec.got[58] != "x.example $59" {
		t.Fatalf("received %d PDUs: %v", len(rec.got), rec.got)
	}
	if s := sends.Load(); s < 2 {
		t.Fatalf("60 PDUs went in %d transaction(s)", s)
	}
}

// TestNotariesWithoutKeys: notaries whose own keys this server cannot
// fetch are not asked about each other (that went round in circles until
// a timeout): the lookup fails at once.
func TestNotariesWithoutKeys(t *testing.T) {
	ctx := context.Background()
	n := newTLSNet(t)
	yes := true
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	noKeys := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/_matrix/key/v2/server") {
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	// The notaries see y.example and each other whole; x.example sees
	// neither y.example nor the notaries' keys.
	among := map[string]string{}
	xResolve := map[string]string{"y.example": closed}
	service := func(name string, resolve map[string]string, notaries []string) *Service {
		s, err := New(ctx, Params{ServerName: name, Key: newKey(t), Store: openStore(t), Roots: n.roots,
			Config: Config{Enabled: &yes, Resolve: resolve, Notaries: notaries}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	y := service("y.example", nil, nil)
	among["y.example"] = n.serve(t, "y.example", y.Handler())
	for _, name := range []string{"n1.example", "n2.example"} {
		s := service(name, among, nil)
		among[name] = n.serve(t, name, s.Handler())
		xResolve[name] = n.serve(t, name, noKeys(s.Handler()))
	}
	x := service("x.example", xResolve, []string{"n1.example", "n2.example"})
	start := time.Now()
	_, err := x.Keyring.VerifyKey(ctx, "y.example", "ed25519:a", time.Now().UnixMilli())
	if !errors.Is(err, ErrUnknownKey) || time.Since(start) > 10*time.Second {
		t.Fatalf("lookup: %v after %v", err, time.Since(start))
	}
}

// TestQueryKeysKeepsWhatServerMaySay: a remote /user/keys/query answer is
// trimmed to the server's own users and to device keys filed under the
// user and device they name.
func TestQueryKeysKeepsWhatServerMaySay(t *testing.T) {
	ctx := context.Background()
	n := newTLSNet(t)
	yes := true
	answer := `{"device_keys":{
		"@u:y.example":{"GOOD":{"user_id":"@u:y.example","device_id":"GOOD"},"SWAPPED":{"user_id":"@u:y.example","device_id":"OTHER"},
			"WRONGUSER":{"user_id":"@v:y.example","device_id":"WRONGUSER"}},
		"@victim:x.example":{"D":{"user_id":"@victim:x.example","device_id":"D"}}},
		"master_keys":{"@victim:x.example":{},"@u:y.example":{"user_id":"@u:y.example"}},
		"self_signing_keys":{},"user_signing_keys":{"@u:y.example":{}}}`
	addr := n.serve(t, "y.example", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	}))
	x, err := New(ctx, Params{ServerName: "x.example", Key: newKey(t), Store: openStore(t), Roots: n.roots,
		Config: Config{Enabled: &yes, Resolve: map[string]string{"y.example": addr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	res, err := x.QueryKeys(ctx, "y.example", map[string][]string{"@u:y.example": nil})
	if err != nil {
		t.Fatal(err)
	}
	devs := res.DeviceKeys["@u:y.example"]
	if len(res.DeviceKeys) != 1 || len(devs) != 1 || devs["GOOD"] == nil {
		t.Fatalf("device keys kept: %v", res.DeviceKeys)
	}
	if len(res.MasterKeys) != 1 || res.MasterKeys["@u:y.example"] == nil || res.UserSigningKeys != nil {
		t.Fatalf("cross-signing keys kept: %v %v", res.MasterKeys, res.UserSigningKeys)
	}
}
