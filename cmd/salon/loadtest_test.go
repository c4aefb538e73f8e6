package main

import (
	"bytes"
	"context"
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
	args := []string{"loadtest", "--url", s.URL, "--data-dir", s.srv.cfg.DataDir, "--scenario", "video", "--participants", "3", "--duration", "2s"}
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
	for name, args := range map[string][]string{
		"not loopback":     {"loadtest", "--url", "http://example.org", "--data-dir", dir},
		"no keys":          {"loadtest", "--data-dir", dir},
		"unknown scenario": {"loadtest", "--scenario", "karaoke", "--data-dir", dir},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), args, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), "salon:") {
				t.Fatalf("no reason given: %q", errOut.String())
			}
		})
	}
}
