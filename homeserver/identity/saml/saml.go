// Package saml is Salon's SAML 2.0 service provider, one per configured
// identity provider (github.com/crewjam/saml): signed AuthnRequests over
// the HTTP-Redirect binding, responses over HTTP-POST whose signature,
// audience, recipient, time window, InResponseTo and one-time use are
// checked, metadata published at a stable URL and the IdP's fetched from
// a file or URL. It only says who signed in; package identity makes the
// account.
package saml

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/salonhq/salon/homeserver/identity"
	"github.com/salonhq/salon/homeserver/store"
)

// Params are what a Provider needs.
type Params struct {
	Config  Config
	BaseURL string // the server's public base URL
	DataDir string // where a generated key pair is kept
	// Used records assertion IDs so each is accepted once (the store).
	Used       store.SSOIdentities
	HTTPClient *http.Client // for the metadata URL; a 30-second client when nil
	Logger     *slog.Logger
	// Clock is the time the checks use (nil: the real clock).
	Clock *dsig.Clock
}

// Provider is one SAML identity provider.
type Provider struct {
	p    Params
	cfg  Config
	base crewsaml.ServiceProvider // without IdP metadata
	sp   atomic.Pointer[crewsaml.ServiceProvider]
	log  *slog.Logger
}

// New builds the service provider for one IdP. The metadata file must be
// readable; a metadata URL that cannot be fetched yet is only logged (Run
// retries it), so one unreachable IdP does not keep the server down.
func New(ctx context.Context, p Params) (*Provider, error) {
	cfg := p.Config.WithDefaults()
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	key, cert, err := loadOrMakeKey(cfg, p.DataDir)
	if err != nil {
		return nil, fmt.Errorf("saml %s: %w", cfg.ID, err)
	}
	mdURL, err := url.Parse(identity.MetadataURL(p.BaseURL, cfg.ID))
	if err != nil {
		return nil, err
	}
	acsURL, err := url.Parse(identity.CallbackURL(p.BaseURL, cfg.ID))
	if err != nil {
		return nil, err
	}
	pr := &Provider{p: p, cfg: cfg, log: p.Logger.With("idp", cfg.ID)}
	pr.base = crewsaml.ServiceProvider{
		EntityID:                         cfg.EntityID,
		Key:                              key,
		Certificate:                      cert,
		MetadataURL:                      *mdURL,
		AcsURL:                           *acsURL,
		SignatureMethod:                  dsig.RSASHA256SignatureMethod,
		AssertionConsumerServiceBindings: []string{crewsaml.HTTPPostBinding},
		AuthnNameIDFormat:                crewsaml.UnspecifiedNameIDFormat,
		ReplayCache:                      replayCache{used: p.Used, scope: "saml:" + cfg.ID},
		Clock:                            p.Clock,
		MetadataValidDuration:            7 * 24 * time.Hour,
	}
	sp := pr.base
	pr.sp.Store(&sp)
	if cfg.IdPMetadataFile != "" {
		data, err := os.ReadFile(cfg.IdPMetadataFile)
		if err != nil {
			return nil, fmt.Errorf("saml %s: idp_metadata_file: %w", cfg.ID, err)
		}
		if err := pr.setMetadata(data); err != nil {
			return nil, fmt.Errorf("saml %s: idp_metadata_file %s: %w", cfg.ID, cfg.IdPMetadataFile, err)
		}
	} else if err := pr.fetch(ctx); err != nil {
		pr.log.Error("SAML identity provider metadata unavailable: sign-in through it fails until it can be fetched", "url", cfg.IdPMetadataURL, "err", err)
	}
	return pr, nil
}

// Info is how the provider is shown.
func (pr *Provider) Info() identity.Info {
	return identity.Info{ID: pr.cfg.ID, Name: pr.cfg.Name, Icon: pr.cfg.Icon}
}

func (pr *Provider) setMetadata(data []byte) error {
	md, err := samlsp.ParseMetadata(data)
	if err != nil {
		return err
	}
	sp := pr.base
	sp.IDPMetadata = md
	if sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding) == "" {
		return errors.New("the IdP metadata has no SingleSignOnService with the HTTP-Redirect binding")
	}
	pr.sp.Store(&sp)
	return nil
}

func (pr *Provider) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.cfg.IdPMetadataURL, nil)
	if err != nil {
		return err
	}
	resp, err := pr.p.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", pr.cfg.IdPMetadataURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	if err != nil {
		return err
	}
	return pr.setMetadata(data)
}

// Ready reports whether the IdP's metadata is loaded.
func (pr *Provider) Ready() bool { return pr.sp.Load().IDPMetadata != nil }

// Run refreshes metadata from a URL until ctx ends: every
// metadata_refresh, and every minute while none could be fetched.
func (pr *Provider) Run(ctx context.Context) {
	if pr.cfg.IdPMetadataURL == "" {
		return
	}
	for {
		wait := pr.cfg.MetadataRefresh
		if !pr.Ready() {
			wait = time.Minute
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := pr.fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			pr.log.Warn("refresh SAML identity provider metadata", "url", pr.cfg.IdPMetadataURL, "err", err)
		} else {
			pr.log.Info("SAML identity provider metadata refreshed")
		}
	}
}

