package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/redact"
	"github.com/salonhq/salon/signaling"
	"github.com/salonhq/salon/turn"
	"github.com/salonhq/salon/turn/credential"
	"github.com/salonhq/salon/web"
)

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("salon serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if addr := os.Getenv("SALON_PPROF_LISTEN"); addr != "" {
		startPprof(ctx, addr, log)
	}
	srv, err := newServer(ctx, cfg, ln, log)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "Salon is running: open %s in a browser (server name %s)\n", cfg.BaseURL(ln.Addr().String()), cfg.ServerName)
	return srv.run(ctx)
}

// server is a wired Salon: every component, its HTTP front and the order
// in which they stop.
type server struct {
	cfg  Config
	log  *slog.Logger
	ln   net.Listener
	http *http.Server
	hs   *homeserver.Homeserver
	turn *turn.Server
	// livekitKeys sign and verify the SFU's access tokens (nil with an
	// external LiveKit).
	livekitKeys *signaling.KeySet
	// turnCreds makes TURN credentials (nil without a relay); rtc is the
	// SFU's signalling endpoint (nil with an external LiveKit).
	turnCreds homeserver.TURNCredentials
	rtc       *signaling.RTC
	// delegations keeps MSC4195 delegated delayed leaves (nil with an
	// external LiveKit).
	delegations *signaling.Delegations
	// access writes the access log of /livekit/ requests (nil with
	// http.access_log: off), as the homeserver does for its own.
	access *slog.Logger
	// metricsLn and metrics serve GET /metrics apart from the public
	// listener (nil with metrics.listen: off).
	metricsLn net.Listener
	metrics   *http.Server
	// fedLn and fed serve the Server-Server API with TLS on a listener of
	// its own (nil unless federation.listen is set and federation is on).
	fedLn net.Listener
	fed   *http.Server
	close []func() error // run in reverse order at shutdown
}

func newServer(ctx context.Context, cfg Config, ln net.Listener, log *slog.Logger) (*server, error) {
	s := &server{cfg: cfg, log: log, ln: ln}
	if cfg.HTTP.AccessLog != "off" {
		s.access = log.With("component", "http")
	}
	ok := false
	defer func() {
		if !ok {
			s.closeAll()
		}
	}()
	if err := privateDir(cfg.DataDir, log); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	st, err := homeserver.OpenStore(ctx, string(cfg.Database), cfg.DataDir, cfg.SQLiteSynchronous)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	s.close = append(s.close, st.Close)
	key, err := homeserver.LoadOrCreateSigningKey(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := st.(interface{ StatementCount() int64 }); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "salon_store_statements_total",
			Help: "SQL statements the store has run (reads, writes, inside transactions or not).",
		}, func() float64 { return float64(c.StatementCount()) }))
	}
	turnCreds, err := s.startTURN(cfg, st, log, reg)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.turnCreds = turnCreds
	base := cfg.BaseURL(ln.Addr().String())
	hs, err := homeserver.New(cfg.Config, homeserver.Deps{
		Store: st, Logger: log, Registerer: reg, SigningKey: key, Listen: ln.Addr().String(),
		TURN: turnCreds, DataDir: cfg.DataDir, LiveKitServiceURL: base + jwtPath,
		CallGrants: liveGrants{s}, RTCDelegation: delegationFor(cfg, s),
	})
	if err != nil {
		return nil, err
	}
	s.hs = hs
	s.close = append(s.close, hs.Close)

	mux := http.NewServeMux()
	mux.Handle("/_matrix/", hs.Handler())
	mux.Handle("/.well-known/matrix/", hs.Handler())
	// Single sign-on: SAML metadata and assertion consumer, CAS service URL.
	mux.Handle("/_salon/sso/", hs.Handler())
	// Admin paths other servers have get the Matrix 404, not the web
	// client: there is no admin API for content here.
	mux.Handle("/_synapse/", hs.Handler())
	mux.Handle("/_dendrite/", hs.Handler())
	mux.Handle("/", web.Handler())
	if err := s.startJWT(cfg, base, log, reg, mux); err != nil {
		return nil, err
	}
	// Metrics are for the operator's monitoring, on their own listener;
	// here /metrics is not found (not the web client either).
	mux.Handle("/metrics", http.NotFoundHandler())
	if err := s.startMetrics(cfg, reg, log); err != nil {
		return nil, err
	}
	if err := s.startFederation(cfg, hs, log); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := st.Ping(ctx); err != nil {
			log.Warn("health check: database unreachable", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "database unreachable"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(hs.Drain)
	if s.rtc != nil {
		// Shutdown does not wait for hijacked WebSockets: close them.
		s.http.RegisterOnShutdown(s.rtc.Close)
	}
	ok = true
	return s, nil
}

// run serves until ctx ends, then drains requests in flight and closes
// the components in reverse order of their start.
func (s *server) run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsDone := make(chan struct{})
	if s.metrics != nil {
		go func() {
			defer close(metricsDone)
			if err := s.metrics.Serve(s.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics listener stopped", "err", err)
			}
		}()
	} else {
		close(metricsDone)
	}
	fedDone := make(chan struct{})
	if s.fed != nil {
		go func() {
			defer close(fedDone)
			if err := s.fed.ServeTLS(s.fedLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("federation listener stopped", "err", err)
			}
		}()
	} else {
		close(fedDone)
	}
	errc := make(chan error, 2)
	go func() { errc <- s.hs.Run(runCtx) }()
	go func() {
		if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	var first error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining requests", "timeout", s.cfg.ShutdownTimeout)
	case first = <-errc:
		s.log.Error("component stopped", "err", first)
	}
	sctx, scancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer scancel()
	if err := s.http.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown: requests still running were cut", "err", err)
		_ = s.http.Close()
	}
	if s.fed != nil {
		if err := s.fed.Shutdown(sctx); err != nil {
			_ = s.fed.Close()
		}
	}
	<-fedDone
	if s.metrics != nil {
		_ = s.metrics.Close()
	}
	<-metricsDone
	cancel()
	for i := 0; i < 2; i++ {
		if first != nil && i == 1 {
			break
		}
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if err := s.closeAll(); err != nil && first == nil {
		first = err
	}
	s.log.Info("stopped")
	return first
}

