package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// Collision policies: what happens when the localpart a new identity maps
// to belongs to an existing account.
const (
	// CollisionError refuses the sign-in with a page naming the taken
	// localpart (the default: nobody silently gets another name).
	CollisionError = "error"
	// CollisionSuffix appends the smallest number from 2 that makes the
	// localpart free (alice → alice2).
	CollisionSuffix = "suffix"
)

// Params configure a Flow.
type Params struct {
	Store     store.Store
	Auth      *auth.Service
	Providers []Provider
	// BaseURL is the server's public base URL; its origin is always an
	// allowed redirect target (the web client it serves).
	BaseURL string
	// ClientOrigins are further origins (scheme://host[:port]) that
	// receive the login token without a confirmation page.
	ClientOrigins []string
	// LoginTokenTTL bounds how long a login token can be exchanged.
	LoginTokenTTL time.Duration
	// OnCollision is CollisionError or CollisionSuffix.
	OnCollision string
	Logger      *slog.Logger
	Now         func() time.Time
}

// Flow is the single sign-on flow.
type Flow struct {
	p         Params
	log       *slog.Logger
	providers map[string]Provider
	order     []string
	origins   map[string]bool

	mu      sync.Mutex
	pending map[string]*pending
	// createMu serialises first sign-ins, so one subject gets one account
	// when its first two sign-ins race.
	createMu sync.Mutex
}

// pending is a sign-in between the redirect to the provider and its answer.
type pending struct {
	idp         string
	redirectURL string // the client's, for a login
	uiaSession  string // for the m.login.sso UIA stage
	uiaUser     string
	memo        string
	expires     time.Time
}

// pendingTTL is how long a person may take at the provider.
const pendingTTL = 15 * time.Minute

// New returns a Flow.
func New(p Params) *Flow {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.LoginTokenTTL <= 0 {
		p.LoginTokenTTL = 2 * time.Minute
	}
	if p.OnCollision == "" {
		p.OnCollision = CollisionError
	}
	f := &Flow{p: p, log: p.Logger, providers: map[string]Provider{}, origins: map[string]bool{}, pending: map[string]*pending{}}
	for _, pr := range p.Providers {
		id := pr.Info().ID
		f.providers[id] = pr
		f.order = append(f.order, id)
	}
	if o, ok := Origin(p.BaseURL); ok {
		f.origins[o] = true
	}
	for _, c := range p.ClientOrigins {
		if o, ok := Origin(c); ok {
			f.origins[o] = true
		}
	}
	return f
}

// Origin is scheme://host[:port] of an absolute redirect URL, lower-cased
// and without a default port. Besides http and https, a native app's own
// scheme (io.element.elementx://...) is an origin too; schemes that run
// code or read local data where a link is opened (javascript:, data:,
// file:...) are not.
func Origin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "javascript", "data", "vbscript", "file", "blob", "about", "filesystem":
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	web := scheme == "http" || scheme == "https"
	if web && host == "" {
		return "", false
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// Providers lists the providers in configuration order.
func (f *Flow) Providers() []Info {
	out := make([]Info, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, f.providers[id].Info())
	}
	return out
}

// Enabled reports whether any provider is configured.
func (f *Flow) Enabled() bool { return f != nil && len(f.order) > 0 }

func newState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (f *Flow) put(state string, p *pending) {
	now := f.p.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range f.pending {
		if now.After(v.expires) {
			delete(f.pending, k)
		}
	}
	if len(f.pending) < 100_000 {
		f.pending[state] = p
	}
}

// take removes and returns a pending sign-in: a state works once.
func (f *Flow) take(state string) (*pending, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[state]
	delete(f.pending, state)
	if !ok || f.p.Now().After(p.expires) {
		return nil, false
	}
	return p, true
}

