package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/salonhq/salon/homeserver"
)

// cmdFederation is `salon federation rotate-key`: a new signing key in the
// data directory, the old one kept beside it and published as an old key
// from the next start.
func cmdFederation(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate-key" {
		return errUsage
	}
	fs := flag.NewFlagSet("salon federation rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	oldID, newID, err := homeserver.RotateSigningKey(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	fmt.Fprintf(stdout, "new signing key %s; %s is published as an old key from the next start (stop Salon before rotating)\n", newID, oldID)
	return nil
}
