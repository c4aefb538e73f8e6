package clientapi

import (
	"net/http"
)

// POST /refresh trades a refresh token for new tokens (no access token
// needed: the old one may have expired).
func (a *API) refreshRoutes() {
	a.handle(v3+"/refresh", methods{http.MethodPost: a.refresh})
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RefreshToken *string `json:"refresh_token"`
	}
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	if req.RefreshToken == nil {
		return missing("refresh_token")
	}
	s, err := a.p.Auth.Refresh(r.Context(), *req.RefreshToken)
	if err != nil {
		return err
	}
	return reply(w, struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresInMS  int64  `json:"expires_in_ms"`
	}{string(s.AccessToken), string(s.RefreshToken), s.ExpiresInMS})
}
