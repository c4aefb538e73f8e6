// Package redact holds the one type for secrets: passwords, shared
// secrets, API secrets and bearer tokens, from the configuration or made
// by the server. Such a value never reaches a log, an error message or a
// configuration dump: it prints, logs and marshals as REDACTED, whether
// alone or inside a struct that a JSON log handler marshals. The one way to
// use it is an explicit conversion, string(s) or []byte(s), at the place
// that needs the secret itself (signing, hashing, the wire).
//
// It imports no other package of the project, so every component may use
// it.
package redact

import (
	"log/slog"
	"net/url"
	"strings"
)

// Redacted is what a secret prints as.
const Redacted = "REDACTED"

// Secret is a secret string. Decoding (YAML, JSON) reads the string as
// is; there is no UnmarshalText.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String implements fmt.Stringer, for %s, %v and %q.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return Redacted }

// MarshalText implements encoding.TextMarshaler, so that JSON and YAML
// encoders write REDACTED.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// URL is a URL that may carry a password (a database URL): it prints,
// logs and marshals with the password hidden, in the user information or
// in a password query parameter (libpq reads both), so that the rest stays
// readable. A URL that does not parse but holds an '@' prints as REDACTED.
type URL string

// LogValue implements slog.LogValuer.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// String hides the password: "postgres://u:pw@host/db" prints as
// "postgres://u:REDACTED@host/db".
func (u URL) String() string {
	p, err := url.Parse(string(u))
	if err != nil {
		if strings.ContainsAny(string(u), "@") || strings.Contains(strings.ToLower(string(u)), "password") {
			return Redacted
		}
		return string(u)
	}
	if _, has := p.User.Password(); has {
		p.User = url.UserPassword(p.User.Username(), Redacted)
	}
	if q := p.Query(); q.Has("password") {
		q.Set("password", Redacted)
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// GoString implements fmt.GoStringer, for %#v.
func (u URL) GoString() string { return u.String() }

// MarshalText implements encoding.TextMarshaler.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
