package clientapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// ProfileListener hears about profile changes (the rooms layer updates the
// user's membership events with them).
type ProfileListener func(ctx context.Context, userID string, p store.Profile)

func (a *API) profileOf(ctx context.Context, userID, field string) (store.Profile, error) {
	if !events.ValidUserID(userID) {
		return store.Profile{}, mxerr.InvalidParamf("Invalid user ID")
	}
	if !strings.HasSuffix(userID, ":"+a.p.Config.ServerName) {
		if a.p.RemoteProfile == nil {
			return store.Profile{}, mxerr.NotFoundf("Profile not found")
		}
		return a.p.RemoteProfile(ctx, userID, field)
	}
	p, err := a.p.Store.Profile(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return p, mxerr.NotFoundf("Profile not found")
	}
	return p, err
}

func profileJSON(p store.Profile) map[string]string {
	out := map[string]string{}
	if p.DisplayName != "" {
		out["displayname"] = p.DisplayName
	}
	if p.AvatarURL != "" {
		out["avatar_url"] = p.AvatarURL
	}
	return out
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request) error {
	p, err := a.profileOf(r.Context(), r.PathValue("userId"), "")
	if err != nil {
		return err
	}
	return reply(w, profileJSON(p))
}

func (a *API) getProfileField(w http.ResponseWriter, r *http.Request) error {
	field := r.PathValue("field")
	if field != "displayname" && field != "avatar_url" {
		return mxerr.New(mxerr.Unrecognized, "Unknown profile field")
	}
	p, err := a.profileOf(r.Context(), r.PathValue("userId"), field)
	if err != nil {
		return err
	}
	v, ok := profileJSON(p)[field]
	if !ok {
		return mxerr.NotFoundf("Profile field not set")
	}
	return reply(w, map[string]string{field: v})
}

func (a *API) putProfileField(w http.ResponseWriter, r *http.Request, dev store.Device) error {
	field := r.PathValue("field")
	if field != "displayname" && field != "avatar_url" {
		return mxerr.New(mxerr.Unrecognized, "Unknown profile field")
	}
	userID := r.PathValue("userId")
	if userID != dev.UserID {
		return mxerr.Forbid("You can only change your own profile")
	}
	var req map[string]any
	if err := a.decode(r, &req, false); err != nil {
		return err
	}
	raw, present := req[field]
	v, isString := raw.(string)
	if present && raw != nil && !isString {
		return mxerr.BadJSONf("%s must be a string", field)
	}
	ctx := r.Context()
	switch field {
	case "displayname":
		if len(v) > 256 || strings.ContainsAny(v, "\x00") {
			return mxerr.InvalidParamf("displayname must be at most 256 bytes")
		}
		if err := a.p.Store.SetDisplayName(ctx, userID, v); err != nil {
			return err
		}
	case "avatar_url":
		// The spec sets no error for an avatar_url that is not an mxc://
		// URI, and servers (Synapse) keep such strings; clients show only
		// mxc:// ones. A URL of another scheme is still refused: a client
		// that fetched it would tell that host its address.
		if len(v) > 1000 || strings.ContainsAny(v, "\x00") {
			return mxerr.InvalidParamf("avatar_url must be at most 1000 bytes")
		}
		if scheme, _, ok := strings.Cut(v, "://"); ok && scheme != "mxc" {
			return mxerr.InvalidParamf("avatar_url must be an mxc:// URI")
		}
		if err := a.p.Store.SetAvatarURL(ctx, userID, v); err != nil {
			return err
		}
	}
	if a.p.ProfileChanged != nil {
		if p, err := a.p.Store.Profile(ctx, userID); err == nil {
			a.p.ProfileChanged(ctx, userID, p)
		}
	}
	return reply(w, empty)
}
