package clientapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/salonhq/salon/homeserver/auth"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

type identifier struct {
	Type string `json:"type"`
	User string `json:"user"`
}

// userFromIdentifier returns the localpart an m.id.user identifier (or the
// deprecated "user" field) names.
func (a *API) userFromIdentifier(raw json.RawMessage, legacy string) (string, error) {
	user := legacy
	if len(raw) > 0 && string(raw) != "null" {
		var id identifier
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", mxerr.BadJSONf("identifier must be an object")
		}
		if id.Type != "m.id.user" {
			return "", mxerr.New(mxerr.Unknown, "Unsupported identifier type %q", id.Type).WithStatus(http.StatusBadRequest)
		}
		user = id.User
	}
	if user == "" {
		return "", missing("identifier.user")
	}
	lp, ok := a.p.Auth.Localpart(user)
	if !ok {
		return "", mxerr.Forbid("Invalid username or password")
	}
	// Login folds the localpart to lower case, full ID or not (spec:
	// "Matrix User IDs": servers should treat the localpart case-
	// insensitively at login); Salon creates only lower-case localparts.
	return strings.ToLower(lp), nil
}

func (a *API) loginFlows(w http.ResponseWriter, r *http.Request) error {
	flows := []map[string]any{
		{"type": "m.login.password"},
		{"type": "m.login.token"},
	}
	if f := a.ssoLoginFlow(); f != nil {
		flows = append(flows, f)
	}
	return reply(w, map[string]any{"flows": flows})
}

type loginRequest struct {
	Type                     string          `json:"type"`
	Identifier               json.RawMessage `json:"identifier"`
	User                     string          `json:"user"`
	Password                 string          `json:"password"`
	Token                    string          `json:"token"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
	RefreshToken             bool            `json:"refresh_token"`
}

type loginResponse struct {
	UserID      string         `json:"user_id"`
	AccessToken string         `json:"access_token"`
	DeviceID    string         `json:"device_id"`
	HomeServer  string         `json:"home_server"`
	WellKnown   map[string]any `json:"well_known"`
	// RefreshToken and ExpiresInMS answer refresh_token: true.
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
}

// loginResponse is where a new session's tokens leave their redacting
// type: the body is the one place they are sent.
func (a *API) loginResponse(s auth.Session) loginResponse {
	return loginResponse{
		UserID: s.UserID, AccessToken: string(s.AccessToken), DeviceID: s.DeviceID, HomeServer: a.p.Config.ServerName,
		WellKnown:    map[string]any{"m.homeserver": map[string]string{"base_url": a.p.Config.BaseURL}},
		RefreshToken: string(s.RefreshToken), ExpiresInMS: s.ExpiresInMS,
	}
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	ip := a.clientIP(r)
	if ok, wait := a.loginIP.Allow(ip); !ok {
		return rateLimited(wait)
	}
	var req loginRequest
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if err := checkDeviceFields(req.DeviceID, req.InitialDeviceDisplayName); err != nil {
		return err
	}
	ctx := r.Context()
	var userID string
	switch req.Type {
	case "m.login.password":
		lp, err := a.userFromIdentifier(req.Identifier, req.User)
		if err != nil {
			return err
		}
		// Failures count per account and address: guessing from one
		// address locks that address out of the account, not the owner
		// logging in from another.
		key := lp + "\x00" + ip
		if ok, wait := a.loginAccount.Allow(key); !ok {
			return rateLimited(wait)
		}
		acc, err := a.p.Auth.VerifyPassword(ctx, lp, req.Password)
		if err != nil {
			return err
		}
		a.loginAccount.Reset(key)
		userID = acc.UserID
	case "m.login.token":
		if req.Token == "" {
			return missing("token")
		}
		u, err := a.p.Auth.ConsumeLoginToken(ctx, req.Token)
		if err != nil {
			return err
		}
		userID = u
	case "":
		return missing("type")
	default:
		return mxerr.New(mxerr.Unknown, "Unknown login type %q", req.Type).WithStatus(http.StatusBadRequest)
	}
	s, err := a.p.Auth.NewSession(ctx, userID, req.DeviceID, req.InitialDeviceDisplayName, ip)
	if err == nil && req.RefreshToken {
		s, err = a.p.Auth.WithRefreshToken(ctx, s)
	}
	if err != nil {
		return err
	}
	return reply(w, a.loginResponse(s))
}

func checkDeviceFields(deviceID, name string) error {
	if len(deviceID) > 255 || strings.ContainsAny(deviceID, "\x00\n\r") {
		return mxerr.InvalidParamf("device_id is too long or has control characters")
	}
	if len(name) > 1000 {
		return mxerr.InvalidParamf("initial_device_display_name is too long")
	}
	return nil
}

type registerRequest struct {
	Auth                     json.RawMessage `json:"auth"`
	Username                 string          `json:"username"`
	Password                 string          `json:"password"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
	InhibitLogin             bool            `json:"inhibit_login"`
	RefreshToken             bool            `json:"refresh_token"`
}

