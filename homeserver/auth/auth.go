// Package auth owns accounts, devices, access tokens and login flows. It
// checks passwords, issues and revokes tokens, and answers "who is this
// token?" for every request. It never lists rooms or reads content.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
	"github.com/salonhq/salon/internal/redact"
)

// Params are what a Service needs.
type Params struct {
	Store      store.Store
	ServerName string
	Logger     *slog.Logger
	Now        func() time.Time // time.Now when nil
	// MinPasswordLength refuses shorter new passwords (M_WEAK_PASSWORD).
	MinPasswordLength int
	// DevicesDeleted hears of devices logged out or deleted (their keys
	// went with them in the store); nil: nobody listens.
	DevicesDeleted func(ctx context.Context, userID string, deviceIDs []string)
	// RefreshableAccessTokenLifetime is how long an access token issued
	// with a refresh token lives (DefaultRefreshableAccessTokenLifetime
	// when zero).
	RefreshableAccessTokenLifetime time.Duration
}

// Service is the account and session authority.
type Service struct {
	p      Params
	hashes chan struct{} // bounds concurrent argon2 work (19 MiB each)

	// mu is read-locked by every authenticated request's look-up.
	mu    sync.RWMutex
	cache map[[32]byte]cached
	// nextRecheck is when the next batched re-check of the cached tokens
	// is due; rechecking is set while one runs.
	nextRecheck time.Time
	rechecking  atomic.Bool

	uiaOnce sync.Once
	uia     uiaStore

	delegate PasswordDelegate
}

// PasswordDelegate checks the passwords of people an outside directory
// (LDAP) knows, making their accounts at the first sign-in.
type PasswordDelegate interface {
	// CheckPassword returns the localpart of the account login and
	// password sign in to, or a Matrix error (M_FORBIDDEN for a wrong
	// name or password).
	CheckPassword(ctx context.Context, login, password string) (string, error)
	// Owns reports whether an account's password lives in the directory.
	Owns(ctx context.Context, localpart string) bool
}

// SetPasswordDelegate makes password sign-in of names without a local
// password ask d. Call it before serving.
func (s *Service) SetPasswordDelegate(d PasswordDelegate) { s.delegate = d }

type cached struct {
	dev store.Device
	// checked is when the store last said the token is live; expires is
	// the access token's own expiry (zero: none).
	checked, expires time.Time
}

// cacheTTL bounds how long a token revoked by another process (the salon
// CLI) can still be used by this one: a cached answer is used for at most
// cacheTTL after the store last confirmed it. Revocations by this process
// take effect at once.
const cacheTTL = 10 * time.Second

// Batched re-checks: every recheckEvery, the first request that finds one
// due confirms every cached token older than recheckAge in one query per
// 200 tokens, so that long-polling clients' tokens do not each cost a
// query when they reach cacheTTL (2,000 long-polls cost 400 queries a
// second, 6 % of the server's CPU, issue 24). recheckAge + recheckEvery
// stays below cacheTTL, so a token in use is confirmed before its answer
// expires; one not used for a while is checked alone as before.
const (
	recheckAge   = 5 * time.Second
	recheckEvery = 2 * time.Second
)

// lastSeenEvery is how often a device's last-seen time is written while
// it is used from the same address.
const lastSeenEvery = 5 * time.Minute

// New returns a Service.
func New(p Params) *Service {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{p: p, hashes: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), cache: map[[32]byte]cached{}}
}

// Session is a new login.
type Session struct {
	UserID      string
	DeviceID    string
	AccessToken redact.Secret
	// RefreshToken is set when the client asked for one; the access token
	// then expires in ExpiresInMS.
	RefreshToken redact.Secret
	ExpiresInMS  int64
}

// UserID returns the full user ID of a local localpart.
func (s *Service) UserID(localpart string) string { return "@" + localpart + ":" + s.p.ServerName }

// Localpart returns the localpart of a user ID given in full or as a bare
// localpart, and whether it belongs to this server.
func (s *Service) Localpart(user string) (string, bool) {
	if !strings.HasPrefix(user, "@") {
		return strings.ToLower(user), true
	}
	lp, server, ok := strings.Cut(user[1:], ":")
	if !ok || server != s.p.ServerName {
		return "", false
	}
	return lp, true
}

// ValidLocalpart is the grammar for new user IDs: lower-case letters,
// digits and ._=-/+, at most 255 characters in the full ID, and not "." or
// ".." (which name directories wherever a user ID becomes a path).
func (s *Service) ValidLocalpart(lp string) bool { return s.CheckLocalpart(lp) == nil }

