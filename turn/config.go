package turn

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/salonhq/salon/internal/redact"
)

// Off, as a listen address, turns that listener off.
const Off = "off"

// Config is the `turn:` section of salon.yaml. Decode it strictly over
// Defaults(); a zero value in any field also means its default. Negative
// limits mean "no limit".
//
// Two fields are filled by the caller, not by Defaults: Realm (the Matrix
// server name) and SharedSecret (when empty, LoadOrCreateSecret on a file in
// the data directory).
type Config struct {
	// Enabled starts the embedded relay with `salon serve`. The caller
	// decides; New does not look at it.
	Enabled bool `yaml:"enabled"`

	// ListenUDP, ListenTCP and ListenTLS are host:port, or "off". The
	// defaults listen on 127.0.0.1 like the rest of a fresh install; a
	// public deployment sets ":3478" (and ":5349"). TLS listens only when
	// TLSCert and TLSKey are set.
	ListenUDP string `yaml:"listen_udp"`
	ListenTCP string `yaml:"listen_tcp"`
	ListenTLS string `yaml:"listen_tls"`
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
	// TLSPublicPort is the port put in the turns: URI when a proxy in front
	// (nginx `stream` on 443, see docs/TURN.md) is not on ListenTLS's port.
	TLSPublicPort int `yaml:"tls_public_port"`

	// Realm is the STUN realm; the caller sets it to the server name.
	Realm string `yaml:"realm"`

	// RelayIP is the IPv4 address put in XOR-RELAYED-ADDRESS: the public
	// address behind a 1:1 NAT. Empty: the host of the UDP (else TCP)
	// listen address when that is a specific IPv4 address.
	RelayIP string `yaml:"relay_ip"`
	// RelayBind is the local address relay sockets bind to. Empty: the host
	// of the UDP (else TCP) listen address when that is a specific IPv4
	// address, else 0.0.0.0.
	RelayBind    string `yaml:"relay_bind"`
	RelayPortMin int    `yaml:"relay_port_min"`
	RelayPortMax int    `yaml:"relay_port_max"`

	// SharedSecret signs TURN REST credentials (coturn's
	// static-auth-secret). At least 16 bytes.
	SharedSecret redact.Secret `yaml:"shared_secret"`
	// CredentialTTL is how long a credential handed out by Credentials
	// stays valid. Default one hour, as Synapse's turn_user_lifetime:
	// clients ask for new ones before it runs out. (The embedded relay
	// also refuses a credential whose device logged out, see Holders; an
	// external coturn only has the expiry.)
	CredentialTTL time.Duration `yaml:"credential_ttl"`

	// AllowPeers lists CIDRs (or single addresses) that may be relayed to
	// even though they are in a range refused by default (loopback,
	// private, link-local, CGNAT, multicast, cloud metadata, reserved).
	// For tests and lab setups.
	AllowPeers []string `yaml:"allow_peers"`

	// MaxAllocationsPerUser caps live allocations per Matrix user ID.
	MaxAllocationsPerUser int `yaml:"max_allocations_per_user"`
	// MaxAllocationLifetime caps how long one allocation lives, refreshes
	// included. (Each refresh is capped at one hour by the TURN server.)
	MaxAllocationLifetime time.Duration `yaml:"max_allocation_lifetime"`
	// AllocationBytesPerSecond caps one allocation's relayed traffic, each
	// direction separately (coturn's max-bps); packets over the cap are
	// dropped.
	AllocationBytesPerSecond int64 `yaml:"allocation_bytes_per_second"`
	// TotalBytesPerSecond caps all relayed traffic together, each
	// direction separately (coturn's bps-capacity).
	TotalBytesPerSecond int64 `yaml:"total_bytes_per_second"`

	// UDPSockets is how many UDP sockets share ListenUDP's port
	// (SO_REUSEPORT), each read by its own goroutine, so client-to-peer
	// relaying uses more than one core. Default: GOMAXPROCS, at most 8.
	UDPSockets int `yaml:"udp_sockets"`

	// External points clients at a separately run TURN server (coturn with
	// use-auth-secret) instead of, or beside, the embedded one.
	External External `yaml:"external"`
}