func (a *API) registrationFlows() [][]string {
	if a.p.Config.RegistrationMode == "token" {
		return [][]string{{"m.login.registration_token"}}
	}
	return [][]string{{"m.login.dummy"}}
}

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	if kind := r.URL.Query().Get("kind"); kind == "guest" {
		return mxerr.New(mxerr.GuestAccessForbid, "Guest access is disabled")
	} else if kind != "" && kind != "user" {
		return mxerr.InvalidParamf("kind must be user or guest")
	}
	if a.p.Config.RegistrationMode == "closed" {
		return mxerr.Forbid("Registration is closed on this server")
	}
	ip := a.clientIP(r)
	if ok, wait := a.registerIP.Allow(ip); !ok {
		return rateLimited(wait)
	}
	var req registerRequest
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if err := checkDeviceFields(req.DeviceID, req.InitialDeviceDisplayName); err != nil {
		return err
	}
	ctx := r.Context()
	lp := strings.ToLower(req.Username)
	if lp == "" {
		lp = "user" + strings.ToLower(auth.RandomID(8))
	}
	if err := a.p.Auth.CheckLocalpart(lp); err != nil {
		return err
	}
	if _, err := a.p.Store.Account(ctx, lp); err == nil {
		return mxerr.New(mxerr.UserInUse, "User ID already taken")
	}
	if req.Password != "" {
		if err := a.p.Auth.CheckPasswordStrength(req.Password); err != nil {
			return err
		}
	}
	err := a.p.Auth.Interactive(ctx, req.Auth, "register", a.registrationFlows(), map[string]auth.StageChecker{
		"m.login.dummy": func(context.Context, auth.AuthDict) error { return nil },
		"m.login.registration_token": func(_ context.Context, d auth.AuthDict) error {
			if a.p.Config.RegistrationMode != "token" || !a.tokenMatches(d.Token) {
				return mxerr.New(mxerr.Unauthorized, "Invalid registration token")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	acc, err := a.p.Auth.CreateAccount(ctx, lp, req.Password, false)
	if err != nil {
		return err
	}
	a.log.Info("account registered", "user", acc.UserID)
	if req.InhibitLogin {
		return reply(w, map[string]string{"user_id": acc.UserID, "home_server": a.p.Config.ServerName})
	}
	s, err := a.p.Auth.NewSession(ctx, acc.UserID, req.DeviceID, req.InitialDeviceDisplayName, ip)
	if err == nil && req.RefreshToken {
		s, err = a.p.Auth.WithRefreshToken(ctx, s)
	}
	if err != nil {
		return err
	}
	return reply(w, a.loginResponse(s))
}

func (a *API) tokenMatches(t string) bool {
	want := a.p.Config.RegistrationToken
	return want != "" && subtle.ConstantTimeCompare([]byte(t), []byte(want)) == 1
}

func (a *API) registrationTokenValidity(w http.ResponseWriter, r *http.Request) error {
	if a.p.Config.RegistrationMode != "token" {
		return mxerr.Forbid("Registration tokens are not used on this server")
	}
	ip := a.clientIP(r)
	if ok, wait := a.registerIP.Allow(ip); !ok {
		return rateLimited(wait)
	}
	t := r.URL.Query().Get("token")
	if t == "" {
		return missing("token")
	}
	return reply(w, map[string]bool{"valid": a.tokenMatches(t)})
}

func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request) error {
	if a.p.Config.RegistrationMode == "closed" {
		return mxerr.Forbid("Registration is closed on this server")
	}
	if ok, wait := a.registerIP.Allow(a.clientIP(r)); !ok {
		return rateLimited(wait)
	}
	lp := strings.ToLower(r.URL.Query().Get("username"))
	if lp == "" {
		return missing("username")
	}
	if err := a.p.Auth.CheckLocalpart(lp); err != nil {
		return err
	}
	_, err := a.p.Store.Account(r.Context(), lp)
	switch {
	case err == nil:
		return mxerr.New(mxerr.UserInUse, "User ID already taken")
	case errors.Is(err, store.ErrNotFound):
		return reply(w, map[string]bool{"available": true})
	}
	return err
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if err := a.p.Auth.DeleteDevices(r.Context(), dev.UserID, []string{dev.DeviceID}, ""); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) logoutAll(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	if err := a.p.Auth.DeleteDevices(r.Context(), dev.UserID, nil, ""); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	return reply(w, map[string]any{"user_id": dev.UserID, "device_id": dev.DeviceID, "is_guest": false})
}

// passwordStage is the m.login.password UIA stage for the logged-in user.
func (a *API) passwordStage(dev store.Device) map[string]auth.StageChecker {
	return map[string]auth.StageChecker{
		"m.login.password": func(ctx context.Context, d auth.AuthDict) error {
			lp, err := a.userFromIdentifier(d.Identifier, d.User)
			if err != nil {
				return err
			}
			if a.p.Auth.UserID(lp) != dev.UserID {
				// Not a failed stage to retry but someone else's
				// credentials: 403 outright (auth.Interactive).
				return mxerr.Forbid("Identifier does not match the logged-in user").WithStatus(http.StatusForbidden)
			}
			if ok, wait := a.loginAccount.Allow(lp); !ok {
				return rateLimited(wait)
			}
			acc, err := a.p.Auth.VerifyPassword(ctx, lp, d.Password)
			if err == nil && acc.UserID != dev.UserID {
				// A directory (LDAP) sign-in can name another account.
				return mxerr.Forbid("Identifier does not match the logged-in user")
			}
			return err
		},
	}
}

var passwordFlows = [][]string{{"m.login.password"}}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Auth          json.RawMessage `json:"auth"`
		NewPassword   string          `json:"new_password"`
		LogoutDevices *bool           `json:"logout_devices"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.NewPassword == "" {
		return missing("new_password")
	}
	if err := a.p.Auth.CheckPasswordStrength(req.NewPassword); err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.interactiveUser(ctx, req.Auth, "password:"+dev.UserID, dev); err != nil {
		return err
	}
	lp, _ := a.p.Auth.Localpart(dev.UserID)
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	if err := a.p.Auth.SetPassword(ctx, lp, req.NewPassword, logout, dev.DeviceID); err != nil {
		return err
	}
	return reply(w, empty)
}

func (a *API) deactivate(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := a.decode(r, &req, true); err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.interactiveUser(ctx, req.Auth, "deactivate:"+dev.UserID, dev); err != nil {
		return err
	}
	lp, _ := a.p.Auth.Localpart(dev.UserID)
	if err := a.p.Auth.Deactivate(ctx, lp); err != nil {
		return err
	}
	a.log.Info("account deactivated by its owner", "user", dev.UserID)
	if a.p.Deactivated != nil {
		a.p.Deactivated(ctx, dev.UserID)
	}
	return reply(w, map[string]string{"id_server_unbind_result": "no-support"})
}
