// Package ldap turns LDAP directory entries into local accounts: password
// sign-in by search-then-bind, the account made at the first sign-in and
// linked to the entry's stable ID, the profile kept in step, the user
// directory search over people who have not signed in yet, and the group
// sync that makes room membership follow LDAP groups.
//
// The group sync changes membership only through rooms — ordinary invite,
// join and kick events sent by a server-owned account — never around it.
// This package does not import clientapi: the homeserver wires its answers
// into the API through small interfaces the API declares.
package ldap

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/rooms"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Params are what a Service needs.
type Params struct {
	// Config must have passed Validate and be enabled.
	Config Config
	Store  store.Store
	Auth   *auth.Service
	// Rooms is where the group sync sends membership (nil: no sync, as in
	// a CLI that only plans).
	Rooms  *rooms.Service
	Logger *slog.Logger
	Now    func() time.Time
	// ProfileChanged hears of a display name the directory changed, to
	// send it into the user's rooms.
	ProfileChanged func(ctx context.Context, userID string, p store.Profile)
}

// Service is the LDAP identity provider and group sync.
type Service struct {
	p   Params
	cfg *Config
	dir *directory
	log *slog.Logger

	// signins queues users whose groups to sync after they signed in;
	// Run drains it.
	signins chan string

	// syncMu makes syncs one at a time; pace bounds the events they write.
	syncMu sync.Mutex
	pace   pacer
	last   SyncReport // under syncMu

	// future holds the Matrix IDs of directory people without an account
	// yet, as the last full sync saw them, so the sync's invites to them
	// do not each ask the directory again (rooms checks every invitee).
	futureMu    sync.Mutex
	future      map[string]bool
	futureUntil time.Time
}

// SyncReport is what the last full sync did.
type SyncReport struct {
	Took            time.Duration
	Changes, Failed int
	// Queries is the LDAP search requests it sent (each page counts).
	Queries int64
}

// New returns a Service. It does not contact the directory: an
// unreachable directory at start is reported by the first sign-in or sync.
func New(p Params) (*Service, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	cfg := p.Config
	cfg.fill()
	d, err := newDirectory(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{p: p, cfg: &cfg, dir: d, log: p.Logger, signins: make(chan string, 1024)}
	if cfg.Sync.ChangesPerSecond > 0 {
		s.pace.every = time.Duration(float64(time.Second) / cfg.Sync.ChangesPerSecond)
	}
	return s, nil
}

var errLogin = mxerr.Forbid("Invalid username or password")

// unavailable is the answer while the directory cannot be reached: a 503
// the client may retry, and a log line for the operator.
func (s *Service) unavailable(op string, err error) error {
	s.log.Warn("LDAP directory unavailable", "op", op, "err", err)
	return mxerr.New(mxerr.Unknown, "The sign-in directory is unavailable; try again later").WithStatus(503)
}

// Check contacts the directory and binds as the service account (for
// `salon config check`).
func (s *Service) Check(ctx context.Context) error {
	c, err := s.dir.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = s.dir.search(c, s.dir.userFilter(""), 1)
	return err
}

// CheckPassword signs a person in with their directory password: search
// for the one entry whose login attribute is login (escaped), bind as it
// with password, and return the localpart of the account linked to it,
// made now at the first sign-in. It implements auth.PasswordDelegate.
func (s *Service) CheckPassword(ctx context.Context, login, password string) (string, error) {
	// An empty password would be an unauthenticated bind, which LDAP
	// servers accept for any DN (RFC 4513 5.1.2).
	if login == "" || password == "" || len(login) > 255 || len(password) > 4096 {
		return "", errLogin
	}
	c, err := s.dir.dial(ctx)
	if err != nil {
		return "", s.unavailable("sign-in", err)
	}
	defer c.Close()
	es, err := s.dir.search(c, s.dir.userFilter(eq(s.cfg.LoginAttribute, login)), 2)
	if err != nil {
		return "", s.failed("sign-in search", err)
	}
	if len(es) == 0 {
		// The localpart of an account whose entry has been renamed since.
		if u, err := s.p.Store.LDAPUserByLocalpart(ctx, login); err == nil {
			e, err := s.dir.byID(c, u.EntryID)
			if err != nil {
				return "", s.failed("sign-in search", err)
			}
			if e != nil {
				es = []entry{*e}
			}
		}
	}
	if len(es) != 1 {
		if len(es) > 1 {
			s.log.Warn("LDAP sign-in refused: the login name matches more than one entry", "login", login)
		}
		return "", errLogin
	}
	e := es[0]
	if e.ID == "" {
		s.log.Error("LDAP entry has no stable ID attribute", "dn", e.DN, "attribute", s.cfg.IDAttribute)
		return "", errLogin
	}
	if err := c.Bind(e.DN, password); err != nil {
		if errors.Is(classify(err), ErrUnavailable) {
			return "", s.unavailable("bind", err)
		}
		return "", errLogin
	}
	lp, err := s.provision(ctx, e)
	if err != nil {
		return "", err
	}
	if len(s.cfg.Groups) > 0 {
		select {
		case s.signins <- s.p.Auth.UserID(lp):
		default:
			s.log.Warn("LDAP sign-in group sync queue full; the next full sync catches up", "user", lp)
		}
	}
	return lp, nil
}

// failed reports a directory error: unavailable, or an unexpected answer.
func (s *Service) failed(op string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return s.unavailable(op, err)
	}
	s.log.Error("LDAP "+op, "err", err)
	return mxerr.New(mxerr.Unknown, "The sign-in directory gave an unexpected answer").WithStatus(503)
}

