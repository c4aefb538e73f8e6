package ldap_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/identity/ldap"
	"github.com/salonhq/salon/homeserver/identity/ldap/ldaptest"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
)

var ctx = context.Background()

func config(url string) ldap.Config {
	c := ldap.Defaults()
	c.URL = url
	c.BindDN, c.BindPassword = ldaptest.ServiceDN, ldaptest.ServicePW
	c.BaseDN = ldaptest.People
	c.UserFilter = ldaptest.UserFilter
	c.Directory.Enabled = true
	return c
}

func newService(t testing.TB, cfg ldap.Config) (*ldap.Service, store.Store) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := auth.New(auth.Params{Store: st, ServerName: "salon.test", MinPasswordLength: 8})
	s, err := ldap.New(ldap.Params{Config: cfg, Store: st, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	a.SetPasswordDelegate(s)
	return s, st
}

func code(err error) mxerr.Code {
	var me *mxerr.Error
	if errors.As(err, &me) {
		return me.Code
	}
	return ""
}

func TestCheckPassword(t *testing.T) {
	srv := ldaptest.Start(t)
	s, st := newService(t, config(srv.URL))
	lp, err := s.CheckPassword(ctx, "alice", "alice-pw")
	if err != nil || lp != "alice" {
		t.Fatalf("alice: %q, %v", lp, err)
	}
	if p, _ := st.Profile(ctx, "@alice:salon.test"); p.DisplayName != "Alice Liddell" {
		t.Fatalf("display name %q", p.DisplayName)
	}
	// Upper case in the directory becomes a lower-case localpart.
	if lp, err := s.CheckPassword(ctx, "dave.grohl", "Dave.Grohl-pw"); err != nil || lp != "dave.grohl" {
		t.Fatalf("dave: %q, %v", lp, err)
	}
	for _, tc := range []struct{ name, login, pw string }{
		{"wrong password", "alice", "nope-nope"},
		{"empty password (an unauthenticated bind)", "alice", ""},
		{"unknown", "zed", "zed-pw"},
		{"disabled", "mallory", "mallory-pw"},
		{"injection wildcard", "*", "alice-pw"},
		{"injection or", "*)(uid=*", "alice-pw"},
		{"injection close", "alice)(|(uid=*", "alice-pw"},
		{"injection null", "alice\x00", "alice-pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CheckPassword(ctx, tc.login, tc.pw); code(err) != mxerr.Forbidden {
				t.Fatalf("got %v, want M_FORBIDDEN", err)
			}
		})
	}
	srv.Stop()
	_, err = s.CheckPassword(ctx, "alice", "alice-pw")
	var me *mxerr.Error
	if !errors.As(err, &me) || me.HTTPStatus() != 503 {
		t.Fatalf("directory down: %v", err)
	}
}
