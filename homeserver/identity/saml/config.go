package saml

import (
	"fmt"
	"net/url"
	"time"
)

// Config is one SAML identity provider in salon.yaml (sso.saml[]).
type Config struct {
	// ID names the provider in URLs and in the stored links of accounts
	// (never change it once people have signed in); Name is shown on the
	// sign-in button; Icon is an optional mxc:// URI.
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Icon string `yaml:"icon"`
	// IdPMetadataFile or IdPMetadataURL (exactly one) is the identity
	// provider's metadata. A URL is fetched at start and every
	// MetadataRefresh; an unreachable one is retried each minute.
	IdPMetadataFile string        `yaml:"idp_metadata_file"`
	IdPMetadataURL  string        `yaml:"idp_metadata_url"`
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	// EntityID is this service provider's entity ID; default its
	// metadata URL, PUBLIC_BASE_URL/_salon/sso/ID/metadata.
	EntityID string `yaml:"entity_id"`
	// KeyFile and CertFile are the PEM key and certificate that sign
	// AuthnRequests; when empty, a key pair is made once in
	// DATA_DIR/sso/saml-ID.key and .crt.
	KeyFile  string `yaml:"key_file"`
	CertFile string `yaml:"cert_file"`
	// Attributes maps the assertion to the account.
	Attributes Attributes `yaml:"attributes"`
}

// Attributes names the SAML attributes (Name or FriendlyName) that make
// an account.
type Attributes struct {
	// Subject is the attribute that identifies a person for good (the
	// link to their account); empty: the assertion's NameID, which must
	// then be persistent rather than transient.
	Subject string `yaml:"subject"`
	// Localpart (default uid) is the wanted user ID, normalised to
	// Matrix's grammar; DisplayName (default displayName) and Email
	// (default mail) fill the new account.
	Localpart   string `yaml:"localpart"`
	DisplayName string `yaml:"display_name"`
	Email       string `yaml:"email"`
}

// WithDefaults fills the zero values.
func (c Config) WithDefaults() Config {
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = 24 * time.Hour
	}
	if c.Attributes.Localpart == "" {
		c.Attributes.Localpart = "uid"
	}
	if c.Attributes.DisplayName == "" {
		c.Attributes.DisplayName = "displayName"
	}
	if c.Attributes.Email == "" {
		c.Attributes.Email = "mail"
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	return c
}

// Validate reports every problem, each under key (e.g. "sso.saml[0]").
func (c Config) Validate(key string) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, args...)))
	}
	if (c.IdPMetadataFile == "") == (c.IdPMetadataURL == "") {
		bad("idp_metadata_file", "set exactly one of idp_metadata_file and idp_metadata_url")
	}
	if c.IdPMetadataURL != "" {
		if u, err := url.Parse(c.IdPMetadataURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("idp_metadata_url", "%q must be an http or https URL", c.IdPMetadataURL)
		}
	}
	if c.MetadataRefresh < time.Minute {
		bad("metadata_refresh", "%s must be at least 1m", c.MetadataRefresh)
	}
	if (c.KeyFile == "") != (c.CertFile == "") {
		bad("key_file", "set both key_file and cert_file, or neither")
	}
	return errs
}