// Redirect is GET /login/sso/redirect[/{idpId}]?redirectUrl=: it sends the
// browser to the provider (with no idpId and several providers, to a page
// to choose one). Errors returned are Matrix errors for the API to write.
func (f *Flow) Redirect(w http.ResponseWriter, r *http.Request, idpID, redirectURL string) error {
	if !f.Enabled() {
		return mxerr.NotFoundf("Single sign-on is not configured on this server")
	}
	if redirectURL == "" {
		return mxerr.New(mxerr.MissingParam, "Missing redirectUrl").WithStatus(http.StatusBadRequest)
	}
	if _, ok := Origin(redirectURL); !ok {
		return mxerr.InvalidParamf("redirectUrl must be an absolute URL (http, https or an app's own scheme)")
	}
	if idpID == "" {
		if len(f.order) > 1 {
			links := make([]pageLink, 0, len(f.order))
			for _, id := range f.order {
				links = append(links, pageLink{
					Text: "Sign in with " + f.providers[id].Info().Name,
					URL:  r.URL.Path + "/" + url.PathEscape(id) + "?redirectUrl=" + url.QueryEscape(redirectURL),
				})
			}
			writePage(w, http.StatusOK, page{Title: "Choose how to sign in", Links: links})
			return nil
		}
		idpID = f.order[0]
	}
	if _, ok := f.providers[idpID]; !ok {
		return mxerr.NotFoundf("Unknown identity provider")
	}
	f.begin(w, r, idpID, &pending{redirectURL: redirectURL})
	return nil
}

// begin sends the browser to the provider, remembering p under a new state.
func (f *Flow) begin(w http.ResponseWriter, r *http.Request, idpID string, p *pending) {
	pr := f.providers[idpID]
	state := newState()
	to, memo, err := pr.Begin(r.Context(), state)
	if err != nil {
		f.log.Warn("single sign-on: cannot start", "idp", idpID, "err", err)
		writePage(w, http.StatusServiceUnavailable, page{Title: "Sign-in is unavailable",
			Text: pr.Info().Name + " cannot be reached right now. Please try again later."})
		return
	}
	p.idp, p.memo, p.expires = idpID, memo, f.p.Now().Add(pendingTTL)
	f.put(state, p)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// UIAFallback is GET /auth/m.login.sso/fallback/web?session=: a page that
// sends the user to sign in again at a provider, which completes the
// m.login.sso stage of that UIA session.
func (f *Flow) UIAFallback(w http.ResponseWriter, r *http.Request, session string) error {
	if !f.Enabled() {
		return mxerr.NotFoundf("Single sign-on is not configured on this server")
	}
	if session == "" {
		return mxerr.New(mxerr.MissingParam, "Missing session").WithStatus(http.StatusBadRequest)
	}
	user := f.p.Auth.UIASessionUser(session)
	if user == "" {
		writePage(w, http.StatusBadRequest, page{Title: "Unknown session", Text: "This confirmation has expired. Please start again in your client."})
		return nil
	}
	ids, err := f.p.Store.SSOIdentitiesOf(r.Context(), user)
	if err != nil {
		return err
	}
	var links []pageLink
	for _, id := range f.order {
		for _, l := range ids {
			if l.IdPID == id {
				links = append(links, pageLink{
					Text: "Continue with " + f.providers[id].Info().Name,
					URL:  PathPrefix + url.PathEscape(id) + "/auth?session=" + url.QueryEscape(session),
				})
				break
			}
		}
	}
	if len(links) == 0 {
		writePage(w, http.StatusForbidden, page{Title: "Cannot confirm", Text: "Your account is not linked to a single sign-on provider of this server."})
		return nil
	}
	writePage(w, http.StatusOK, page{Title: "Confirm it is you", Text: "To continue, sign in again as " + user + ".", Links: links})
	return nil
}

// HasLink reports whether userID has signed in through a configured
// provider (and so can complete m.login.sso).
func (f *Flow) HasLink(ctx context.Context, userID string) (bool, error) {
	if !f.Enabled() {
		return false, nil
	}
	ids, err := f.p.Store.SSOIdentitiesOf(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, l := range ids {
		if _, ok := f.providers[l.IdPID]; ok {
			return true, nil
		}
	}
	return false, nil
}

// Handler serves PathPrefix: {idp}/metadata, {idp}/callback and
// {idp}/auth (the UIA fallback's start).
func (f *Flow) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPrefix+"{idp}/metadata", func(w http.ResponseWriter, r *http.Request) {
		mp, ok := f.providers[r.PathValue("idp")].(MetadataPublisher)
		if !ok {
			http.NotFound(w, r)
			return
		}
		mp.ServeMetadata(w, r)
	})
	mux.HandleFunc(PathPrefix+"{idp}/callback", f.callback)
	mux.HandleFunc("GET "+PathPrefix+"{idp}/auth", f.uiaStart)
	return mux
}

