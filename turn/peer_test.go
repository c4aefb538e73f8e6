package turn

import (
	"net"
	"net/netip"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	tests := []struct {
		ip    string
		allow []string
		want  refusal
	}{
		{"127.0.0.1", nil, refusalPeerLoopback},
		{"127.255.0.9", nil, refusalPeerLoopback},
		{"::1", nil, refusalPeerLoopback},
		{"::ffff:127.0.0.1", nil, refusalPeerLoopback},
		{"10.0.0.1", nil, refusalPeerPrivate},
		{"172.16.5.4", nil, refusalPeerPrivate},
		{"172.31.255.255", nil, refusalPeerPrivate},
		{"192.168.1.1", nil, refusalPeerPrivate},
		{"fd12:3456::1", nil, refusalPeerPrivate},
		{"169.254.1.1", nil, refusalPeerLinkLocal},
		{"fe80::1", nil, refusalPeerLinkLocal},
		{"100.64.0.1", nil, refusalPeerCGNAT},
		{"100.127.255.254", nil, refusalPeerCGNAT},
		{"224.0.0.251", nil, refusalPeerMulticast},
		{"239.1.2.3", nil, refusalPeerMulticast},
		{"ff02::1", nil, refusalPeerMulticast},
		{"169.254.169.254", nil, refusalPeerMetadata},
		{"::ffff:169.254.169.254", nil, refusalPeerMetadata},
		{"100.100.100.200", nil, refusalPeerMetadata},
		{"168.63.129.16", nil, refusalPeerMetadata},
		{"fd00:ec2::254", nil, refusalPeerMetadata},
		{"0.0.0.0", nil, refusalPeerUnspecified},
		{"::", nil, refusalPeerUnspecified},
		{"255.255.255.255", nil, refusalPeerReserved},
		{"192.0.2.7", nil, refusalPeerReserved},
		{"64:ff9b::10.0.0.1", nil, refusalPeerPrivate},
		{"64:ff9b::8.8.8.8", nil, refusalNone},
		{"2002:7f00:1::1", nil, refusalPeerLoopback},
		{"64:ff9b:1::a00:1", nil, refusalPeerNAT64Local},
		{"64:ff9b:1:ffff::808:808", nil, refusalPeerNAT64Local},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", nil, refusalPeerTeredo},
		{"2001:db8::1", nil, refusalPeerReserved},
		{"2001:4860:4860::8888", nil, refusalNone},
		{"64:ff9b:2::1", nil, refusalNone},
		{"8.8.8.8", nil, refusalNone},
		{"172.32.0.1", nil, refusalNone},
		{"100.128.0.1", nil, refusalNone},
		{"2606:4700::1111", nil, refusalNone},
		// The allow-list opens exactly what it names.
		{"127.0.0.1", []string{"127.0.0.0/8"}, refusalNone},
		{"::ffff:127.0.0.1", []string{"127.0.0.0/8"}, refusalNone},
		{"10.0.0.1", []string{"127.0.0.0/8"}, refusalPeerPrivate},
		{"10.1.2.3", []string{"10.1.2.3"}, refusalNone},
		{"10.1.2.4", []string{"10.1.2.3"}, refusalPeerPrivate},
		{"169.254.169.254", []string{"169.254.169.254/32"}, refusalNone},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			allow, err := parsePrefixes(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			p := peerPolicy{allow: allow}
			if got := p.check(net.ParseIP(tt.ip)); got != tt.want {
				t.Errorf("check(%s) with allow %v = %v, want %v", tt.ip, tt.allow, got, tt.want)
			}
		})
	}
}

func TestRefusalNames(t *testing.T) {
	seen := map[string]bool{}
	for r := refusal(0); r < refusalCount; r++ {
		name := r.String()
		if name == "" || seen[name] {
			t.Errorf("refusal %d has name %q", r, name)
		}
		seen[name] = true
	}
	if refusalCount.String() != "unknown" {
		t.Error("out-of-range refusal has a name")
	}
}

func BenchmarkPeerPolicy(b *testing.B) {
	p := peerPolicy{}
	ip := netip.MustParseAddr("203.0.114.9")
	for b.Loop() {
		p.checkAddr(ip)
	}
}
