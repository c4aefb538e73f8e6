package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLoadtestCommand runs `salon loadtest` against a real server: pion
// clients join its SFU with tokens minted from the server's own keys,
// publish and receive, and the report carries both sides' figures.
func TestLoadtestCommand(t *testing.T) {
	s := startServer(t, "sqlite:salon.db")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"loadtest", "--url", s.URL, "--metrics", s.MetricsURL, "--data-dir", s.srv.cfg.DataDir, "--scenario", "video", "--participants", "3", "--duration", "2s"}
	if code := run(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	t.Log(out.String())
	joined := regexp.MustCompile(`video: (\d+) joined`).FindStringSubmatch(out.String())
	if joined == nil || joined[1] != "3" {
		t.Fatalf("want 3 joined: %s", out.String())
	}
	fwd := regexp.MustCompile(`video server: (\d+) forwarded packets/s`).FindStringSubmatch(out.String())
	if fwd == nil {
		t.Fatalf("no server figures: %s", out.String())
	}
	if n, _ := strconv.Atoi(fwd[1]); n == 0 {
		t.Fatalf("the server forwarded nothing: %s", out.String())
	}
}

// TestLoadtestRefuses: the tool names what is wrong and loads nothing.
func TestLoadtestRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		says string
	}{
		"not loopback":     {[]string{"loadtest", "--url", "http://example.org", "--data-dir", dir}, "loopback"},
		"lookalike host":   {[]string{"loadtest", "--url", "http://localhost.example.org:8008", "--data-dir", dir}, "loopback"},
		"lookalike IP":     {[]string{"loadtest", "--url", "http://127.0.0.1.example.org", "--data-dir", dir}, "loopback"},
		"no keys":          {[]string{"loadtest", "--data-dir", dir}, "keys"},
		"metrics afar":     {[]string{"loadtest", "--metrics", "http://example.org:9105", "--data-dir", dir}, "loopback"},
		"unknown scenario": {[]string{"loadtest", "--scenario", "karaoke", "--data-dir", dir}, "karaoke"},
		"livekit afar":     {[]string{"loadtest", "--livekit-url", "http://example.org:7880", "--api-key", "k", "--api-secret", "s", "--pid", "1"}, "loopback"},
		"livekit no key":   {[]string{"loadtest", "--livekit-url", "http://127.0.0.1:7880", "--pid", "1"}, "--api-key"},
		"livekit no pid":   {[]string{"loadtest", "--livekit-url", "http://127.0.0.1:7880", "--api-key", "k", "--api-secret", "s"}, "--pid"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.says) {
				t.Fatalf("the reason does not mention %q: %q", tc.says, errOut.String())
			}
		})
	}
}

// TestProcUsage reads this test process's own CPU time and memory the way
// the load tool reads a LiveKit server's.
func TestProcUsage(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	cpu0, rss, err := procUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Fatalf("RSS %v bytes, want at least 1 MiB", rss)
	}
	// Burn some CPU; the reading must grow.
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	cpu1, _, err := procUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu1 <= cpu0 {
		t.Fatalf("CPU time did not grow: %v then %v (%d loops)", cpu0, cpu1, x)
	}
	if _, _, err := procUsage(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