// CheckLocalpart is ValidLocalpart as the M_INVALID_USERNAME that
// registration and `salon user create` answer.
func (s *Service) CheckLocalpart(lp string) error {
	if lp == "" || len(s.UserID(lp)) > 255 {
		return mxerr.New(mxerr.InvalidUsername, "User ID must be 1 to 255 characters long")
	}
	if lp == "." || lp == ".." {
		return mxerr.New(mxerr.InvalidUsername, "User ID may not be . or ..")
	}
	for i := 0; i < len(lp); i++ {
		c := lp[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=-/+", c) >= 0) {
			return mxerr.New(mxerr.InvalidUsername, "User ID may only contain a-z, 0-9, and ._=-/+")
		}
	}
	return nil
}

// HashPassword hashes pw, waiting its turn when many hashes run at once.
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashes }()
	return hashPassword(pw)
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckPasswordStrength refuses passwords shorter than the configured
// minimum.
func (s *Service) CheckPasswordStrength(pw string) error {
	if len([]rune(pw)) < s.p.MinPasswordLength {
		return mxerr.New(mxerr.WeakPassword, "Password must be at least %d characters", s.p.MinPasswordLength)
	}
	if len(pw) > 512 {
		return mxerr.New(mxerr.WeakPassword, "Password is too long")
	}
	return nil
}

var errForbiddenLogin = mxerr.Forbid("Invalid username or password")

// VerifyPassword checks a user's password. It returns the account, or
// M_FORBIDDEN (also for unknown users, so it does not tell which exist),
// or M_USER_DEACTIVATED.
func (s *Service) VerifyPassword(ctx context.Context, localpart, pw string) (store.Account, error) {
	acc, err := s.p.Store.Account(ctx, localpart)
	// Accounts with a local password sign in locally, whatever the
	// directory does; the others ask it.
	if s.delegate != nil && (errors.Is(err, store.ErrNotFound) || (err == nil && !acc.Deactivated && acc.PasswordHash == "")) {
		lp, err := s.delegate.CheckPassword(ctx, localpart, pw)
		if err != nil {
			return store.Account{}, err
		}
		return s.p.Store.Account(ctx, lp)
	}
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check, so timing does not tell
		// which accounts exist.
		_, _ = s.HashPassword(ctx, pw)
		return acc, errForbiddenLogin
	}
	if err != nil {
		return acc, err
	}
	if acc.Deactivated {
		return acc, mxerr.New(mxerr.UserDeactivated, "This account has been deactivated")
	}
	if acc.PasswordHash == "" {
		return acc, errForbiddenLogin
	}
	if err := s.acquire(ctx); err != nil {
		return acc, err
	}
	ok, err := checkPassword(acc.PasswordHash, pw)
	<-s.hashes
	if err != nil {
		s.p.Logger.Error("stored password hash unreadable", "user", acc.UserID, "err", err)
		return acc, errForbiddenLogin
	}
	if !ok {
		return acc, errForbiddenLogin
	}
	return acc, nil
}

// CreateAccount registers a local account.
func (s *Service) CreateAccount(ctx context.Context, localpart, password string, admin bool) (store.Account, error) {
	if err := s.CheckLocalpart(localpart); err != nil {
		return store.Account{}, err
	}
	hash := ""
	if password != "" {
		var err error
		if hash, err = s.HashPassword(ctx, password); err != nil {
			return store.Account{}, err
		}
	}
	acc := store.Account{
		Localpart:    localpart,
		UserID:       s.UserID(localpart),
		PasswordHash: hash,
		Admin:        admin,
		CreatedTS:    s.p.Now().UnixMilli(),
	}
	err := s.p.Store.CreateAccount(ctx, acc, localpart)
	if errors.Is(err, store.ErrExists) {
		return acc, mxerr.New(mxerr.UserInUse, "User ID already taken")
	}
	return acc, err
}

// NewSession logs a user in on a device: an existing device ID gets a new
// token (its old one stops working), an empty one gets a new device.
func (s *Service) NewSession(ctx context.Context, userID, deviceID, displayName, ip string) (Session, error) {
	if deviceID == "" {
		deviceID = newDeviceID()
	}
	if old, err := s.p.Store.Device(ctx, userID, deviceID); err == nil {
		s.forget(old.TokenHash)
	}
	tok := newToken("salon_")
	now := s.p.Now().UnixMilli()
	err := s.p.Store.UpsertDevice(ctx, store.Device{
		UserID: userID, DeviceID: deviceID, DisplayName: displayName,
		TokenHash: HashToken(tok), LastSeenIP: ip, LastSeenTS: now, CreatedTS: now,
	})
	if err != nil {
		return Session{}, err
	}
	return Session{UserID: userID, DeviceID: deviceID, AccessToken: tok}, nil
}

