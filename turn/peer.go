package turn

import (
	"net"
	"net/netip"
)

// refusal is why the relay refused something; it labels
// salon_turn_refusals_total. The zero value means "not refused".
type refusal uint8

const (
	refusalNone refusal = iota
	refusalPeerLoopback
	refusalPeerPrivate
	refusalPeerLinkLocal
	refusalPeerCGNAT
	refusalPeerMulticast
	refusalPeerMetadata
	refusalPeerUnspecified
	refusalPeerReserved
	refusalPeerNAT64Local
	refusalPeerTeredo
	refusalPeerSelf
	refusalAuthMalformed
	refusalAuthExpired
	refusalAuthRealm
	refusalAuthUserMismatch
	refusalUserQuota
	refusalRelayPorts
	refusalLifetimeCap
	refusalTLSHandshake
	refusalRevoked
	refusalCount // number of values, not a reason
)

var refusalNames = [refusalCount]string{
	refusalNone:             "none",
	refusalPeerLoopback:     "peer_loopback",
	refusalPeerPrivate:      "peer_private",
	refusalPeerLinkLocal:    "peer_link_local",
	refusalPeerCGNAT:        "peer_cgnat",
	refusalPeerMulticast:    "peer_multicast",
	refusalPeerMetadata:     "peer_metadata",
	refusalPeerUnspecified:  "peer_unspecified",
	refusalPeerReserved:     "peer_reserved",
	refusalPeerNAT64Local:   "peer_nat64_local",
	refusalPeerTeredo:       "peer_teredo",
	refusalPeerSelf:         "peer_self",
	refusalAuthMalformed:    "auth_malformed",
	refusalAuthExpired:      "auth_expired",
	refusalAuthRealm:        "auth_realm",
	refusalAuthUserMismatch: "auth_user_mismatch",
	refusalUserQuota:        "user_quota",
	refusalRelayPorts:       "relay_ports",
	refusalLifetimeCap:      "lifetime_cap",
	refusalTLSHandshake:     "tls_handshake",
	refusalRevoked:          "revoked",
}

func (r refusal) String() string {
	if r < refusalCount {
		return refusalNames[r]
	}
	return "unknown"
}

type blockedRange struct {
	prefix netip.Prefix
	reason refusal
}

// blockedRanges are refused as relay peers unless allow-listed. Order
// matters: the first match names the reason, so the metadata addresses
// come before the link-local and CGNAT ranges that contain them.
var blockedRanges = func() []blockedRange {
	list := []struct {
		cidr   string
		reason refusal
	}{
		// Cloud instance metadata: AWS/GCP/Azure/OpenStack/Oracle/DO,
		// AWS ECS task metadata, Alibaba, Azure WireServer, AWS over IPv6.
		{"169.254.169.254/32", refusalPeerMetadata},
		{"169.254.170.2/32", refusalPeerMetadata},
		{"100.100.100.200/32", refusalPeerMetadata},
		{"168.63.129.16/32", refusalPeerMetadata},
		{"fd00:ec2::254/128", refusalPeerMetadata},

		{"127.0.0.0/8", refusalPeerLoopback},
		{"::1/128", refusalPeerLoopback},
		{"0.0.0.0/8", refusalPeerUnspecified},
		{"::/128", refusalPeerUnspecified},
		{"10.0.0.0/8", refusalPeerPrivate},       // RFC 1918
		{"172.16.0.0/12", refusalPeerPrivate},    // RFC 1918
		{"192.168.0.0/16", refusalPeerPrivate},   // RFC 1918
		{"fc00::/7", refusalPeerPrivate},         // unique local, RFC 4193
		{"169.254.0.0/16", refusalPeerLinkLocal}, // RFC 3927
		{"fe80::/10", refusalPeerLinkLocal},
		{"100.64.0.0/10", refusalPeerCGNAT}, // RFC 6598
		{"224.0.0.0/4", refusalPeerMulticast},
		{"ff00::/8", refusalPeerMulticast},
		{"240.0.0.0/4", refusalPeerReserved}, // and 255.255.255.255
		{"192.0.0.0/24", refusalPeerReserved},
		{"192.0.2.0/24", refusalPeerReserved},
		{"198.18.0.0/15", refusalPeerReserved},
		{"198.51.100.0/24", refusalPeerReserved},
		{"203.0.113.0/24", refusalPeerReserved},
		{"100::/64", refusalPeerReserved},
		{"2001:db8::/32", refusalPeerReserved},
		{"::/96", refusalPeerReserved}, // IPv4-compatible, deprecated
		// Local-use NAT64 (RFC 8215): the operator's own translator, into
		// whatever IPv4 network it serves, with the IPv4 address at a
		// position the prefix length decides; refused whole.
		{"64:ff9b:1::/48", refusalPeerNAT64Local},
		// Teredo (RFC 4380): a tunnel through a relay to an IPv4 host
		// behind NAT.
		{"2001::/32", refusalPeerTeredo},
	}
	out := make([]blockedRange, len(list))
	for i, e := range list {
		out[i] = blockedRange{netip.MustParsePrefix(e.cidr), e.reason}
	}
	return out
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056
)

// peerPolicy decides which peer addresses may be relayed to. It is pure and
// read-only after construction.
type peerPolicy struct {
	allow []netip.Prefix
}

// check returns refusalNone when relaying to ip is allowed, otherwise the
// reason it is not.
func (p peerPolicy) check(ip net.IP) refusal {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return refusalPeerUnspecified
	}
	return p.checkAddr(addr)
}

func (p peerPolicy) checkAddr(addr netip.Addr) refusal {
	addr = addr.Unmap().WithZone("")
	for _, a := range p.allow {
		if a.Contains(addr) {
			return refusalNone
		}
	}
	// Addresses that embed an IPv4 address reach that address.
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64Prefix.Contains(addr):
			return p.checkAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(addr):
			if r := p.checkAddr(netip.AddrFrom4([4]byte(b[2:6]))); r != refusalNone {
				return r
			}
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return r.reason
		}
	}
	return refusalNone
}
