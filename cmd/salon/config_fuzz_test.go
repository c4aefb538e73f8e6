package main

import (
	"os"
	"strings"
	"testing"
)

// FuzzConfig: any salon.yaml is decoded over the defaults and validated,
// or refused with an error naming the problem; nothing panics, and a
// configuration that passes validation validates again (validation does
// not depend on what it has already seen).
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("salon.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{"", "server_name: example.org\n", "listen: [1, 2]\n", "unknown_key: 1\n", "sfu:\n  udp_port: -1\n",
		"media:\n  thumbnails:\n    sizes: [{width: 0, height: 0, method: crop}]\n", "rate_limits:\n  login_per_ip: {per_second: -1, burst: 0}\n",
		"turn:\n  allow_peers: ['10.0.0.0/33']\n", "&a [*a, *a]\n", "a: &a\n  b: *a\n", "database: '\x00'\n", "- 1\n", "!!binary x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := Defaults()
		if err := decodeConfig(strings.NewReader(string(b)), &cfg); err != nil {
			return
		}
		if cfg.Validate() == nil {
			if err := cfg.Validate(); err != nil {
				t.Fatalf("valid once, then not: %v", err)
			}
		}
	})
}
