package credential

import (
	"errors"
	"testing"
	"time"
)

var secret = []byte("north-wind-secret")

func TestGenerateKnownVector(t *testing.T) {
	// Computed independently: base64(HMAC-SHA1("north-wind-secret",
	// "1700000000:@alice:example.org")), what coturn computes for the same
	// username under use-auth-secret.
	now := time.Unix(1700000000-3600, 0)
	user, pass := Generate(secret, "@alice:example.org", time.Hour, now)
	if user != "1700000000:@alice:example.org" {
		t.Errorf("username = %q", user)
	}
	if want := "LN9jmD08M52cFIz/nxG9pwdWHUU="; pass != want {
		t.Errorf("password = %q, want %q", pass, want)
	}
}

func TestRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	user, pass := Generate(secret, "@bob:example.org", 24*time.Hour, now)
	for _, at := range []time.Time{now, now.Add(24 * time.Hour)} {
		gotUser, gotPass, err := Check(secret, user, at)
		if err != nil {
			t.Fatalf("Check at %v: %v", at, err)
		}
		if gotUser != "@bob:example.org" || gotPass != pass {
			t.Errorf("Check = %q, %q; want @bob:example.org, %q", gotUser, gotPass, pass)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name     string
		username string
		want     error
	}{
		{"expired by one second", "1699999999:@a:b", ErrExpired},
		{"long expired", "1:@a:b", ErrExpired},
		{"bare timestamp, pion's form", "1800000000", ErrMalformed},
		{"empty user", "1800000000:", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"no expiry", ":@a:b", ErrMalformed},
		{"not a number", "soon:@a:b", ErrMalformed},
		{"negative", "-1800000000:@a:b", ErrMalformed},
		{"plus sign", "+1800000000:@a:b", ErrMalformed},
		{"overflow", "99999999999999999999:@a:b", ErrMalformed},
		{"user first", "@a:b:1800000000", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Check(secret, tt.username, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check(%q) err = %v, want %v", tt.username, err, tt.want)
			}
		})
	}
}

// A tampered username (another user, a later expiry) yields a different
// password, so MESSAGE-INTEGRITY computed with the original password fails.
func TestTamperChangesPassword(t *testing.T) {
	now := time.Unix(1700000000, 0)
	user, pass := Generate(secret, "@alice:example.org", time.Hour, now)
	for _, forged := range []string{
		"1700003600:@mallory:example.org",
		"1900000000:@alice:example.org",
	} {
		if forged == user {
			t.Fatal("test vector collides with the genuine username")
		}
		_, got, err := Check(secret, forged, now)
		if err != nil {
			t.Fatalf("Check(%q): %v", forged, err)
		}
		if got == pass {
			t.Errorf("forged username %q has the genuine password", forged)
		}
	}
	if _, got, _ := Check([]byte("another secret"), user, now); got == pass {
		t.Error("a different secret gives the same password")
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("1800000000:@a:b")
	f.Add("x")
	f.Fuzz(func(t *testing.T, username string) {
		now := time.Unix(1700000000, 0)
		userID, pass, err := Check(secret, username, now)
		if err != nil {
			return
		}
		if userID == "" || pass != Password(secret, username) {
			t.Fatalf("Check(%q) = %q, %q", username, userID, pass)
		}
	})
}

func TestPrincipal(t *testing.T) {
	tests := []struct{ user, device, joined string }{
		{"@alice:example.org", "ABCDEF", "@alice:example.org/ABCDEF"},
		{"@alice:example.org", "", "@alice:example.org"},
		{"@alice:example.org:8448", "dev/with:odd#chars", "@alice:example.org:8448/dev/with:odd#chars"},
		{"@a/b=c:[::1]:8448", "D", "@a/b=c:[::1]:8448/D"},
		{"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU", "", "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"},
	}
	for _, tt := range tests {
		p := Principal(tt.user, tt.device)
		if p != tt.joined {
			t.Errorf("Principal(%q, %q) = %q, want %q", tt.user, tt.device, p, tt.joined)
		}
		if u, d := SplitPrincipal(p); u != tt.user || d != tt.device {
			t.Errorf("SplitPrincipal(%q) = %q, %q; want %q, %q", p, u, d, tt.user, tt.device)
		}
	}
	// The whole principal round-trips through a username.
	user, pass := Generate(secret, Principal("@bob:example.org", "PHONE"), time.Hour, time.Unix(1700000000, 0))
	got, gotPass, err := Check(secret, user, time.Unix(1700000000, 0))
	if err != nil || got != "@bob:example.org/PHONE" || gotPass != pass {
		t.Fatalf("Check(%q) = %q, %v", user, got, err)
	}
}
