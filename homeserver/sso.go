package homeserver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/clientapi"
	"github.com/salonhq/salon/homeserver/identity"
	"github.com/salonhq/salon/homeserver/identity/cas"
	"github.com/salonhq/salon/homeserver/identity/saml"
)

// SSOConfig is single sign-on through SAML and CAS identity providers
// (salon.yaml's sso section; docs/IDENTITY.md).
type SSOConfig struct {
	// ClientOrigins are the origins (https://app.example.org) of clients
	// that get the login token straight away; the server's own web client
	// always does. Any other redirectUrl gets a confirmation page first.
	ClientOrigins []string `yaml:"client_origins"`
	// LoginTokenTTL bounds how long the one-time login token handed to the
	// client can be exchanged (default 2m).
	LoginTokenTTL time.Duration `yaml:"login_token_ttl"`
	// OnLocalpartCollision is what happens when a new person's user ID is
	// taken by another account: "error" (default: refused with a page
	// naming it) or "suffix" (alice2, alice3, ...).
	OnLocalpartCollision string        `yaml:"on_localpart_collision"`
	SAML                 []saml.Config `yaml:"saml"`
	CAS                  []cas.Config  `yaml:"cas"`
}

func ssoDefaults() SSOConfig {
	return SSOConfig{LoginTokenTTL: 2 * time.Minute, OnLocalpartCollision: identity.CollisionError}
}

// idpID is the grammar of identity provider IDs (Client-Server API,
// GET /login: 1 to 255 of [A-Za-z0-9._~-]).
var idpID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

func (c SSOConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, o := range c.ClientOrigins {
		u, err := url.Parse(o)
		if _, ok := identity.Origin(o); !ok || err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad(fmt.Sprintf("sso.client_origins[%d]", i), "%q must be an origin such as https://app.example.org (scheme, host and port only)", o)
		}
	}
	if c.LoginTokenTTL < time.Second || c.LoginTokenTTL > 10*time.Minute {
		bad("sso.login_token_ttl", "%s must be between 1s and 10m", c.LoginTokenTTL)
	}
	if c.OnLocalpartCollision != identity.CollisionError && c.OnLocalpartCollision != identity.CollisionSuffix {
		bad("sso.on_localpart_collision", "%q must be error or suffix", c.OnLocalpartCollision)
	}
	seen := map[string]string{}
	checkID := func(key, id, icon string) {
		if !idpID.MatchString(id) {
			bad(key+".id", "%q must be 1 to 255 of A-Z a-z 0-9 . _ ~ -", id)
		} else if other, dup := seen[id]; dup {
			bad(key+".id", "%q is also the id of %s", id, other)
		}
		seen[id] = key
		if icon != "" && !strings.HasPrefix(icon, "mxc://") {
			bad(key+".icon", "%q must be an mxc:// URI", icon)
		}
	}
	for i, s := range c.SAML {
		key := fmt.Sprintf("sso.saml[%d]", i)
		checkID(key, s.ID, s.Icon)
		errs = append(errs, s.WithDefaults().Validate(key)...)
	}
	for i, cc := range c.CAS {
		key := fmt.Sprintf("sso.cas[%d]", i)
		checkID(key, cc.ID, cc.Icon)
		errs = append(errs, cc.WithDefaults().Validate(key)...)
	}
	return errs
}

// newSSO builds the providers and the flow (nil when none is configured).
func (h *Homeserver) newSSO(cfg Config, deps Deps) (*identity.Flow, error) {
	c := cfg.SSO
	if len(c.SAML) == 0 && len(c.CAS) == 0 {
		return nil, nil
	}
	base := cfg.BaseURL(deps.Listen)
	log := deps.Logger.With("component", "sso")
	var providers []identity.Provider
	for _, sc := range c.SAML {
		// An IdP that does not answer must not hold the start up for
		// long: Run keeps trying.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, err := saml.New(ctx, saml.Params{Config: sc, BaseURL: base, DataDir: deps.DataDir, Used: deps.Store, Logger: log})
		cancel()
		if err != nil {
			return nil, err
		}
		providers = append(providers, p)
	}
	for _, cc := range c.CAS {
		providers = append(providers, cas.New(cas.Params{Config: cc, BaseURL: base, Logger: log}))
	}
	return identity.New(identity.Params{
		Store: deps.Store, Auth: h.Auth, Providers: providers, BaseURL: base,
		ClientOrigins: c.ClientOrigins, LoginTokenTTL: c.LoginTokenTTL, OnCollision: c.OnLocalpartCollision,
		Logger: log,
	}), nil
}

// ssoAPI is the flow as the Client-Server API calls it.
type ssoAPI struct{ f *identity.Flow }

func (s ssoAPI) IdentityProviders() []clientapi.SSOProvider {
	var out []clientapi.SSOProvider
	for _, p := range s.f.Providers() {
		out = append(out, clientapi.SSOProvider{ID: p.ID, Name: p.Name, Icon: p.Icon})
	}
	return out
}

func (s ssoAPI) Redirect(w http.ResponseWriter, r *http.Request, idpID, redirectURL string) error {
	return s.f.Redirect(w, r, idpID, redirectURL)
}

func (s ssoAPI) UIAFallback(w http.ResponseWriter, r *http.Request, session string) error {
	return s.f.UIAFallback(w, r, session)
}

func (s ssoAPI) HasLink(ctx context.Context, userID string) (bool, error) {
	return s.f.HasLink(ctx, userID)
}