// Owns reports whether a local account was made from the directory (its
// password lives there).
func (s *Service) Owns(ctx context.Context, localpart string) bool {
	_, err := s.p.Store.LDAPUserByLocalpart(ctx, localpart)
	return err == nil
}

// provision returns the account linked to the entry, making it at the
// first sign-in, and keeps its display name and mail in step.
func (s *Service) provision(ctx context.Context, e entry) (string, error) {
	now := s.p.Now().UnixMilli()
	for attempt := 0; ; attempt++ {
		u, err := s.p.Store.LDAPUserByEntry(ctx, e.ID)
		if err == nil {
			return u.Localpart, s.refresh(ctx, u, e, now)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		lp := e.Localpart
		if err := s.p.Auth.CheckLocalpart(lp); err != nil || lp == s.cfg.Sync.Account {
			s.log.Warn("LDAP entry has no usable localpart", "dn", e.DN, "attribute", s.cfg.LocalpartAttribute, "value", lp)
			return "", mxerr.Forbid("Your directory entry gives no usable Matrix ID; ask your administrator")
		}
		acc := store.Account{Localpart: lp, UserID: s.p.Auth.UserID(lp), CreatedTS: now}
		err = s.p.Store.CreateLDAPAccount(ctx, acc, e.DisplayName, store.LDAPUser{
			EntryID: e.ID, Localpart: lp, DN: e.DN, DisplayName: e.DisplayName, Mail: e.Mail, UpdatedTS: now,
		})
		if err == nil {
			s.log.Info("account created from LDAP", "user", acc.UserID, "dn", e.DN)
			return lp, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return "", err
		}
		// Either a concurrent first sign-in of the same entry won (look
		// again), or the localpart belongs to another account.
		if attempt == 0 {
			if _, err := s.p.Store.LDAPUserByEntry(ctx, e.ID); err == nil {
				continue
			}
		}
		s.log.Warn("LDAP sign-in refused: the localpart is taken by another account", "localpart", lp, "dn", e.DN)
		return "", mxerr.Forbid("Your Matrix ID %s is already used by another account; ask your administrator", acc.UserID)
	}
}

// refresh updates a linked account at sign-in: refused if deactivated,
// no longer missing, and the directory's display name and mail stored
// (the profile changes only when the directory's value changed, so a name
// a user chose stays until the directory changes).
func (s *Service) refresh(ctx context.Context, u store.LDAPUser, e entry, now int64) error {
	acc, err := s.p.Store.Account(ctx, u.Localpart)
	if err != nil {
		return err
	}
	if acc.Deactivated {
		return mxerr.New(mxerr.UserDeactivated, "This account has been deactivated")
	}
	if u.MissingSinceTS != 0 {
		if err := s.p.Store.SetLDAPMissing(ctx, u.EntryID, 0); err != nil {
			return err
		}
	}
	if u.DN == e.DN && u.DisplayName == e.DisplayName && u.Mail == e.Mail {
		return nil
	}
	nameChanged := u.DisplayName != e.DisplayName
	u.DN, u.DisplayName, u.Mail, u.UpdatedTS = e.DN, e.DisplayName, e.Mail, now
	if err := s.p.Store.UpdateLDAPUser(ctx, u); err != nil {
		return err
	}
	if nameChanged {
		if err := s.p.Store.SetDisplayName(ctx, acc.UserID, e.DisplayName); err != nil {
			return err
		}
		if s.p.ProfileChanged != nil {
			p, _ := s.p.Store.Profile(ctx, acc.UserID)
			s.p.ProfileChanged(ctx, acc.UserID, p)
		}
	}
	return nil
}

// Known reports whether userID is the future Matrix ID of a directory
// entry that has not signed in yet (so it may be invited).
func (s *Service) Known(ctx context.Context, userID string) bool {
	lp, ok := s.p.Auth.Localpart(userID)
	if !ok || lp == "" {
		return false
	}
	s.futureMu.Lock()
	known := s.future[userID] && s.p.Now().Before(s.futureUntil)
	s.futureMu.Unlock()
	if known {
		return true
	}
	c, err := s.dir.dial(ctx)
	if err != nil {
		s.log.Warn("LDAP directory unavailable", "op", "invitee lookup", "err", err)
		return false
	}
	defer c.Close()
	es, err := s.dir.search(c, s.dir.userFilter(eq(s.cfg.LocalpartAttribute, lp)), 5)
	if err != nil {
		s.log.Warn("LDAP invitee lookup", "err", err)
		return false
	}
	for _, e := range es {
		if e.Localpart == lp {
			if _, err := s.p.Store.LDAPUserByEntry(ctx, e.ID); errors.Is(err, store.ErrNotFound) {
				return true
			}
		}
	}
	return false
}

// DirectoryUser is a person the directory search found.
type DirectoryUser struct {
	UserID      string
	DisplayName string
}

// SearchUsers finds directory entries whose login, display name or mail
// contains term, as the Matrix IDs they have or will have. Nothing when
// the directory search is off or the term is too short; at most
// directory.max_results (and limit) entries.
func (s *Service) SearchUsers(ctx context.Context, term string, limit int) ([]DirectoryUser, error) {
	term = strings.TrimSpace(term)
	if !s.cfg.Directory.Enabled || len([]rune(term)) < s.cfg.Directory.MinTermLength {
		return nil, nil
	}
	limit = min(limit, s.cfg.Directory.MaxResults)
	c, err := s.dir.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	t := "*" + escapeSubstring(term) + "*"
	f := s.dir.userFilter("(|(" + s.cfg.LoginAttribute + "=" + t + ")(" + s.cfg.DisplayNameAttribute + "=" + t + ")(" + s.cfg.MailAttribute + "=" + t + "))")
	es, err := s.dir.search(c, f, limit)
	if err != nil {
		return nil, err
	}
	var out []DirectoryUser
	for _, e := range es {
		lp := e.Localpart
		if u, err := s.p.Store.LDAPUserByEntry(ctx, e.ID); err == nil {
			lp = u.Localpart
		} else if s.p.Auth.CheckLocalpart(lp) != nil {
			continue
		}
		out = append(out, DirectoryUser{UserID: s.p.Auth.UserID(lp), DisplayName: e.DisplayName})
	}
	return out, nil
}
