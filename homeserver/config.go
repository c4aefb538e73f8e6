package homeserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/federation"
	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/media"
	"github.com/salonhq/salon/homeserver/ratelimit"
	"github.com/salonhq/salon/internal/redact"
)

// Config is the homeserver's part of salon.yaml. A zero value of any field
// means its default (Defaults fills them); Validate reports every problem.
type Config struct {
	// ServerName is the domain in user and room IDs (@alice:SERVER). It can
	// never change once users exist.
	ServerName string `yaml:"server_name"`
	// PublicBaseURL is the address clients reach the server at. Every URL
	// the server hands out derives from it. Default: http://LISTEN.
	PublicBaseURL string `yaml:"public_base_url"`

	Registration RegistrationConfig `yaml:"registration"`
	RateLimits   RateLimitConfig    `yaml:"rate_limits"`
	HTTP         HTTPConfig         `yaml:"http"`
	Passwords    PasswordConfig     `yaml:"passwords"`
	MatrixRTC    MatrixRTCConfig    `yaml:"matrixrtc"`
	Spaces       SpacesConfig       `yaml:"spaces"`
	Presence     PresenceConfig     `yaml:"presence"`
	Encryption   EncryptionConfig   `yaml:"encryption"`
	Media        media.Config       `yaml:"media"`
	Sessions     SessionsConfig     `yaml:"sessions"`
	Push         PushConfig         `yaml:"push"`
	SSO          SSOConfig          `yaml:"sso"`
	// LDAP is sign-in, the user directory and group sync from an LDAP
	// directory (off until ldap.url is set).
	LDAP ldap.Config `yaml:"ldap"`
	// Federation is the Server-Server API: other Matrix servers.
	Federation federation.Config `yaml:"federation"`
}

// PushConfig tunes notifications sent to push gateways.
type PushConfig struct {
	// AllowPrivateGateways lets pushers' gateway URLs point at loopback
	// and private addresses (a Sygnal beside Salon). Off by default: a
	// user could otherwise make the server post to internal services.
	AllowPrivateGateways bool `yaml:"allow_private_gateways"`
}

// SessionsConfig tunes logins.
type SessionsConfig struct {
	// RefreshableAccessTokenLifetime is how long an access token lives
	// when the client asked for a refresh token at login (default 5m).
	// Access tokens without a refresh token do not expire.
	RefreshableAccessTokenLifetime time.Duration `yaml:"refreshable_access_token_lifetime"`
}

// EncryptionConfig says which new rooms start end-to-end encrypted.
type EncryptionConfig struct {
	// Default: "private" puts m.room.encryption (megolm) in the initial
	// state of rooms created with the private_chat or trusted_private_chat
	// preset, and of direct chats; "all" in every new room but spaces;
	// "off" in none. The default is "private". A creator who passes an
	// m.room.encryption in initial_state gets theirs. Synapse's
	// encryption_enabled_by_default_for_room_type.
	//
	// Salon's web client, Element and other encrypting clients put
	// m.room.encryption in their new private rooms and DMs themselves;
	// the default covers the clients that do not ask.
	Default string `yaml:"default"`
}

// PresenceConfig turns presence (who is online) on or off.
type PresenceConfig struct {
	// Enabled (default true) sends m.presence in /sync to the users who
	// share a room. Off: /sync has no presence, PUT /presence is accepted
	// and ignored, GET /presence answers offline (Synapse's
	// use_presence: false).
	Enabled bool `yaml:"enabled"`
}

// SpacesConfig says what rooms inherit from their space.
type SpacesConfig struct {
	// InheritPowerLevels: "on" (default) gives a room created inside a
	// space the space's moderators (users above the space's default level)
	// and its kick, ban and redact thresholds; "off" does not.
	InheritPowerLevels string `yaml:"inherit_power_levels"`
}

// MatrixRTCConfig tunes what calls need from the homeserver.
type MatrixRTCConfig struct {
	// MaxDelay is the longest delay a delayed event (MSC4140) may ask for.
	MaxDelay time.Duration `yaml:"max_delay"`
	// MaxDelayedPerUser caps one user's pending delayed events.
	MaxDelayedPerUser int `yaml:"max_delayed_per_user"`
}

// RegistrationConfig says who may create an account.
type RegistrationConfig struct {
	// Mode is "open", "token" (a registration token is needed) or "closed"
	// (accounts are made with `salon user create` or SSO only).
	Mode string `yaml:"mode"`
	// Token is the registration token when Mode is "token".
	Token redact.Secret `yaml:"token"`
}

// RateLimitConfig holds the token buckets. Defaults let a lecture hall
// behind one NAT address (300 people) register and log in within a minute
// while stopping password guessing against one account.
type RateLimitConfig struct {
	LoginPerIP ratelimit.Rule `yaml:"login_per_ip"`
	// LoginPerAccount counts login attempts per account and client
	// address, so guessing from one address does not lock the account's
	// owner out from another.
	LoginPerAccount ratelimit.Rule `yaml:"login_per_account"`
	RegisterPerIP   ratelimit.Rule `yaml:"register_per_ip"`
	MessagesPerUser ratelimit.Rule `yaml:"messages_per_user"`
}