func (f *Flow) uiaStart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("idp")
	if _, ok := f.providers[id]; !ok {
		writePage(w, http.StatusNotFound, page{Title: "Unknown identity provider"})
		return
	}
	session := r.URL.Query().Get("session")
	user := f.p.Auth.UIASessionUser(session)
	if user == "" {
		writePage(w, http.StatusBadRequest, page{Title: "Unknown session", Text: "This confirmation has expired. Please start again in your client."})
		return
	}
	f.begin(w, r, id, &pending{uiaSession: session, uiaUser: user})
}

// callback receives the provider's answer.
func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writePage(w, http.StatusMethodNotAllowed, page{Title: "Method not allowed"})
		return
	}
	id := r.PathValue("idp")
	pr, ok := f.providers[id]
	if !ok {
		writePage(w, http.StatusNotFound, page{Title: "Unknown identity provider"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	state := pr.State(r)
	p, ok := f.take(state)
	if !ok || p.idp != id {
		writePage(w, http.StatusBadRequest, page{Title: "Sign-in expired",
			Text: "This sign-in has expired or was already used. Please start again from your client."})
		return
	}
	ctx := r.Context()
	ident, err := pr.Finish(ctx, r, state, p.memo)
	if err != nil {
		f.log.Warn("single sign-on: answer refused", "idp", id, "err", err)
		switch {
		case errors.Is(err, ErrUnavailable):
			writePage(w, http.StatusServiceUnavailable, page{Title: "Sign-in is unavailable", Text: pr.Info().Name + " cannot be reached right now. Please try again later."})
		case errors.Is(err, ErrMissingAttribute):
			writePage(w, http.StatusForbidden, page{Title: "Sign-in refused", Text: "The identity provider did not send what this server needs to know about you (" + err.Error() + "). Please contact your administrator."})
		default:
			writePage(w, http.StatusForbidden, page{Title: "Sign-in refused", Text: "The answer of the identity provider could not be accepted. Please start again from your client."})
		}
		return
	}
	if p.uiaSession != "" {
		f.finishUIA(w, r, id, ident, p)
		return
	}
	userID, err := f.account(ctx, id, ident)
	if err != nil {
		f.accountError(w, id, err)
		return
	}
	tok, err := f.p.Auth.CreateLoginToken(ctx, userID, f.p.LoginTokenTTL)
	if err != nil {
		f.log.Error("single sign-on: store login token", "err", err)
		writePage(w, http.StatusInternalServerError, page{Title: "Something went wrong", Text: "Please try again."})
		return
	}
	f.log.Info("single sign-on", "idp", id, "user", userID)
	target := withParam(p.redirectURL, "loginToken", string(tok))
	if o, _ := Origin(p.redirectURL); f.origins[o] {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	// Another origin: the person decides, so a link crafted by someone
	// else cannot carry their login away unseen.
	host := p.redirectURL
	if u, err := url.Parse(p.redirectURL); err == nil {
		host = u.Host
	}
	writePage(w, http.StatusOK, page{
		Title: "Continue to " + host + "?",
		Text: "You signed in as " + userID + ". " + host + " is not a client this server knows; it will get access to your account. " +
			"Continue only if you started this sign-in yourself and trust " + host + ".",
		Links: []pageLink{{Text: "Continue to " + host, URL: target}},
	})
}

func (f *Flow) finishUIA(w http.ResponseWriter, r *http.Request, idp string, ident Identity, p *pending) {
	link, err := f.p.Store.SSOIdentity(r.Context(), idp, ident.Subject)
	if err != nil || link.UserID != p.uiaUser {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			f.log.Error("single sign-on: read link", "err", err)
		}
		writePage(w, http.StatusForbidden, page{Title: "Wrong account", Text: "You signed in as someone other than " + p.uiaUser + "."})
		return
	}
	if err := f.p.Auth.CompleteStage(p.uiaSession, p.uiaUser, "m.login.sso"); err != nil {
		writePage(w, http.StatusBadRequest, page{Title: "Unknown session", Text: "This confirmation has expired. Please start again in your client."})
		return
	}
	writePage(w, http.StatusOK, page{Title: "Confirmed", Text: "You may now close this window and return to your client.", AuthDone: true})
}

func withParam(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// Errors of account.
var (
	errCollision   = errors.New("identity: localpart taken")
	errDeactivated = errors.New("identity: account deactivated")
	errNoLocalpart = errors.New("identity: no usable localpart")
)

func (f *Flow) accountError(w http.ResponseWriter, idp string, err error) {
	f.log.Warn("single sign-on: no account", "idp", idp, "err", err)
	switch {
	case errors.Is(err, errCollision):
		writePage(w, http.StatusConflict, page{Title: "Account name taken", Text: err.Error() + ". Please contact your administrator."})
	case errors.Is(err, errDeactivated):
		writePage(w, http.StatusForbidden, page{Title: "Account deactivated", Text: "This account has been deactivated."})
	case errors.Is(err, errNoLocalpart):
		writePage(w, http.StatusForbidden, page{Title: "Sign-in refused", Text: err.Error() + ". Please contact your administrator."})
	default:
		writePage(w, http.StatusInternalServerError, page{Title: "Something went wrong", Text: "Please try again."})
	}
}

// account returns the Matrix user linked to ident at idp, creating the
// account and the link on the first sign-in.
func (f *Flow) account(ctx context.Context, idp string, ident Identity) (string, error) {
	if ident.Subject == "" {
		return "", fmt.Errorf("%w: the provider named no subject", errNoLocalpart)
	}
	if userID, err := f.linked(ctx, idp, ident.Subject); err == nil || !errors.Is(err, store.ErrNotFound) {
		return userID, err
	}
	f.createMu.Lock()
	defer f.createMu.Unlock()
	if userID, err := f.linked(ctx, idp, ident.Subject); err == nil || !errors.Is(err, store.ErrNotFound) {
		return userID, err
	}
	want := ident.Localpart
	if want == "" {
		want = ident.Subject
	}
	base := NormaliseLocalpart(want)
	if err := f.p.Auth.CheckLocalpart(base); err != nil {
		return "", fmt.Errorf("%w: %q does not make a valid user ID", errNoLocalpart, want)
	}
	lp := base
	var acc store.Account
	for n := 2; ; n++ {
		var err error
		acc, err = f.p.Auth.CreateAccount(ctx, lp, "", false)
		if err == nil {
			break
		}
		var me *mxerr.Error
		if !errors.As(err, &me) || me.Code != mxerr.UserInUse {
			return "", err
		}
		if f.p.OnCollision != CollisionSuffix {
			return "", fmt.Errorf("%w: the user ID %s belongs to another account", errCollision, f.p.Auth.UserID(base))
		}
		if n > 1000 {
			return "", fmt.Errorf("%w: no free user ID like %s", errCollision, f.p.Auth.UserID(base))
		}
		lp = fmt.Sprintf("%s%d", base, n)
		if f.p.Auth.CheckLocalpart(lp) != nil {
			return "", fmt.Errorf("%w: no free user ID like %s", errCollision, f.p.Auth.UserID(base))
		}
	}
	if ident.DisplayName != "" {
		if err := f.p.Store.SetDisplayName(ctx, acc.UserID, ident.DisplayName); err != nil {
			f.log.Warn("single sign-on: set display name", "user", acc.UserID, "err", err)
		}
	}
	err := f.p.Store.CreateSSOIdentity(ctx, store.SSOIdentity{
		IdPID: idp, Subject: ident.Subject, UserID: acc.UserID, Email: ident.Email, CreatedTS: f.p.Now().UnixMilli(),
	})
	if err != nil {
		return "", fmt.Errorf("link %s: %w", acc.UserID, err)
	}
	f.log.Info("single sign-on: account created", "idp", idp, "user", acc.UserID)
	return acc.UserID, nil
}

// linked returns the user linked to a subject, refusing deactivated ones.
func (f *Flow) linked(ctx context.Context, idp, subject string) (string, error) {
	link, err := f.p.Store.SSOIdentity(ctx, idp, subject)
	if err != nil {
		return "", err
	}
	lp, _ := f.p.Auth.Localpart(link.UserID)
	acc, err := f.p.Store.Account(ctx, lp)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("linked account %s is gone", link.UserID)
		}
		return "", err
	}
	if acc.Deactivated {
		return "", errDeactivated
	}
	return link.UserID, nil
}

// Run runs the providers' background work (SAML metadata refresh) until
// ctx ends, and returns when it has stopped.
func (f *Flow) Run(ctx context.Context) {
	if f == nil {
		return
	}
	var wg sync.WaitGroup
	for _, id := range f.order {
		if r, ok := f.providers[id].(interface{ Run(context.Context) }); ok {
			wg.Go(func() { r.Run(ctx) })
		}
	}
	wg.Wait()
}
