package events

import (
	"strings"
	"testing"
)

func TestValidServerName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		// appendices.md, "Server Name", examples.
		{"matrix.org", true},
		{"matrix.org:8888", true},
		{"1.2.3.4", true},
		{"1.2.3.4:1234", true},
		{"[1234:5678::abcd]", true},
		{"[1234:5678::abcd]:5678", true},

		{"localhost", true},
		{"MATRIX.ORG", true},
		{"my-server.example", true},
		{"xn--bcher-kva.example", true},
		{"1.2.3", true},     // not four parts: a DNS name
		{"1.2.3.4.5", true}, // likewise
		{"01.002.3.4", true},
		{"[::1]", true},
		{"[::ffff:1.2.3.4]:8448", true},
		{"a:1", true},
		{"a:99999", true},
		{strings.Repeat("a", 255), true},

		{"", false},
		{":8448", false},
		{"matrix.org:", false},
		{"matrix.org:123456", false},
		{"matrix.org:80a", false},
		{"matrix.org:-1", false},
		{"256.1.1.1", false},
		{"1.2.3.1000", false},
		{"a..b", false},
		{".a", false},
		{"a.", false},
		{"under_score.org", false},
		{"spa ce.org", false},
		{"ünicode.org", false},
		{"a/b", false},
		{"a@b", false},
		{"1234:5678::abcd", false}, // IPv6 without brackets
		{"[1234:5678::abcd", false},
		{"[]", false},
		{"[::1]x", false},
		{"[::1]:", false},
		{"[1.2.3.4]", false},
		{"[::1%eth0]", false},
		{"[g::1]", false},
		{"[" + strings.Repeat("1", 46) + "]", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ValidServerName(tt.in); got != tt.want {
				t.Errorf("ValidServerName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidUserID(t *testing.T) {
	long := "@" + strings.Repeat("a", 255-len("@:example.org")) + ":example.org"
	tests := []struct {
		in               string
		valid, compliant bool
	}{
		{"@alice:example.org", true, true},
		{"@a.b_c=d-e/f+g:example.org:8448", true, true},
		{"@0:1.2.3.4", true, true},
		{"@alice:[::1]:80", true, true},
		{long, true, true},
		{long[:len(long)-3] + "xorg", false, false}, // 256 bytes
		// Historical user IDs: servers must accept them.
		{"@Alice:example.org", true, false},
		{"@alice smith:example.org", true, false},
		{"@ünïcode:example.org", true, false},
		{"@:example.org", true, false},
		{"@\x01ctrl:example.org", true, false},
		{"@a#b:example.org", true, false},
		{"@a\x00b:example.org", false, false},
		{"@\xff:example.org", false, false},
		{"alice:example.org", false, false},
		{"@alice", false, false},
		{"@alice:", false, false},
		{"@alice:bad server", false, false},
		{"!alice:example.org", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ValidUserID(tt.in); got != tt.valid {
				t.Errorf("ValidUserID(%q) = %v, want %v", tt.in, got, tt.valid)
			}
			if got := ValidCompliantUserID(tt.in); got != tt.compliant {
				t.Errorf("ValidCompliantUserID(%q) = %v, want %v", tt.in, got, tt.compliant)
			}
		})
	}
}

func TestValidLocalpart(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"alice", true},
		{"a.b_c=d-e/f+g", true},
		{"0123456789", true},
		{"=2e", true},
		{"", false},
		{"Alice", false},
		{"al ice", false},
		{"al:ice", false},
		{"al@ice", false},
		{"al*ice", false},
		{"ünï", false},
		{"a\x00", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ValidLocalpart(tt.in); got != tt.want {
				t.Errorf("ValidLocalpart(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidRoomIDAliasEventID(t *testing.T) {
	tests := []struct {
		fn   func(string) bool
		name string
		in   string
		want bool
	}{
		{ValidRoomID, "room", "!abc:example.org", true},
		{ValidRoomID, "room", "!a b\x01ü:example.org:8448", true},
		{ValidRoomID, "room", "!:example.org", true},
		{ValidRoomID, "room", "!" + strings.Repeat("a", 254-len(":x")) + ":x", true},
		{ValidRoomID, "room", "!" + strings.Repeat("a", 255-len(":x")) + ":x", false},
		{ValidRoomID, "room", "!abc", false},
		{ValidRoomID, "room", "!abc:", false},
		{ValidRoomID, "room", "abc:example.org", false},
		{ValidRoomID, "room", "!a\x00:example.org", false},
		{ValidRoomID, "room", "!\xfe:example.org", false},

		{ValidRoomAlias, "alias", "#room:example.org", true},
		{ValidRoomAlias, "alias", "#Ünï cöde!:example.org", true},
		{ValidRoomAlias, "alias", "#:example.org", false},
		{ValidRoomAlias, "alias", "#room", false},
		{ValidRoomAlias, "alias", "room:example.org", false},
		{ValidRoomAlias, "alias", "#ro\x00om:example.org", false},
		{ValidRoomAlias, "alias", "#" + strings.Repeat("a", 255) + ":x", false},

		{ValidEventID, "event", "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", true},
		{ValidEventID, "event", "$abc:example.org", true},
		{ValidEventID, "event", "$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438", true},
		{ValidEventID, "event", "$", false},
		{ValidEventID, "event", "", false},
		{ValidEventID, "event", "abc", false},
		{ValidEventID, "event", "$a\x00", false},
		{ValidEventID, "event", "$\xff", false},
		{ValidEventID, "event", "$" + strings.Repeat("a", 255), false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.in, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("Valid %s(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
			}
		})
	}
}
