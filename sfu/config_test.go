package sfu

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestDefaultsValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config (all defaults): %v", err)
	}
	d := Defaults()
	if d.ListenHost != "127.0.0.1" || d.UDPPort != 7882 || d.TCPPort != 7881 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	c := Config{ListenHost: "nowhere", UDPPort: 70000, TCPPort: -2, NAT1To1IPs: []string{"0.0.0.0", "x"}, MaxParticipants: -5, PingInterval: 20e9, PingTimeout: 10e9}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, key := range []string{"sfu.listen_host", "sfu.udp_port", "sfu.tcp_port", "sfu.nat_1to1_ips", "sfu.max_participants", "sfu.ping_timeout"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("%s not reported in:\n%v", key, err)
		}
	}
}

func TestConfigDecodesStrictly(t *testing.T) {
	src := "udp_port: 50000\ntcp_port: -1\nnat_1to1_ips: [203.0.113.7]\nmax_participants: 25\nmax_bitrate: 2500000\n"
	c := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.UDPPort != 50000 || c.TCPPort != -1 || c.NAT1To1IPs[0] != "203.0.113.7" || c.MaxParticipants != 25 || c.PingInterval != Defaults().PingInterval {
		t.Fatalf("%+v", c)
	}
	dec = yaml.NewDecoder(strings.NewReader("udp_prot: 1\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil {
		t.Fatal("unknown key accepted")
	}
}