// Authenticate returns the device an access token belongs to, or
// M_UNKNOWN_TOKEN.
func (s *Service) Authenticate(ctx context.Context, token redact.Secret, ip string) (store.Device, error) {
	if token == "" {
		return store.Device{}, mxerr.New(mxerr.MissingToken, "Missing access token")
	}
	h := HashToken(token)
	key := [32]byte(h)
	now := s.p.Now()
	s.mu.RLock()
	c, ok := s.cache[key]
	recheck := ok && !now.Before(s.nextRecheck)
	s.mu.RUnlock()
	if ok && now.Sub(c.checked) < cacheTTL && (c.expires.IsZero() || now.Before(c.expires)) {
		if recheck {
			s.recheckCached(ctx, now)
		}
		if s.seen(c.dev, ip, now) {
			return s.touch(ctx, key, c.dev, ip, now), nil
		}
		return c.dev, nil
	}
	dev, err := s.p.Store.DeviceByToken(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return dev, mxerr.New(mxerr.UnknownToken, "Unknown or expired access token").With("soft_logout", false)
	}
	if err != nil {
		return dev, err
	}
	expires, err := s.accessExpiry(ctx, h)
	if err != nil {
		return dev, err
	}
	if !expires.IsZero() && !now.Before(expires) {
		return store.Device{}, mxerr.New(mxerr.UnknownToken, "Access token has expired").With("soft_logout", true)
	}
	s.mu.Lock()
	if len(s.cache) > 100_000 {
		clear(s.cache)
	}
	s.cache[key] = cached{dev: dev, checked: now, expires: expires}
	s.mu.Unlock()
	if s.seen(dev, ip, now) {
		return s.touch(ctx, key, dev, ip, now), nil
	}
	return dev, nil
}

// seen reports whether a use of dev from ip at now is worth recording:
// last-seen is written every lastSeenEvery while a device is used, and
// when its address changes (at most every cacheTTL, for a client whose
// requests alternate between two addresses).
func (s *Service) seen(dev store.Device, ip string, now time.Time) bool {
	age := now.UnixMilli() - dev.LastSeenTS
	return age > lastSeenEvery.Milliseconds() || dev.LastSeenIP != ip && age >= cacheTTL.Milliseconds()
}

// touch records a device's last use and returns it as recorded, updating
// the cached answer if it is still there.
func (s *Service) touch(ctx context.Context, key [32]byte, dev store.Device, ip string, now time.Time) store.Device {
	if err := s.p.Store.TouchDevice(ctx, dev.UserID, dev.DeviceID, ip, now.UnixMilli()); err != nil {
		s.p.Logger.Warn("record device last seen", "err", err)
	}
	dev.LastSeenIP, dev.LastSeenTS = ip, now.UnixMilli()
	s.mu.Lock()
	if c, ok := s.cache[key]; ok && c.dev.UserID == dev.UserID && c.dev.DeviceID == dev.DeviceID {
		c.dev.LastSeenIP, c.dev.LastSeenTS = ip, dev.LastSeenTS
		s.cache[key] = c
	}
	s.mu.Unlock()
	return dev
}

// recheckCached confirms, in batched queries, the cached tokens the store
// last confirmed recheckAge or more before now: those still held by a
// device are kept for another cacheTTL from now, the others are dropped.
// One request at a time runs it; a failure leaves the answers to expire
// and be checked one by one.
func (s *Service) recheckCached(ctx context.Context, now time.Time) {
	if !s.rechecking.CompareAndSwap(false, true) {
		return
	}
	defer s.rechecking.Store(false)
	s.mu.Lock()
	s.nextRecheck = now.Add(recheckEvery)
	s.mu.Unlock()
	// Every request reads the cache: it is held for reading while the
	// due tokens are listed, and for writing a slice at a time after.
	var due [][32]byte
	s.mu.RLock()
	for k, c := range s.cache {
		if now.Sub(c.checked) >= recheckAge {
			due = append(due, k)
		}
	}
	s.mu.RUnlock()
	if len(due) == 0 {
		return
	}
	hashes := make([][]byte, len(due))
	for i := range due {
		hashes[i] = due[i][:]
	}
	devs, err := s.p.Store.DevicesByTokens(ctx, hashes)
	if err != nil {
		s.p.Logger.Warn("re-check access tokens", "err", err)
		return
	}
	live := make(map[[32]byte]store.Device, len(devs))
	for _, d := range devs {
		if len(d.TokenHash) == 32 {
			live[[32]byte(d.TokenHash)] = d
		}
	}
	for len(due) > 0 {
		part := due[:min(len(due), 256)]
		due = due[len(part):]
		s.mu.Lock()
		for _, k := range part {
			c, ok := s.cache[k]
			if !ok || !c.checked.Before(now) {
				// Forgotten meanwhile (a logout here), or answered anew.
				continue
			}
			d, ok := live[k]
			if !ok || d.UserID != c.dev.UserID || d.DeviceID != c.dev.DeviceID {
				delete(s.cache, k)
				continue
			}
			c.dev, c.checked = d, now
			s.cache[k] = c
		}
		s.mu.Unlock()
	}
}