// HTTPConfig tunes the HTTP front.
type HTTPConfig struct {
	// MaxRequestBytes caps JSON request bodies (media uploads have their own
	// limit).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// (the reverse proxy in front of Salon).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AccessLog: "on" (default; empty means on) logs a line per request at info level
	// (method, route template, status, duration, user; never a token or
	// the query); "off" does not.
	AccessLog string `yaml:"access_log"`
}

// PasswordConfig is the password policy.
type PasswordConfig struct {
	MinLength int `yaml:"min_length"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		ServerName:   "localhost",
		Registration: RegistrationConfig{Mode: "open"},
		RateLimits: RateLimitConfig{
			LoginPerIP:      ratelimit.Rule{PerSecond: 10, Burst: 300},
			LoginPerAccount: ratelimit.Rule{PerSecond: 0.1, Burst: 10},
			RegisterPerIP:   ratelimit.Rule{PerSecond: 10, Burst: 300},
			MessagesPerUser: ratelimit.Rule{PerSecond: 20, Burst: 100},
		},
		HTTP: HTTPConfig{
			MaxRequestBytes: 1 << 20,
			TrustedProxies:  []string{"127.0.0.1/32", "::1/128"},
			AccessLog:       "on",
		},
		Passwords:  PasswordConfig{MinLength: 8},
		MatrixRTC:  MatrixRTCConfig{MaxDelay: 24 * time.Hour, MaxDelayedPerUser: 100},
		Spaces:     SpacesConfig{InheritPowerLevels: "on"},
		Presence:   PresenceConfig{Enabled: true},
		Encryption: EncryptionConfig{Default: "private"},
		Media:      media.Defaults(),
		Sessions:   SessionsConfig{RefreshableAccessTokenLifetime: auth.DefaultRefreshableAccessTokenLifetime},
		SSO:        ssoDefaults(),
		LDAP:       ldap.Defaults(),
		Federation: federation.Defaults(),
	}
}

// Validate checks the whole config and reports every problem, each naming
// its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ServerName == "" || !events.ValidServerName(c.ServerName) {
		bad("server_name", "%q is not a valid server name (a host name, optionally with :port)", c.ServerName)
	}
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("public_base_url", "%q must be an http or https URL such as https://matrix.example.org", c.PublicBaseURL)
		}
	}
	switch c.Registration.Mode {
	case "open", "closed":
	case "token":
		if len(c.Registration.Token) < 8 {
			bad("registration.token", "must be at least 8 characters when registration.mode is token")
		}
	default:
		bad("registration.mode", "%q must be open, token or closed", c.Registration.Mode)
	}
	for key, r := range map[string]ratelimit.Rule{
		"rate_limits.login_per_ip":      c.RateLimits.LoginPerIP,
		"rate_limits.login_per_account": c.RateLimits.LoginPerAccount,
		"rate_limits.register_per_ip":   c.RateLimits.RegisterPerIP,
		"rate_limits.messages_per_user": c.RateLimits.MessagesPerUser,
	} {
		if r.PerSecond < 0 || r.Burst < 0 || (r.PerSecond > 0 && r.Burst < 1) {
			bad(key, "per_second must be ≥ 0 and burst ≥ 1 (per_second 0 disables the limit)")
		}
	}
	if c.HTTP.MaxRequestBytes < 70_000 || c.HTTP.MaxRequestBytes > 100<<20 {
		bad("http.max_request_bytes", "%d must be between 70000 (an event is up to 65536 bytes) and 104857600", c.HTTP.MaxRequestBytes)
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "%q is not a CIDR prefix", p)
		}
	}
	if c.MatrixRTC.MaxDelay < time.Second || c.MatrixRTC.MaxDelay > 30*24*time.Hour {
		bad("matrixrtc.max_delay", "%s must be between 1s and 720h", c.MatrixRTC.MaxDelay)
	}
	if c.MatrixRTC.MaxDelayedPerUser < 1 || c.MatrixRTC.MaxDelayedPerUser > 10_000 {
		bad("matrixrtc.max_delayed_per_user", "%d must be between 1 and 10000", c.MatrixRTC.MaxDelayedPerUser)
	}
	if c.HTTP.AccessLog != "" && c.HTTP.AccessLog != "on" && c.HTTP.AccessLog != "off" {
		bad("http.access_log", "%q must be on or off", c.HTTP.AccessLog)
	}
	if c.Spaces.InheritPowerLevels != "on" && c.Spaces.InheritPowerLevels != "off" {
		bad("spaces.inherit_power_levels", "%q must be on or off", c.Spaces.InheritPowerLevels)
	}
	switch c.Encryption.Default {
	case "private", "all", "off":
	default:
		bad("encryption.default", "%q must be private, all or off", c.Encryption.Default)
	}
	if c.Passwords.MinLength < 1 || c.Passwords.MinLength > 128 {
		bad("passwords.min_length", "%d must be between 1 and 128", c.Passwords.MinLength)
	}
	if l := c.Sessions.RefreshableAccessTokenLifetime; l < time.Second || l > 365*24*time.Hour {
		bad("sessions.refreshable_access_token_lifetime", "%s must be between 1s and 8760h", l)
	}
	if err := c.Media.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.LDAP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Federation.Validate(c.ServerName); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.SSO.validate()...)
	return errors.Join(errs...)
}

// BaseURL is the public base URL, defaulting to http://listen.
func (c *Config) BaseURL(listen string) string {
	if c.PublicBaseURL != "" {
		return strings.TrimSuffix(c.PublicBaseURL, "/")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
