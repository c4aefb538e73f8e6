package netguard

import (
	"net/netip"
	"testing"
)

func TestPublicOr(t *testing.T) {
	allow := PublicOr([]string{"127.0.0.1/32", "10.1.0.0/16", "not a prefix"})
	for ip, want := range map[string]bool{
		"127.0.0.1":        true,
		"::ffff:127.0.0.1": true,
		"127.0.0.2":        false,
		"10.1.2.3":         true,
		"10.2.0.1":         false,
		"192.168.1.1":      false,
		"1.1.1.1":          true,
	} {
		if got := allow(netip.MustParseAddr(ip)); got != want {
			t.Errorf("PublicOr(...)(%s) = %v, want %v", ip, got, want)
		}
	}
	if none := PublicOr(nil); none(netip.MustParseAddr("127.0.0.1")) || !none(netip.MustParseAddr("1.1.1.1")) {
		t.Error("PublicOr(nil) is not PublicAddr")
	}
}
