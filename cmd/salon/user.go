package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/salonhq/salon/homeserver"
	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/store"
)

// cmdUser administers accounts. It deliberately has no way to list rooms
// or read messages.
func cmdUser(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("salon user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	admin := fs.Bool("admin", false, "make the account a server administrator (create only)")
	pwFile := fs.String("password-file", "", "read the password from the first line of this file")
	// Accept NAME before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 || name == "" {
		return errUsage
	}
	if sub != "create" && *admin {
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	st, err := homeserver.OpenStore(ctx, string(cfg.Database), cfg.DataDir, cfg.SQLiteSynchronous)
	if err != nil {
		return err
	}
	defer st.Close()
	a := auth.New(auth.Params{Store: st, ServerName: cfg.ServerName, MinPasswordLength: cfg.Passwords.MinLength})
	lp, ok := a.Localpart(name)
	if !ok {
		return fmt.Errorf("%s is not a user of %s", name, cfg.ServerName)
	}

	password := func() (string, bool, error) {
		if *pwFile == "" {
			b := make([]byte, 15)
			_, _ = rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b), true, nil
		}
		f, err := os.Open(*pwFile)
		if err != nil {
			return "", false, err
		}
		defer f.Close()
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, err
		}
		pw := strings.TrimRight(line, "\r\n")
		return pw, false, a.CheckPasswordStrength(pw)
	}

	switch sub {
	case "create":
		pw, generated, err := password()
		if err != nil {
			return err
		}
		acc, err := a.CreateAccount(ctx, lp, pw, *admin)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s\n", acc.UserID)
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	case "deactivate":
		if err := a.Deactivate(ctx, lp); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %s", a.UserID(lp))
			}
			return err
		}
		fmt.Fprintf(stdout, "deactivated %s: logged out everywhere; the user ID will not be given out again\n", a.UserID(lp))
	case "reset-password":
		pw, generated, err := password()
		if err != nil {
			return err
		}
		if err := a.SetPassword(ctx, lp, pw, true, ""); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no active user %s", a.UserID(lp))
			}
			return err
		}
		fmt.Fprintf(stdout, "password of %s reset; all its devices are logged out\n", a.UserID(lp))
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	default:
		return errUsage
	}
	return nil
}