// External describes a TURN server Salon does not run. The homeserver
// advertises URIs with credentials from credential.Generate(SharedSecret,
// ...).
type External struct {
	URIs         []string      `yaml:"uris"`
	SharedSecret redact.Secret `yaml:"shared_secret"`
}

// Defaults returns the configuration a fresh install runs with.
func Defaults() Config {
	return Config{
		Enabled:                  true,
		ListenUDP:                "127.0.0.1:3478",
		ListenTCP:                "127.0.0.1:3478",
		ListenTLS:                "127.0.0.1:5349",
		RelayPortMin:             49152,
		RelayPortMax:             65535,
		CredentialTTL:            time.Hour,
		MaxAllocationsPerUser:    20,
		MaxAllocationLifetime:    24 * time.Hour,
		AllocationBytesPerSecond: 2_500_000, // 20 Mbit/s each way
		TotalBytesPerSecond:      -1,
	}
}

// withDefaults fills zero values from Defaults() and derives RelayIP and
// RelayBind from the listen addresses.
func (c Config) withDefaults() Config {
	d := Defaults()
	setString := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setString(&c.ListenUDP, d.ListenUDP)
	setString(&c.ListenTCP, d.ListenTCP)
	setString(&c.ListenTLS, d.ListenTLS)
	if c.RelayPortMin == 0 {
		c.RelayPortMin = d.RelayPortMin
	}
	if c.RelayPortMax == 0 {
		c.RelayPortMax = d.RelayPortMax
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = d.CredentialTTL
	}
	if c.MaxAllocationsPerUser == 0 {
		c.MaxAllocationsPerUser = d.MaxAllocationsPerUser
	}
	if c.MaxAllocationLifetime == 0 {
		c.MaxAllocationLifetime = d.MaxAllocationLifetime
	}
	if c.AllocationBytesPerSecond == 0 {
		c.AllocationBytesPerSecond = d.AllocationBytesPerSecond
	}
	if c.TotalBytesPerSecond == 0 {
		c.TotalBytesPerSecond = d.TotalBytesPerSecond
	}
	if c.UDPSockets == 0 {
		c.UDPSockets = defaultUDPSockets()
	}
	host := c.listenIPv4()
	if c.RelayIP == "" && host.IsValid() && !host.IsUnspecified() {
		c.RelayIP = host.String()
	}
	if c.RelayBind == "" {
		if host.IsValid() {
			c.RelayBind = host.String()
		} else {
			c.RelayBind = "0.0.0.0"
		}
	}
	return c
}

// listenIPv4 is the host of the UDP listen address, else of the TCP one,
// when it is an IPv4 address.
func (c Config) listenIPv4() netip.Addr {
	for _, l := range []string{c.ListenUDP, c.ListenTCP} {
		if l == Off {
			continue
		}
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			return netip.Addr{}
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Unmap().Is4() {
			return netip.Addr{}
		}
		return ip.Unmap()
	}
	return netip.Addr{}
}

// TLSEnabled reports whether the TLS listener runs.
func (c Config) TLSEnabled() bool {
	return c.TLSCert != "" && c.TLSKey != "" && c.withDefaults().ListenTLS != Off
}

