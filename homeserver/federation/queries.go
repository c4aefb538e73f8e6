package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/keys"
	"github.com/salonhq/salon/homeserver/store"
	"github.com/salonhq/salon/internal/mxerr"
)

// isLocal reports whether a user or room alias belongs to this server.
func (s *Service) isLocal(id string) bool {
	_, server, ok := strings.Cut(id, ":")
	return ok && server == s.p.ServerName
}

func (s *Service) queryProfile(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	userID := r.URL.Query().Get("user_id")
	field := r.URL.Query().Get("field")
	if !events.ValidUserID(userID) {
		return mxerr.InvalidParamf("Invalid user_id")
	}
	if field != "" && field != "displayname" && field != "avatar_url" {
		return mxerr.InvalidParamf("Unknown profile field")
	}
	if !s.isLocal(userID) {
		return mxerr.NotFoundf("Not a user of this server")
	}
	p, err := s.p.Store.Profile(r.Context(), userID)
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("Profile not found")
	}
	if err != nil {
		return err
	}
	out := map[string]string{}
	if p.DisplayName != "" && field != "avatar_url" {
		out["displayname"] = p.DisplayName
	}
	if p.AvatarURL != "" && field != "displayname" {
		out["avatar_url"] = p.AvatarURL
	}
	mxerr.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) queryDirectory(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	alias := r.URL.Query().Get("room_alias")
	if !events.ValidRoomAlias(alias) {
		return mxerr.InvalidParamf("Invalid room_alias")
	}
	if !s.isLocal(alias) {
		return mxerr.NotFoundf("Not an alias of this server")
	}
	roomID, _, err := s.p.Store.Alias(r.Context(), alias)
	if errors.Is(err, store.ErrNotFound) {
		return mxerr.NotFoundf("Room alias not found")
	}
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": []string{s.p.ServerName}})
	return nil
}

func (s *Service) userDevices(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	userID := r.PathValue("userId")
	if !events.ValidUserID(userID) {
		return mxerr.InvalidParamf("Invalid user ID")
	}
	if !s.isLocal(userID) {
		return mxerr.NotFoundf("Not a user of this server")
	}
	d, err := s.p.Keys.UserDevices(r.Context(), userID)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, d)
	return nil
}

func (s *Service) userKeysQuery(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if body == nil || json.Unmarshal(body, &req) != nil {
		return mxerr.BadJSONf("device_keys must map user IDs to lists of device IDs")
	}
	for u := range req.DeviceKeys {
		if !s.isLocal(u) {
			// Only this server's users are answered for.
			delete(req.DeviceKeys, u)
		}
	}
	res, err := s.p.Keys.Query(r.Context(), "", req.DeviceKeys)
	if err != nil {
		return err
	}
	// The Server-Server answer has no user-signing keys and no failures.
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{
		"device_keys": res.DeviceKeys, "master_keys": res.MasterKeys, "self_signing_keys": res.SelfSigningKeys,
	})
	return nil
}

func (s *Service) userKeysClaim(w http.ResponseWriter, r *http.Request, origin string, body []byte) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if body == nil || json.Unmarshal(body, &req) != nil {
		return mxerr.BadJSONf("one_time_keys must map user IDs to devices to algorithms")
	}
	for u := range req.OneTimeKeys {
		if !s.isLocal(u) {
			delete(req.OneTimeKeys, u)
		}
	}
	res, err := s.p.Keys.Claim(r.Context(), req.OneTimeKeys)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"one_time_keys": res.OneTimeKeys})
	return nil
}

// queryTimeout bounds a query a local client waits for.
const queryTimeout = 15 * time.Second

