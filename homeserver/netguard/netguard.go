// Package netguard says which addresses the server may connect to when a
// remote party chooses the destination (URL previews, other homeservers):
// public Internet addresses only, checked after DNS at each dial. It
// imports no other package of the project.
package netguard

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// ErrBlocked is returned when a dial would reach an address that is not on
// the public Internet.
var ErrBlocked = errors.New("address is not public")

// nonPublic are the ranges never connected to, beyond what
// netip's predicates cover (loopback, private, link-local, multicast,
// unspecified). They include carrier-grade NAT, cloud metadata services
// (169.254.169.254 is link-local; fd00:ec2::254 is unique-local) and the
// IPv6 transition prefixes that embed an IPv4 address, which could smuggle
// a private one through.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // "this network"
		"100.64.0.0/10",      // carrier-grade NAT (RFC 6598)
		"192.0.0.0/24",       // IETF protocol assignments
		"192.0.2.0/24",       // TEST-NET-1
		"192.88.99.0/24",     // 6to4 relay anycast
		"198.18.0.0/15",      // benchmarking
		"198.51.100.0/24",    // TEST-NET-2
		"203.0.113.0/24",     // TEST-NET-3
		"240.0.0.0/4",        // reserved, and 255.255.255.255
		"64:ff9b::/96",       // NAT64 (embeds IPv4)
		"64:ff9b:1::/48",     // local-use NAT64
		"100::/64",           // discard-only
		"2001::/23",          // IETF protocol assignments (Teredo embeds IPv4)
		"2001:db8::/32",      // documentation
		"2002::/16",          // 6to4 (embeds IPv4)
		"fc00::/7",           // unique local
		"fec0::/10",          // deprecated site-local
		"::ffff:0:0:0/96",    // SIIT translated
		"::/96",              // IPv4-compatible (deprecated)
		"169.254.0.0/16",     // link-local, cloud metadata
		"fe80::/10",          // link-local
		"ff00::/8",           // multicast
		"224.0.0.0/4",        // multicast
		"127.0.0.0/8",        // loopback
		"::1/128",            // loopback
		"10.0.0.0/8",         // private
		"172.16.0.0/12",      // private
		"192.168.0.0/16",     // private
		"233.252.0.0/24",     // MCAST-TEST-NET
		"100.100.100.200/32", // Alibaba Cloud metadata (inside CGNAT already)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// PublicAddr reports whether ip is on the public Internet.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// PublicOr is PublicAddr widened to the CIDR prefixes in networks (a
// deployment's allow_networks); prefixes that do not parse are skipped
// (configuration validation refuses them).
func PublicOr(networks []string) func(netip.Addr) bool {
	var allowed []netip.Prefix
	for _, n := range networks {
		if pf, err := netip.ParsePrefix(n); err == nil {
			allowed = append(allowed, pf.Masked())
		}
	}
	if len(allowed) == 0 {
		return PublicAddr
	}
	return func(ip netip.Addr) bool {
		ip = ip.Unmap()
		for _, pf := range allowed {
			if pf.Contains(ip) {
				return true
			}
		}
		return PublicAddr(ip)
	}
}

// Control is a net.Dialer Control hook: it runs after DNS, for every
// address actually dialled (each redirect too), and refuses non-public
// ones, so neither a hostile DNS answer nor a redirect can reach the
// server's own network.
func Control(allow func(netip.Addr) bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return ErrBlocked
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !allow(ip) {
			return ErrBlocked
		}
		return nil
	}
}
