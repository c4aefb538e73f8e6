package media

import (
	"net/netip"

	"github.com/salonhq/salon/homeserver/netguard"
)

// The public-address rule is netguard's, shared with federation.
var (
	errBlockedAddress = netguard.ErrBlocked
	guardedControl    = netguard.Control
)

// publicAddr reports whether a URL preview may connect to ip.
func publicAddr(ip netip.Addr) bool { return netguard.PublicAddr(ip) }