// startMetrics opens the metrics listener (metrics.listen) and the server
// that run serves on it; nothing with metrics.listen: off.
func (s *server) startMetrics(cfg Config, reg *prometheus.Registry, log *slog.Logger) error {
	if cfg.Metrics.Listen == metricsOff {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w (choose another address, or off)", err)
	}
	s.close = append(s.close, func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	if !loopbackHostPort(ln.Addr().String()) {
		log.Warn("metrics are served beyond loopback: let only your monitoring reach this address", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.metricsLn = ln
	s.metrics = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// startFederation opens the federation listener (federation.listen) with
// its TLS certificate; nothing when federation is off or shares the
// client listener.
func (s *server) startFederation(cfg Config, hs *homeserver.Homeserver, log *slog.Logger) error {
	if !hs.Federation.Enabled() || cfg.Federation.Listen == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Federation.TLSCert, cfg.Federation.TLSKey)
	if err != nil {
		return fmt.Errorf("federation.tls_cert: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Federation.Listen)
	if err != nil {
		return fmt.Errorf("federation.listen: %w", err)
	}
	s.close = append(s.close, func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	s.fedLn = ln
	s.fed = &http.Server{
		Handler:           hs.FederationHandler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("federation listening", "addr", ln.Addr().String(), "server_name", cfg.ServerName)
	return nil
}

// startTURN starts the embedded relay (unless disabled) and returns what
// /voip/turnServer hands out: the embedded relay's credentials, or an
// external coturn's when turn.external is set.
func (s *server) startTURN(cfg Config, st store.Store, log *slog.Logger, reg prometheus.Registerer) (homeserver.TURNCredentials, error) {
	host := turnHost(cfg)
	if ext := cfg.TURN.External; len(ext.URIs) > 0 {
		secret := []byte(ext.SharedSecret)
		ttl := cfg.TURN.CredentialTTL
		if ttl == 0 {
			ttl = turn.Defaults().CredentialTTL
		}
		return func(userID, deviceID string) (homeserver.TURNAnswer, bool) {
			u, p := credential.Generate(secret, credential.Principal(userID, deviceID), ttl, time.Now())
			return homeserver.TURNAnswer{Username: u, Password: p, URIs: ext.URIs, TTL: ttl}, true
		}, nil
	}
	if !cfg.TURN.Enabled {
		return nil, nil
	}
	tc := cfg.TURN
	tc.Realm = cfg.ServerName
	if tc.SharedSecret == "" {
		secret, err := turn.LoadOrCreateSecret(filepath.Join(cfg.DataDir, "turn_shared_secret"))
		if err != nil {
			return nil, err
		}
		tc.SharedSecret = redact.Secret(secret)
	}
	ts, err := turn.New(turn.Params{Config: tc, Logger: log, Registerer: reg,
		// A logged-out device's or deactivated account's credentials stop
		// working at once.
		Holders: turnHolders{st: st, serverName: cfg.ServerName}})
	if err != nil {
		return nil, err
	}
	s.close = append(s.close, ts.Close)
	s.turn = ts
	uris := ts.URIs(host)
	return func(userID, deviceID string) (homeserver.TURNAnswer, bool) {
		u, p, ttl := ts.Credentials(credential.Principal(userID, deviceID), time.Now())
		return homeserver.TURNAnswer{Username: u, Password: p, URIs: uris, TTL: ttl}, true
	}, nil
}

// turnHost is the host name put in TURN URIs: the public base URL's host,
// or the address Salon listens on.
func turnHost(cfg Config) string {
	if cfg.PublicBaseURL != "" {
		if u, err := url.Parse(cfg.PublicBaseURL); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}

func (s *server) closeAll() error {
	var errs []error
	for i := len(s.close) - 1; i >= 0; i-- {
		errs = append(errs, s.close[i]())
	}
	s.close = nil
	return errors.Join(errs...)
}

// privateDir makes the data directory, or takes group and other
// permissions off an existing one (0700): it holds the database, the
// signing and LiveKit keys, the TURN secret and the media.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return err
		}
		log.Info("data directory made private to Salon's user", "dir", dir, "was", fmt.Sprintf("%#o", perm))
	}
	return nil
}

// loopbackHostPort reports whether addr (host:port) names a loopback IP.
func loopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// startPprof serves Go's profiler on a separate address (loopback only, for
// diagnosing a live server; set SALON_PPROF_LISTEN=127.0.0.1:6060). It
// stops with ctx.
func startPprof(ctx context.Context, addr string, log *slog.Logger) {
	if !loopbackHostPort(addr) {
		log.Warn("SALON_PPROF_LISTEN must be a loopback address; profiler not started", "addr", addr)
		return
	}
	// Lock contention shows in /debug/pprof/mutex: one in 100 contended
	// unlocks is sampled, only while the profiler is on.
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiler", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info("profiler listening", "addr", addr)
}
