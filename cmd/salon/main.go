// Command salon is the Salon server: a Matrix homeserver with its own
// conferencing (SFU, TURN, Jitsi bridge) in one binary.
//
//	salon serve [--config salon.yaml] [--listen ADDR] [--server-name NAME] [--data-dir DIR] [--database DSN]
//	salon config example
//	salon config check --config salon.yaml
//	salon user create NAME [--admin] [--password-file F]
//	salon user deactivate NAME
//	salon user reset-password NAME [--password-file F]
//	salon media purge [--older-than 90d]
//	salon ldap sync --dry-run
//	salon bench messaging [--url URL] ...
//	salon loadtest [--url URL] [--data-dir DIR] [--scenario NAMES] [--duration D]
//
// There is no command that lists rooms or reads messages: the operator
// administers accounts, never content.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/salonhq/salon/internal/redact"
)

const usage = `usage:
  salon serve [--config FILE] [--listen ADDR] [--server-name NAME] [--data-dir DIR] [--database DSN]
              [--turn-allow-peer CIDR ...]
  salon config example                 print a commented example configuration
  salon config check --config FILE     validate a configuration file
  salon user create NAME [--admin] [--password-file FILE]
  salon user deactivate NAME
  salon user reset-password NAME [--password-file FILE]
  salon bench messaging [--url URL] [--clients N] [--rooms N | --room-size N] [--rate R] [--duration D]
                                       load a running server on loopback (see docs/PERFORMANCE.md)
  salon loadtest [--url URL] [--data-dir DIR] [--scenario audio,lecture,video,churn|all] [--duration D]
                 [--livekit-url URL --api-key K --api-secret S --pid PID]
                                       load a running server's SFU with pion clients (see docs/PERFORMANCE.md)
  salon media purge [--older-than 90d]  delete unreferenced media older than that
  salon ldap sync --dry-run            print what the LDAP group sync would change
  salon version
`

var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage is reported as exit status 2 after printing the usage.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 2
	default:
		fmt.Fprintln(stderr, "salon:", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 {
			return errUsage
		}
		switch args[1] {
		case "example":
			_, err := io.WriteString(stdout, exampleConfig)
			return err
		case "check":
			cfg, err := configFromFlags(args[2:], stderr)
			if err != nil {
				return err
			}
			if cfg.LDAP.Enabled() {
				if err := checkLDAP(ctx, cfg); err != nil {
					return fmt.Errorf("ldap: %w", err)
				}
				fmt.Fprintln(stdout, "LDAP: the service account binds and searches")
			}
			if err := checkSSO(ctx, cfg, stdout); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "configuration is valid")
			return nil
		}
	case "user":
		if len(args) < 2 {
			return errUsage
		}
		return cmdUser(ctx, args[1], args[2:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "loadtest":
		return cmdLoadtest(ctx, args[1:], stdout, stderr)
	case "media":
		return cmdMedia(ctx, args[1:], stdout, stderr)
	case "ldap":
		return cmdLDAP(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "salon", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return errUsage
}

// commonFlags are the flags every command that opens the server's data
// accepts; they override the configuration file.
type commonFlags struct {
	config, listen, serverName, dataDir, database string
	turnAllowPeers                                stringList
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "configuration file (YAML)")
	fs.StringVar(&c.listen, "listen", "", "HTTP listen address (overrides listen)")
	fs.StringVar(&c.serverName, "server-name", "", "server name (overrides server_name)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (overrides data_dir)")
	fs.StringVar(&c.database, "database", "", "sqlite:PATH or postgres:// URL (overrides database)")
	fs.Var(&c.turnAllowPeers, "turn-allow-peer", "CIDR the TURN relay may reach although private (repeatable; labs and tests)")
}

// load reads the file, applies the flags and validates the result.
func (c *commonFlags) load() (Config, error) {
	cfg, err := LoadConfig(c.config)
	if err != nil {
		return cfg, err
	}
	if c.listen != "" {
		cfg.Listen = c.listen
	}
	if c.serverName != "" {
		cfg.ServerName = c.serverName
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if c.database != "" {
		cfg.Database = redact.URL(c.database)
	}
	cfg.TURN.AllowPeers = append(cfg.TURN.AllowPeers, c.turnAllowPeers...)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func configFromFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("salon config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return cf.load()
}
