package federation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/netguard"
)

// Config is the federation section of salon.yaml.
type Config struct {
	// Enabled turns the Server-Server API on. Unset: on when server_name
	// is a real name, off for the default "localhost" (a first start on a
	// laptop does not try to reach the Matrix network).
	Enabled *bool `yaml:"enabled"`
	// Listen is HOST:PORT of a listener of its own for other servers
	// (conventionally :8448), served with TLS from tls_cert and tls_key.
	// Empty: the federation API is served on the client listener, with
	// TLS ended by the reverse proxy in front of it.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files for the federation listener.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// CAFile is a PEM bundle that outbound connections trust instead of
	// the system roots (a private CA; the tests' CA).
	CAFile string `yaml:"ca_file"`
	// Allow lists the only servers federated with (empty: all but the
	// denied). Deny lists servers never federated with. An entry is a
	// server name or "*.example.org" for every name under example.org.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// Notaries are servers asked for another server's keys when that
	// server does not answer itself (/_matrix/key/v2/query). Empty: none.
	Notaries []string `yaml:"notaries"`
	// Resolve maps server names to HOST:PORT, bypassing .well-known and
	// SRV discovery (tests, private deployments). The TLS certificate must
	// still be valid for the server's host name. Only these may be private
	// or loopback addresses: discovery reaches public addresses only.
	Resolve map[string]string `yaml:"resolve"`
	// AllowNetworks are CIDR prefixes (127.0.0.1/32) that outbound
	// federation connections may reach although they are not public, for
	// any server name (an IP literal such as 127.0.0.1:PORT included).
	// Empty by default: any server could then make this one connect into
	// the listed network, so list one only in a test deployment (make
	// conformance lists loopback for Complement's federation server, whose
	// port changes with every test). Names in resolve need no entry.
	AllowNetworks []string `yaml:"allow_networks"`
	// KeyValidity is how long this server's published key answer stays
	// valid (valid_until_ts); default 7 days, as before federation (a
	// shorter value makes a rotation reach other servers sooner).
	KeyValidity time.Duration `yaml:"key_validity"`
}

// Defaults returns the built-in federation settings.
func Defaults() Config {
	return Config{KeyValidity: 7 * 24 * time.Hour}
}

// On reports whether federation runs for serverName.
func (c *Config) On(serverName string) bool {
	if c.Enabled != nil {
		return *c.Enabled
	}
	return !isLocalName(serverName)
}

// isLocalName reports names that cannot be reached from other servers.
func isLocalName(serverName string) bool {
	host := hostOf(serverName)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// Validate checks the section for server serverName and reports every
// problem, each naming its key.
func (c *Config) Validate(serverName string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("federation.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Enabled != nil && *c.Enabled && isLocalName(serverName) {
		bad("enabled", "server_name %q cannot federate: other servers cannot reach localhost", serverName)
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			bad("listen", "%q must be HOST:PORT, such as 0.0.0.0:8448", c.Listen)
		}
		if c.TLSCert == "" || c.TLSKey == "" {
			bad("listen", "a federation listener of its own needs tls_cert and tls_key")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together")
	} else if c.TLSCert != "" {
		if c.Listen == "" {
			bad("tls_cert", "is only used with federation.listen")
		} else if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			bad("tls_cert", "cannot load the certificate and key: %v", err)
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAs(c.CAFile); err != nil {
			bad("ca_file", "%v", err)
		}
	}
	for key, list := range map[string][]string{"allow": c.Allow, "deny": c.Deny, "notaries": c.Notaries} {
		for i, name := range list {
			pattern := strings.TrimPrefix(name, "*.")
			if key == "notaries" {
				pattern = name
			}
			if !events.ValidServerName(pattern) {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not a server name", name)
			}
		}
	}
	for name, addr := range c.Resolve {
		if !events.ValidServerName(name) {
			bad("resolve", "%q is not a server name", name)
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			bad("resolve", "%s: %q must be HOST:PORT", name, addr)
		}
	}
	for i, n := range c.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad(fmt.Sprintf("allow_networks[%d]", i), "%q must be a CIDR prefix such as 127.0.0.1/32", n)
		}
	}
	if c.KeyValidity < time.Hour || c.KeyValidity > 7*24*time.Hour {
		bad("key_validity", "%s must be between 1h and 168h (other servers cap a key's validity at 7 days)", c.KeyValidity)
	}
	return errors.Join(errs...)
}

// dialAllowed is the rule for the addresses outbound connections may reach:
// public ones, and those in allow_networks.
func (c *Config) dialAllowed() func(netip.Addr) bool { return netguard.PublicOr(c.AllowNetworks) }

// loadCAs reads a PEM bundle into a pool.
func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Policy decides which servers may federate with this one: the allow and
// deny lists. It is pure: the same answer for inbound and outbound.
type Policy struct {
	allow, deny []string
}

// NewPolicy builds the policy of the lists.
func NewPolicy(allow, deny []string) Policy { return Policy{allow: allow, deny: deny} }

// Allowed reports whether serverName may federate with this server.
func (p Policy) Allowed(serverName string) bool {
	if matchAny(p.deny, serverName) {
		return false
	}
	return len(p.allow) == 0 || matchAny(p.allow, serverName)
}

func matchAny(list []string, serverName string) bool {
	host := strings.ToLower(hostOf(serverName))
	name := strings.ToLower(serverName)
	for _, e := range list {
		e = strings.ToLower(e)
		if suffix, ok := strings.CutPrefix(e, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if e == name || (!strings.Contains(e, ":") && e == host) {
			return true
		}
	}
	return false
}

// hostOf is the host part of a server name (no port, IPv6 brackets kept).
func hostOf(serverName string) string {
	if strings.HasPrefix(serverName, "[") {
		if i := strings.Index(serverName, "]"); i > 0 {
			return serverName[:i+1]
		}
		return serverName
	}
	if i := strings.LastIndexByte(serverName, ':'); i >= 0 {
		return serverName[:i]
	}
	return serverName
}