// Profile asks the user's server for their profile (field "" for both).
// A missing user is mxerr M_NOT_FOUND; an unreachable server M_UNKNOWN 502.
func (s *Service) Profile(ctx context.Context, userID, field string) (store.Profile, error) {
	if !s.enabled {
		return store.Profile{}, mxerr.NotFoundf("Profile not found (federation is off)")
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	q := url.Values{"user_id": {userID}}
	if field != "" {
		q.Set("field", field)
	}
	var out struct {
		DisplayName string `json:"displayname"`
		AvatarURL   string `json:"avatar_url"`
	}
	if err := s.Client.Get(ctx, events.ServerOf(userID), "/_matrix/federation/v1/query/profile", q, &out); err != nil {
		return store.Profile{}, remoteToMatrix(err)
	}
	return store.Profile{DisplayName: out.DisplayName, AvatarURL: out.AvatarURL}, nil
}

// Directory asks the alias's server which room it names and which
// servers are in it.
func (s *Service) Directory(ctx context.Context, alias string) (string, []string, error) {
	if !s.enabled {
		return "", nil, mxerr.NotFoundf("Room alias not found (federation is off)")
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out struct {
		RoomID  string   `json:"room_id"`
		Servers []string `json:"servers"`
	}
	if err := s.Client.Get(ctx, events.ServerOf(alias), "/_matrix/federation/v1/query/directory", url.Values{"room_alias": {alias}}, &out); err != nil {
		return "", nil, remoteToMatrix(err)
	}
	if !events.ValidRoomID(out.RoomID) {
		return "", nil, mxerr.New(mxerr.Unknown, "The remote server answered no room ID").WithStatus(http.StatusBadGateway)
	}
	if out.Servers == nil {
		out.Servers = []string{}
	}
	return out.RoomID, out.Servers, nil
}

// QueryKeys implements keys.Remote: /user/keys/query at server.
func (s *Service) QueryKeys(ctx context.Context, server string, want map[string][]string) (*keys.QueryResult, error) {
	if !s.enabled {
		return nil, ErrDisabled
	}
	for u, devs := range want {
		if devs == nil {
			want[u] = []string{}
		}
	}
	var out keys.QueryResult
	if err := s.Client.Post(ctx, server, "/_matrix/federation/v1/user/keys/query", map[string]any{"device_keys": want}, &out); err != nil {
		return nil, err
	}
	// Keep only what server may speak for: its own users, and device
	// keys that name the user and device they are filed under.
	for u, devs := range out.DeviceKeys {
		if events.ServerOf(u) != server {
			delete(out.DeviceKeys, u)
			continue
		}
		for d, raw := range devs {
			var k struct {
				UserID   string `json:"user_id"`
				DeviceID string `json:"device_id"`
			}
			if json.Unmarshal(raw, &k) != nil || k.UserID != u || k.DeviceID != d {
				s.log.Info("remote key query: device keys filed under another device dropped", "server", server, "user", u, "device", d)
				delete(devs, d)
			}
		}
	}
	for _, m := range []map[string]json.RawMessage{out.MasterKeys, out.SelfSigningKeys} {
		for u := range m {
			if events.ServerOf(u) != server {
				delete(m, u)
			}
		}
	}
	out.UserSigningKeys = nil
	return &out, nil
}

// ClaimKeys implements keys.Remote: /user/keys/claim at server.
func (s *Service) ClaimKeys(ctx context.Context, server string, want map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	if !s.enabled {
		return nil, ErrDisabled
	}
	var out struct {
		OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	}
	if err := s.Client.Post(ctx, server, "/_matrix/federation/v1/user/keys/claim", map[string]any{"one_time_keys": want}, &out); err != nil {
		return nil, err
	}
	for u := range out.OneTimeKeys {
		if events.ServerOf(u) != server {
			delete(out.OneTimeKeys, u)
		}
	}
	return out.OneTimeKeys, nil
}

// remoteToMatrix maps an outbound failure to what a local client is told.
func remoteToMatrix(err error) error {
	var re *RemoteError
	switch {
	case errors.As(err, &re) && re.Status == http.StatusNotFound:
		return mxerr.NotFoundf("Not found on the remote server")
	case errors.Is(err, ErrDenied), errors.Is(err, ErrDisabled):
		return mxerr.Forbid("Federation with this server is not allowed")
	default:
		return mxerr.New(mxerr.Unknown, "The remote server could not be reached").WithStatus(http.StatusBadGateway)
	}
}
