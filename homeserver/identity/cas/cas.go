// Package cas signs people in through a CAS server (CAS protocol 3.0):
// the browser is sent to /login?service=, comes back with a service
// ticket, and the ticket is validated at /p3/serviceValidate, whose answer
// names the user and carries their attributes. It only says who signed
// in; package identity makes the account.
package cas

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/identity"
)

// Config is one CAS server in salon.yaml (sso.cas[]).
type Config struct {
	// ID, Name and Icon as for SAML providers.
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Icon string `yaml:"icon"`
	// ServerURL is the CAS server's base, e.g. https://cas.example.org/cas
	// (Salon uses ServerURL/login and ServerURL/p3/serviceValidate).
	ServerURL  string     `yaml:"server_url"`
	Attributes Attributes `yaml:"attributes"`
}

// Attributes names the CAS attributes that make an account.
type Attributes struct {
	// Subject: empty (the default) links accounts to the CAS user name;
	// or an attribute that never changes (an employee number).
	Subject string `yaml:"subject"`
	// Localpart: empty (the default) uses the CAS user name.
	Localpart   string `yaml:"localpart"`
	DisplayName string `yaml:"display_name"` // default displayName
	Email       string `yaml:"email"`        // default mail
}

// WithDefaults fills the zero values.
func (c Config) WithDefaults() Config {
	if c.Attributes.DisplayName == "" {
		c.Attributes.DisplayName = "displayName"
	}
	if c.Attributes.Email == "" {
		c.Attributes.Email = "mail"
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	c.ServerURL = strings.TrimSuffix(c.ServerURL, "/")
	return c
}

// Validate reports every problem under key (e.g. "sso.cas[0]").
func (c Config) Validate(key string) []error {
	if u, err := url.Parse(c.ServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return []error{fmt.Errorf("%s.server_url: %q must be an http or https URL such as https://cas.example.org/cas", key, c.ServerURL)}
	}
	return nil
}

// Params are what a Provider needs.
type Params struct {
	Config     Config
	BaseURL    string
	HTTPClient *http.Client // a 15-second client when nil
	Logger     *slog.Logger
}

// Provider is one CAS server.
type Provider struct {
	cfg      Config
	callback string
	client   *http.Client
}

// New returns a Provider.
func New(p Params) *Provider {
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	cfg := p.Config.WithDefaults()
	return &Provider{cfg: cfg, callback: identity.CallbackURL(p.BaseURL, cfg.ID), client: p.HTTPClient}
}

// Info is how the provider is shown.
func (pr *Provider) Info() identity.Info {
	return identity.Info{ID: pr.cfg.ID, Name: pr.cfg.Name, Icon: pr.cfg.Icon}
}

// service is the service URL of one sign-in: the callback with its state,
// the same at /login and at validation (CAS 3.0, 2.5.1).
func (pr *Provider) service(state string) string {
	return pr.callback + "?state=" + url.QueryEscape(state)
}

// Begin sends the browser to ServerURL/login?service=.
func (pr *Provider) Begin(_ context.Context, state string) (string, string, error) {
	return pr.cfg.ServerURL + "/login?service=" + url.QueryEscape(pr.service(state)), "", nil
}

// State is the state carried in the service URL.
func (pr *Provider) State(r *http.Request) string { return r.URL.Query().Get("state") }

// Finish validates the ticket at /p3/serviceValidate.
func (pr *Provider) Finish(ctx context.Context, r *http.Request, state, _ string) (identity.Identity, error) {
	ticket := r.URL.Query().Get("ticket")
	if ticket == "" {
		return identity.Identity{}, fmt.Errorf("%w: no ticket", identity.ErrRefused)
	}
	q := url.Values{"service": {pr.service(state)}, "ticket": {ticket}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.cfg.ServerURL+"/p3/serviceValidate?"+q.Encode(), nil)
	if err != nil {
		return identity.Identity{}, err
	}
	resp, err := pr.client.Do(req)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("%w: %v", identity.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return identity.Identity{}, fmt.Errorf("%w: serviceValidate answered %s", identity.ErrUnavailable, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return identity.Identity{}, fmt.Errorf("%w: %v", identity.ErrUnavailable, err)
	}
	user, attrs, err := ParseServiceResponse(body)
	if err != nil {
		return identity.Identity{}, err
	}
	return pr.identityOf(user, attrs)
}

func (pr *Provider) identityOf(user string, attrs map[string]string) (identity.Identity, error) {
	at := pr.cfg.Attributes
	id := identity.Identity{Subject: user, Localpart: user, DisplayName: attrs[at.DisplayName], Email: attrs[at.Email]}
	if at.Subject != "" {
		if id.Subject = attrs[at.Subject]; id.Subject == "" {
			return id, fmt.Errorf("%w: attribute %s", identity.ErrMissingAttribute, at.Subject)
		}
	}
	if at.Localpart != "" {
		if id.Localpart = attrs[at.Localpart]; id.Localpart == "" {
			return id, fmt.Errorf("%w: attribute %s", identity.ErrMissingAttribute, at.Localpart)
		}
	}
	return id, nil
}

// casNS is the CAS protocol's XML namespace.
const casNS = "http://www.yale.edu/tp/cas"

type serviceResponse struct {
	XMLName xml.Name `xml:"http://www.yale.edu/tp/cas serviceResponse"`
	Success *struct {
		User       string `xml:"http://www.yale.edu/tp/cas user"`
		Attributes struct {
			Any []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"http://www.yale.edu/tp/cas attributes"`
	} `xml:"http://www.yale.edu/tp/cas authenticationSuccess"`
	Failure *struct {
		Code    string `xml:"code,attr"`
		Message string `xml:",chardata"`
	} `xml:"http://www.yale.edu/tp/cas authenticationFailure"`
}

// ParseServiceResponse reads a /p3/serviceValidate answer (CAS 3.0,
// 2.5.2 and appendix A): the user and the first value of each attribute
// in the CAS namespace, or ErrRefused with the failure code.
func ParseServiceResponse(body []byte) (string, map[string]string, error) {
	var sr serviceResponse
	if err := xml.Unmarshal(body, &sr); err != nil {
		return "", nil, fmt.Errorf("%w: unreadable serviceValidate answer: %v", identity.ErrRefused, err)
	}
	switch {
	case sr.Failure != nil:
		return "", nil, fmt.Errorf("%w: %s: %s", identity.ErrRefused, sr.Failure.Code, strings.TrimSpace(sr.Failure.Message))
	case sr.Success == nil:
		return "", nil, fmt.Errorf("%w: serviceValidate answer has neither success nor failure", identity.ErrRefused)
	}
	user := strings.TrimSpace(sr.Success.User)
	if user == "" {
		return "", nil, errors.Join(identity.ErrRefused, errors.New("serviceValidate named no user"))
	}
	attrs := map[string]string{}
	for _, a := range sr.Success.Attributes.Any {
		if a.XMLName.Space != casNS {
			continue
		}
		if _, seen := attrs[a.XMLName.Local]; !seen {
			attrs[a.XMLName.Local] = strings.TrimSpace(a.Value)
		}
	}
	return user, attrs, nil
}

// CheckServer asks the CAS server for its login page, for `salon config
// check`: an unreachable server or a server error is reported.
func CheckServer(ctx context.Context, cfg Config, client *http.Client) error {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	cfg = cfg.WithDefaults()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.ServerURL+"/login", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("GET %s/login: %s", cfg.ServerURL, resp.Status)
	}
	return nil
}