// Validate checks the configuration, with zero values taken as defaults,
// and reports every problem at once, each with its key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var problems []error
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("turn.%s: %s", key, fmt.Sprintf(format, args...)))
	}

	listening := 0
	for _, l := range []struct{ key, addr string }{
		{"listen_udp", c.ListenUDP}, {"listen_tcp", c.ListenTCP}, {"listen_tls", c.ListenTLS},
	} {
		if l.addr == Off {
			continue
		}
		if err := checkHostPort(l.addr); err != nil {
			bad(l.key, "%v (want host:port or %q)", err, Off)
			continue
		}
		if l.key != "listen_tls" || c.TLSCert != "" {
			listening++
		}
	}
	if listening == 0 {
		bad("listen_udp", "every listener is off; disable the relay with turn.enabled: false instead")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "turn.tls_cert and turn.tls_key must be set together")
	}
	if c.TLSPublicPort < 0 || c.TLSPublicPort > 65535 {
		bad("tls_public_port", "must be a port number, got %d", c.TLSPublicPort)
	}

	if c.Realm == "" {
		bad("realm", "must be set (normally the server name)")
	}

	if c.RelayIP == "" {
		bad("relay_ip", "must be set when turn.listen_udp does not name a specific IPv4 address (set the public IPv4 address clients reach)")
	} else if ip, err := netip.ParseAddr(c.RelayIP); err != nil {
		bad("relay_ip", "%q is not an IP address", c.RelayIP)
	} else if !ip.Unmap().Is4() || ip.IsUnspecified() || ip.IsMulticast() {
		bad("relay_ip", "%q must be a unicast IPv4 address (relays are UDP over IPv4)", c.RelayIP)
	}
	if ip, err := netip.ParseAddr(c.RelayBind); err != nil || !ip.Unmap().Is4() {
		bad("relay_bind", "%q must be an IPv4 address", c.RelayBind)
	}
	if c.RelayPortMin < 1 || c.RelayPortMin > 65535 {
		bad("relay_port_min", "must be within 1–65535, got %d", c.RelayPortMin)
	}
	if c.RelayPortMax < 1 || c.RelayPortMax > 65535 {
		bad("relay_port_max", "must be within 1–65535, got %d", c.RelayPortMax)
	}
	if c.RelayPortMin > c.RelayPortMax {
		bad("relay_port_min", "must be ≤ turn.relay_port_max (%d > %d)", c.RelayPortMin, c.RelayPortMax)
	}

	if c.SharedSecret == "" {
		bad("shared_secret", "must be set (the caller generates one in the data directory when it is empty)")
	} else if len(c.SharedSecret) < minSecretLen {
		bad("shared_secret", "must be at least %d bytes, got %d", minSecretLen, len(c.SharedSecret))
	}
	if c.CredentialTTL < time.Minute {
		bad("credential_ttl", "must be at least 1m, got %v", c.CredentialTTL)
	}
	if _, err := parsePrefixes(c.AllowPeers); err != nil {
		bad("allow_peers", "%v", err)
	}
	if c.AllocationBytesPerSecond > 0 && c.AllocationBytesPerSecond < minBytesPerSecond {
		bad("allocation_bytes_per_second", "must be at least %d (or negative for no cap), got %d", minBytesPerSecond, c.AllocationBytesPerSecond)
	}
	if c.TotalBytesPerSecond > 0 && c.TotalBytesPerSecond < minBytesPerSecond {
		bad("total_bytes_per_second", "must be at least %d (or negative for no cap), got %d", minBytesPerSecond, c.TotalBytesPerSecond)
	}
	if c.UDPSockets < 1 || c.UDPSockets > 64 {
		bad("udp_sockets", "must be within 1–64, got %d", c.UDPSockets)
	}

	for i, u := range c.External.URIs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			bad("external.uris", "[%d] %q must start with turn: or turns:", i, u)
		}
	}
	if len(c.External.URIs) > 0 && c.External.SharedSecret == "" {
		bad("external.shared_secret", "must be set when turn.external.uris is")
	}
	return errors.Join(problems...)
}

const (
	minSecretLen = 16
	// One full-size packet must fit in a second's burst.
	minBytesPerSecond = 2000
)

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host %q is not an IP address", host)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a port number", port)
	}
	return nil
}

// parsePrefixes parses CIDRs; a bare address means just that address.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var problems []string
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		problems = append(problems, fmt.Sprintf("%q is not a CIDR or an IP address", s))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// LoadOrCreateSecret returns the secret kept in the file at path, creating
// the file (mode 0600, 32 random bytes as unpadded base64url text) when it
// does not exist. The text itself is the secret, as with coturn's
// static-auth-secret, so the file's content can be given to an external
// coturn as is.
func LoadOrCreateSecret(path string) ([]byte, error) {
	secret, err := readSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("turn: secret directory: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("turn: generating secret: %w", err)
	}
	text := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readSecret(path) // another process won the race
	}
	if err != nil {
		return nil, fmt.Errorf("turn: creating secret file: %w", err)
	}
	_, werr := f.WriteString(text + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, fmt.Errorf("turn: writing secret file: %w", werr)
	}
	return []byte(text), nil
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("turn: reading secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < minSecretLen {
		return nil, fmt.Errorf("turn: secret file %s holds %d bytes, want at least %d", path, len(s), minSecretLen)
	}
	return []byte(s), nil
}
