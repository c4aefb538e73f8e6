package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/rooms"
)

// cmdLDAP is `salon ldap sync --dry-run`: what the LDAP group sync would
// change now. The running server makes the changes (a command cannot
// write room events beside it); this only reads.
func cmdLDAP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "sync" {
		return errUsage
	}
	fs := flag.NewFlagSet("salon ldap sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	dry := fs.Bool("dry-run", false, "print what the sync would change, change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errUsage
	}
	if !*dry {
		return errors.New("ldap sync: the running server syncs at ldap.sync.interval and at each sign-in; use --dry-run to see what it would change")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if !cfg.LDAP.Enabled() {
		return errors.New("ldap sync: ldap.url is not set")
	}
	st, err := homeserver.OpenStore(ctx, string(cfg.Database), cfg.DataDir, cfg.SQLiteSynchronous)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	a := auth.New(auth.Params{Store: st, ServerName: cfg.ServerName})
	r := rooms.New(rooms.Params{Store: st, ServerName: cfg.ServerName, Logger: log})
	l, err := ldap.New(ldap.Params{Config: cfg.LDAP, Store: st, Auth: a, Rooms: r, Logger: log})
	if err != nil {
		return err
	}
	plan, err := l.PlanSync(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, c := range plan.Changes {
		switch c.Action {
		case ldap.ActionInvite:
			fmt.Fprintf(stdout, "would invite %s to %s (%s)\n", c.UserID, c.Room, c.Reason)
		case ldap.ActionJoin:
			fmt.Fprintf(stdout, "would join %s to %s (%s)\n", c.UserID, c.Room, c.Reason)
		case ldap.ActionKick:
			fmt.Fprintf(stdout, "would remove %s from %s (%s)\n", c.UserID, c.Room, c.Reason)
		default:
			continue
		}
		n++
	}
	for _, p := range plan.Problems {
		fmt.Fprintf(stdout, "problem: %s\n", p)
	}
	fmt.Fprintf(stdout, "%d change(s) (dry run: nothing was changed)\n", n)
	return nil
}

// checkLDAP is `salon config check`'s test of the directory: connect,
// bind as the service account, search.
func checkLDAP(ctx context.Context, cfg Config) error {
	l, err := ldap.New(ldap.Params{Config: cfg.LDAP})
	if err != nil {
		return err
	}
	return l.Check(ctx)
}
