package clientapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// SSO is the single sign-on flow (homeserver/identity) as the API calls it.
type SSO interface {
	// IdentityProviders lists the configured providers (none: SSO off).
	IdentityProviders() []SSOProvider
	// Redirect answers GET /login/sso/redirect[/{idpId}] (a 302 to the
	// provider, or a page); an error is a Matrix error to write.
	Redirect(w http.ResponseWriter, r *http.Request, idpID, redirectURL string) error
	// UIAFallback answers GET /auth/m.login.sso/fallback/web.
	UIAFallback(w http.ResponseWriter, r *http.Request, session string) error
	// HasLink reports whether the user signed in through a provider.
	HasLink(ctx context.Context, userID string) (bool, error)
}

// SSOProvider is one identity provider as GET /login lists it.
type SSOProvider struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Icon string `json:"icon,omitempty"`
}

func (a *API) ssoRoutes() {
	a.handle(v3+"/login/sso/redirect", methods{http.MethodGet: a.ssoRedirect})
	a.handle(v3+"/login/sso/redirect/{idpId}", methods{http.MethodGet: a.ssoRedirect})
	a.handle(v3+"/auth/m.login.sso/fallback/web", methods{http.MethodGet: a.ssoFallback})
}

func (a *API) ssoEnabled() bool {
	return a.p.SSO != nil && len(a.p.SSO.IdentityProviders()) > 0
}

func (a *API) ssoRedirect(w http.ResponseWriter, r *http.Request) error {
	if !a.ssoEnabled() {
		return mxerr.NotFoundf("Single sign-on is not configured on this server")
	}
	if ok, wait := a.loginIP.Allow(a.clientIP(r)); !ok {
		return rateLimited(wait)
	}
	return a.p.SSO.Redirect(w, r, r.PathValue("idpId"), r.URL.Query().Get("redirectUrl"))
}

func (a *API) ssoFallback(w http.ResponseWriter, r *http.Request) error {
	if !a.ssoEnabled() {
		return mxerr.NotFoundf("Single sign-on is not configured on this server")
	}
	return a.p.SSO.UIAFallback(w, r, r.URL.Query().Get("session"))
}

// ssoLoginFlow is the m.login.sso entry of GET /login (nil: SSO off).
func (a *API) ssoLoginFlow() map[string]any {
	if !a.ssoEnabled() {
		return nil
	}
	return map[string]any{"type": "m.login.sso", "identity_providers": a.p.SSO.IdentityProviders()}
}

// interactiveUser runs user-interactive auth for a request of the
// logged-in user: the password stage, and m.login.sso for users who signed
// in through a provider (the only stage for those without a password,
// completed through the fallback page).
func (a *API) interactiveUser(ctx context.Context, raw json.RawMessage, bind string, dev store.Device) error {
	flows, stages := passwordFlows, a.passwordStage(dev)
	if a.ssoEnabled() {
		linked, err := a.p.SSO.HasLink(ctx, dev.UserID)
		if err != nil {
			return err
		}
		if linked {
			lp, _ := a.p.Auth.Localpart(dev.UserID)
			acc, err := a.p.Store.Account(ctx, lp)
			if err != nil {
				return err
			}
			flows = [][]string{{"m.login.sso"}}
			if acc.PasswordHash != "" {
				flows = [][]string{{"m.login.password"}, {"m.login.sso"}}
			}
			stages["m.login.sso"] = func(context.Context, auth.AuthDict) error {
				return mxerr.New(mxerr.Unauthorized, "Complete m.login.sso on its fallback page first").WithStatus(http.StatusUnauthorized)
			}
		}
	}
	return a.p.Auth.InteractiveAs(ctx, raw, bind, dev.UserID, flows, stages)
}

// SetSSO turns single sign-on on (the flow needs the auth service the
// API shares, so it is made after New).
func (a *API) SetSSO(s SSO) { a.p.SSO = s }