func (s *Service) forget(tokenHash []byte) {
	if len(tokenHash) != 32 {
		return
	}
	s.mu.Lock()
	delete(s.cache, [32]byte(tokenHash))
	s.mu.Unlock()
}

func (s *Service) forgetUser(userID string) {
	s.mu.Lock()
	for k, c := range s.cache {
		if c.dev.UserID == userID {
			delete(s.cache, k)
		}
	}
	s.mu.Unlock()
}

// DeleteDevices logs out the listed devices (ids nil: all but keep).
func (s *Service) DeleteDevices(ctx context.Context, userID string, ids []string, keep string) error {
	deleted, err := s.p.Store.DeleteDevices(ctx, userID, ids, keep)
	s.forgetUser(userID)
	if err == nil && len(deleted) > 0 && s.p.DevicesDeleted != nil {
		s.p.DevicesDeleted(ctx, userID, deleted)
	}
	return err
}

// SetPassword changes a password and, when logoutOthers, logs out every
// device but keep.
func (s *Service) SetPassword(ctx context.Context, localpart, pw string, logoutOthers bool, keep string) error {
	if s.delegate != nil && s.delegate.Owns(ctx, localpart) {
		return mxerr.Forbid("This account's password is kept in the directory (LDAP); change it there")
	}
	if err := s.CheckPasswordStrength(pw); err != nil {
		return err
	}
	hash, err := s.HashPassword(ctx, pw)
	if err != nil {
		return err
	}
	if err := s.p.Store.SetPasswordHash(ctx, localpart, hash); err != nil {
		return err
	}
	if logoutOthers {
		return s.DeleteDevices(ctx, s.UserID(localpart), nil, keep)
	}
	return nil
}

// Deactivate closes an account for good: its devices are logged out, its
// password and profile cleared, and its user ID never given out again.
func (s *Service) Deactivate(ctx context.Context, localpart string) error {
	devs, _ := s.p.Store.Devices(ctx, s.UserID(localpart))
	err := s.p.Store.DeactivateAccount(ctx, localpart)
	s.forgetUser(s.UserID(localpart))
	if err == nil && len(devs) > 0 && s.p.DevicesDeleted != nil {
		ids := make([]string, len(devs))
		for i, d := range devs {
			ids[i] = d.DeviceID
		}
		s.p.DevicesDeleted(ctx, s.UserID(localpart), ids)
	}
	return err
}

// CreateLoginToken issues a single-use m.login.token for userID (used by
// SSO to hand a login to the client).
func (s *Service) CreateLoginToken(ctx context.Context, userID string, ttl time.Duration) (redact.Secret, error) {
	tok := newToken("salon_lt_")
	return tok, s.p.Store.CreateLoginToken(ctx, HashToken(tok), userID, s.p.Now().Add(ttl).UnixMilli())
}

// ConsumeLoginToken redeems an m.login.token, once.
func (s *Service) ConsumeLoginToken(ctx context.Context, token string) (string, error) {
	u, err := s.p.Store.ConsumeLoginToken(ctx, HashToken(token), s.p.Now().UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		return "", mxerr.Forbid("Invalid or expired login token")
	}
	return u, err
}

// CreateOpenIDToken issues an OpenID token (stored hashed) that proves to
// a third party — Salon's own JWT service, or a widget — who the user is.
func (s *Service) CreateOpenIDToken(ctx context.Context, userID string, ttl time.Duration) (redact.Secret, error) {
	tok := newToken("salon_oid_")
	return tok, s.p.Store.CreateOpenIDToken(ctx, HashToken(tok), userID, s.p.Now().Add(ttl).UnixMilli())
}

// OpenIDUser returns the user an unexpired OpenID token belongs to, or
// M_UNKNOWN_TOKEN.
func (s *Service) OpenIDUser(ctx context.Context, token string) (string, error) {
	u, err := s.p.Store.OpenIDToken(ctx, HashToken(token), s.p.Now().UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		return "", mxerr.New(mxerr.UnknownToken, "Unknown or expired OpenID token")
	}
	return u, err
}
