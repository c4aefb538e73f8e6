package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/internal/redact"
	"github.com/salonhq/salon/sfu"
	"github.com/salonhq/salon/signaling"
	"github.com/salonhq/salon/turn"
)

// Config is salon.yaml. Each component owns its section; this file only
// composes them and adds process settings.
type Config struct {
	// Listen is the HTTP address (Client-Server API, web client, calls).
	// It never serves metrics: those have their own listener.
	Listen string `yaml:"listen"`
	// Metrics is where Prometheus metrics are served.
	Metrics MetricsConfig `yaml:"metrics"`
	// DataDir holds the SQLite database, the signing key and media.
	DataDir string `yaml:"data_dir"`
	// Database is "sqlite:PATH" (relative to data_dir) or a postgres:// URL
	// (its password never prints).
	Database redact.URL `yaml:"database"`
	// SQLiteSynchronous is "full" (survives power loss) or "normal".
	SQLiteSynchronous string `yaml:"sqlite_synchronous"`
	// ShutdownTimeout bounds how long SIGTERM waits for requests to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Log             LogConfig     `yaml:"log"`

	homeserver.Config `yaml:",inline"`

	// TURN is the embedded relay for calls (and where clients are sent
	// for an external coturn).
	TURN turn.Config `yaml:"turn"`
	// LiveKit is the MatrixRTC JWT service: the embedded SFU, or an
	// external LiveKit deployment.
	LiveKit signaling.JWTConfig `yaml:"livekit"`
	// SFU is the embedded media server for group calls (unused when
	// livekit.external_url points at an external LiveKit).
	SFU sfu.Config `yaml:"sfu"`
}

// MetricsConfig places the Prometheus endpoint (GET /metrics) on a
// listener of its own, apart from the public one: request counts, call and
// relay figures and process details are for the operator's monitoring.
type MetricsConfig struct {
	// Listen is HOST:PORT of the metrics listener, or "off". Default
	// 127.0.0.1:9105: loopback, so only this machine (a local Prometheus
	// or agent) reads it.
	Listen string `yaml:"listen"`
}

// metricsOff is the metrics.listen value that serves no metrics.
const metricsOff = "off"

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Defaults is the configuration with no file and no flags.
func Defaults() Config {
	return Config{
		Listen:            "127.0.0.1:8008",
		Metrics:           MetricsConfig{Listen: "127.0.0.1:9105"},
		DataDir:           "./data",
		Database:          "sqlite:salon.db",
		SQLiteSynchronous: "full",
		ShutdownTimeout:   15 * time.Second,
		Log:               LogConfig{Level: "info", Format: "text"},
		Config:            homeserver.Defaults(),
		TURN:              turn.Defaults(),
		LiveKit:           signaling.JWTDefaults(),
		SFU:               sfu.Defaults(),
	}
}

// LoadConfig decodes the YAML file at path (none: the defaults) strictly
// over the defaults: an unknown key is an error.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	if path == "" {
		return cfg, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	return cfg, decodeConfig(f, &cfg)
}

func decodeConfig(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Validate checks every setting and reports every problem with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen", "%q must be HOST:PORT, such as 127.0.0.1:8008", c.Listen)
	}
	if m := c.Metrics.Listen; m != metricsOff {
		if _, port, err := net.SplitHostPort(m); err != nil || port == "" {
			bad("metrics.listen", "%q must be HOST:PORT, such as 127.0.0.1:9105, or off", m)
		} else if m == c.Listen && port != "0" {
			bad("metrics.listen", "%q must differ from listen: metrics are not served on the public listener", m)
		}
	}
	if f := c.Federation.Listen; f != "" && (f == c.Listen || f == c.Metrics.Listen) {
		bad("federation.listen", "%q must differ from listen and metrics.listen (leave it empty to serve federation on listen)", f)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Database == "" {
		bad("database", "must be sqlite:PATH or a postgres:// URL")
	} else if !hasPrefix(string(c.Database), "sqlite:", "postgres://", "postgresql://") {
		bad("database", "%q must be sqlite:PATH or a postgres:// URL", c.Database)
	}
	if c.SQLiteSynchronous != "full" && c.SQLiteSynchronous != "normal" {
		bad("sqlite_synchronous", "%q must be full or normal", c.SQLiteSynchronous)
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 10*time.Minute {
		bad("shutdown_timeout", "%s must be between 0 and 10m", c.ShutdownTimeout)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q must be text or json", c.Log.Format)
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	t := c.TURN
	t.Realm = c.ServerName
	if t.SharedSecret == "" {
		// Generated in the data directory at start; validate the rest.
		t.SharedSecret = "placeholder-for-validation-only"
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.LiveKit.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.SFU.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func hasPrefix(s string, ps ...string) bool {
	for _, p := range ps {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

//go:embed salon.example.yaml
var exampleConfig string
