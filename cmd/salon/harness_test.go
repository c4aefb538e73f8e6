package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/salonhq/salon/internal/testnet"

	"github.com/salonhq/salon/homeserver/store/postgres/pgtest"
	"github.com/salonhq/salon/internal/redact"
)

// backends lists the databases every end-to-end test runs against.
func backends(testing.TB) map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "salon.db") },
		"postgres": func(t testing.TB) string { return pgtest.URL(t) },
	}
}

// forEachBackend runs fn as a subtest per storage backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, database string)) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) { fn(t, db(t)) })
	}
}

type testServer struct {
	URL    string
	srv    *server
	cancel context.CancelFunc
	done   chan error

	// MetricsURL is the base URL of the metrics listener ("" when off).
	MetricsURL string
}

// startServer runs the real server (the same wiring as `salon serve`) on a
// loopback port until the test ends.
func startServer(t testing.TB, database string, edit ...func(*Config)) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return startServerLog(t, database, log, edit...)
}

// startServerLog is startServer logging to log.
func startServerLog(t testing.TB, database string, log *slog.Logger, edit ...func(*Config)) *testServer {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Database = redact.URL(database)
	cfg.SQLiteSynchronous = "normal"
	cfg.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = "127.0.0.1:0"
	// Tests run side by side: the relay takes free ports.
	cfg.TURN.ListenUDP, cfg.TURN.ListenTCP, cfg.TURN.UDPSockets = "127.0.0.1:0", "127.0.0.1:0", 1
	cfg.SFU.UDPPort, cfg.SFU.TCPPort = freeUDPPort(t), -1
	for _, e := range edit {
		e(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, ln, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts := &testServer{URL: "http://" + ln.Addr().String(), srv: srv, cancel: cancel, done: make(chan error, 1)}
	if srv.metricsLn != nil {
		ts.MetricsURL = "http://" + srv.metricsLn.Addr().String()
	}
	go func() { ts.done <- srv.run(ctx) }()
	t.Cleanup(ts.Stop)
	return ts
}

// Stop shuts the server down and waits for it.
func (s *testServer) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		panic("server did not stop within 30s")
	}
}

// freeUDPPort finds a UDP port free right now on loopback (the SFU wants a
// fixed port; tests run side by side).
func freeUDPPort(t testing.TB) int {
	t.Helper()
	return testnet.Port(t)
}