// Begin makes a signed AuthnRequest (HTTP-Redirect binding) carrying
// state as RelayState; the memo is the request's ID, which the response
// must answer (InResponseTo).
func (pr *Provider) Begin(ctx context.Context, state string) (string, string, error) {
	sp := pr.sp.Load()
	if sp.IDPMetadata == nil {
		return "", "", fmt.Errorf("%w: no metadata from %s yet", identity.ErrUnavailable, pr.cfg.IdPMetadataURL)
	}
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding), crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		return "", "", err
	}
	u, err := req.Redirect(state, sp)
	if err != nil {
		return "", "", err
	}
	return u.String(), req.ID, nil
}

// State is the RelayState of the POSTed response.
func (pr *Provider) State(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	return r.PostFormValue("RelayState")
}

// Finish checks the POSTed response (signature, audience, recipient and
// destination, time window, InResponseTo memo, assertion not seen before)
// and maps its attributes.
func (pr *Provider) Finish(ctx context.Context, r *http.Request, state, memo string) (identity.Identity, error) {
	sp := pr.sp.Load()
	if sp.IDPMetadata == nil {
		return identity.Identity{}, identity.ErrUnavailable
	}
	if r.PostForm.Get("SAMLResponse") == "" {
		return identity.Identity{}, fmt.Errorf("%w: no SAMLResponse", identity.ErrRefused)
	}
	a, err := sp.ParseResponse(r, []string{memo})
	if err != nil {
		var ire *crewsaml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			err = ire.PrivateErr
		}
		return identity.Identity{}, fmt.Errorf("%w: %v", identity.ErrRefused, err)
	}
	return pr.identityOf(a)
}

func (pr *Provider) identityOf(a *crewsaml.Assertion) (identity.Identity, error) {
	at := pr.cfg.Attributes
	id := identity.Identity{
		Localpart:   attr(a, at.Localpart),
		DisplayName: attr(a, at.DisplayName),
		Email:       attr(a, at.Email),
	}
	if at.Subject != "" {
		id.Subject = attr(a, at.Subject)
		if id.Subject == "" {
			return id, fmt.Errorf("%w: attribute %s", identity.ErrMissingAttribute, at.Subject)
		}
	} else {
		if a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
			return id, fmt.Errorf("%w: NameID", identity.ErrMissingAttribute)
		}
		if a.Subject.NameID.Format == string(crewsaml.TransientNameIDFormat) {
			return id, fmt.Errorf("%w: the NameID is transient (changes every sign-in); set attributes.subject to a stable attribute", identity.ErrMissingAttribute)
		}
		id.Subject = a.Subject.NameID.Value
	}
	if id.Localpart == "" {
		return id, fmt.Errorf("%w: attribute %s", identity.ErrMissingAttribute, at.Localpart)
	}
	return id, nil
}

// attr is the first value of the attribute with that Name or FriendlyName.
func attr(a *crewsaml.Assertion, name string) string {
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == name || at.FriendlyName == name {
				for _, v := range at.Values {
					if s := strings.TrimSpace(v.Value); s != "" {
						return s
					}
				}
			}
		}
	}
	return ""
}

// ServeMetadata publishes the service provider's metadata.
func (pr *Provider) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	md := pr.sp.Load().Metadata()
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(md); err != nil {
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(buf.Bytes())
}

// ServiceProvider is the current service provider (for tests and
// `salon config check`).
func (pr *Provider) ServiceProvider() *crewsaml.ServiceProvider { return pr.sp.Load() }

// replayCache accepts each assertion ID once, in the database, so a
// replay is refused also after a restart.
type replayCache struct {
	used  store.SSOIdentities
	scope string
}

func (c replayCache) Consume(id string, expires time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.used.UseOnce(ctx, c.scope, id, expires.UnixMilli(), time.Now().UnixMilli())
	if errors.Is(err, store.ErrExists) {
		return crewsaml.ErrAssertionReplayed
	}
	return err
}

// loadOrMakeKey reads the configured key pair, or the one made earlier
// in DATA_DIR/sso, or makes it.
func loadOrMakeKey(cfg Config, dataDir string) (crypto.Signer, *x509.Certificate, error) {
	keyFile, certFile := cfg.KeyFile, cfg.CertFile
	if keyFile == "" {
		dir := filepath.Join(dataDir, "sso")
		keyFile, certFile = filepath.Join(dir, "saml-"+cfg.ID+".key"), filepath.Join(dir, "saml-"+cfg.ID+".crt")
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			if err := makeKeyPair(dir, keyFile, certFile, cfg.ID); err != nil {
				return nil, nil, err
			}
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("key pair %s, %s: %w", keyFile, certFile, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("key %s: must be an RSA key", keyFile)
	}
	return key, cert, nil
}

func makeKeyPair(dir, keyFile, certFile, id string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Salon SAML service provider " + id},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(20, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, kb, 0o600)
}

// CheckMetadata reads the IdP metadata the configuration names (the file,
// or the URL fetched now) and checks that it is usable, for `salon config
// check`.
func CheckMetadata(ctx context.Context, cfg Config, client *http.Client) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	cfg = cfg.WithDefaults()
	pr := &Provider{p: Params{HTTPClient: client}, cfg: cfg}
	if cfg.IdPMetadataFile != "" {
		data, err := os.ReadFile(cfg.IdPMetadataFile)
		if err != nil {
			return err
		}
		return pr.setMetadata(data)
	}
	return pr.fetch(ctx)
}
