package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/media"
)

// cmdMedia administers the media repository. Like `salon user`, it never
// lists media or shows what anyone uploaded: it reports counts only.
func cmdMedia(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "purge" {
		return errUsage
	}
	fs := flag.NewFlagSet("salon media purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	olderThan := fs.String("older-than", "", "purge unreferenced media older than this (90d, 36h, 30m; default media.retention.unreferenced_after)")
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
	mcfg := cfg.Media
	age := mcfg.Retention.UnreferencedAfter.D()
	if *olderThan != "" {
		if age, err = media.ParseDuration(*olderThan); err != nil {
			return fmt.Errorf("--older-than: %w", err)
		}
	}
	st, err := homeserver.OpenStore(ctx, string(cfg.Database), cfg.DataDir, cfg.SQLiteSynchronous)
	if err != nil {
		return err
	}
	defer st.Close()
	repo, err := media.New(media.Params{
		Config: mcfg, ServerName: cfg.ServerName, DataDir: cfg.DataDir, Store: st,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	n, bytes, err := repo.Purge(ctx, age)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "purged %d media not referenced by any event and older than %s; %s freed\n",
		n, media.Duration(age), humanBytes(bytes))
	return nil
}

// humanBytes writes a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
