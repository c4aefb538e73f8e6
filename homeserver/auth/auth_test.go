package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/salonhq/salon/homeserver/store/sqlite"
	"github.com/salonhq/salon/internal/mxerr"
)

func TestLoginToken(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_000_000, 0)
	s := New(Params{Store: st, ServerName: "t", Now: func() time.Time { return now }, MinPasswordLength: 8})
	tok, err := s.CreateLoginToken(ctx, "@a:t", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.ConsumeLoginToken(ctx, string(tok)); err != nil || u != "@a:t" {
		t.Fatalf("consume = %q %v", u, err)
	}
	var me *mxerr.Error
	if _, err := s.ConsumeLoginToken(ctx, string(tok)); !errors.As(err, &me) || me.Code != mxerr.Forbidden {
		t.Fatalf("second use: %v", err)
	}
	tok2, _ := s.CreateLoginToken(ctx, "@a:t", time.Minute)
	now = now.Add(2 * time.Minute)
	if _, err := s.ConsumeLoginToken(ctx, string(tok2)); err == nil {
		t.Fatal("expired token accepted")
	}
}

func TestTokenNeverLogged(t *testing.T) {
	tok := newToken("salon_")
	if v := tok.LogValue().String(); v != "REDACTED" {
		t.Fatalf("token logs as %q", v)
	}
	if len(tok) < len("salon_")+43 {
		t.Fatalf("token too short: %d", len(tok))
	}
	if string(HashToken(string(tok))) == string(tok) {
		t.Fatal("hash is the token")
	}
}
