package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/internal/mxerr"
)

// The public room directory and space hierarchies for other servers
// (Server-Server API, "Public Room Directory" and "Spaces").

// PublicRoomsQuery is a /publicRooms request: limit, since, the filter's
// generic_search_term and room_types (nil: every type; "" stands for
// rooms without one).
type PublicRoomsQuery struct {
	Limit     int
	Since     string
	Term      string
	RoomTypes []string
}

// RoomDirectory answers other servers' directory questions; homeserver
// implements it over rooms.
type RoomDirectory interface {
	// PublicRooms is a page of this server's public room directory, as
	// the Client-Server API answers it.
	PublicRooms(ctx context.Context, q PublicRoomsQuery) (map[string]any, error)
	// Hierarchy is the /hierarchy answer for origin: room, children,
	// inaccessible_children (M_NOT_FOUND when origin may not see room).
	Hierarchy(ctx context.Context, origin, roomID string, suggestedOnly bool) (map[string]any, error)
}

func (s *Service) directoryRoutes(rt *route.Router) {
	rt.Handle("/_matrix/federation/v1/publicRooms", route.Methods{
		http.MethodGet: s.authed(s.servePublicRooms), http.MethodPost: s.authed(s.servePublicRoomsPost)})
	rt.Handle("/_matrix/federation/v1/hierarchy/{roomId}", route.Methods{http.MethodGet: s.authed(s.serveHierarchy)})
}

var errNoDirectory = mxerr.NotFoundf("This server has no public room directory")

// GET /_matrix/federation/v1/publicRooms?limit=&since=
func (s *Service) servePublicRooms(w http.ResponseWriter, r *http.Request, _ string, _ []byte) error {
	q := r.URL.Query()
	var pq PublicRoomsQuery
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return mxerr.InvalidParamf("limit must be a non-negative integer")
		}
		pq.Limit = n
	}
	pq.Since = q.Get("since")
	return s.publicRooms(w, r, pq)
}

// POST /_matrix/federation/v1/publicRooms
func (s *Service) servePublicRoomsPost(w http.ResponseWriter, r *http.Request, _ string, body []byte) error {
	var req struct {
		Limit  int    `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			Term      string          `json:"generic_search_term"`
			RoomTypes json.RawMessage `json:"room_types"`
		} `json:"filter"`
	}
	if body != nil && json.Unmarshal(body, &req) != nil {
		return mxerr.BadJSONf("Malformed public rooms request")
	}
	if req.Limit < 0 {
		return mxerr.InvalidParamf("limit must be non-negative")
	}
	pq := PublicRoomsQuery{Limit: req.Limit, Since: req.Since, Term: req.Filter.Term}
	if len(req.Filter.RoomTypes) > 0 && string(req.Filter.RoomTypes) != "null" {
		var list []*string
		if json.Unmarshal(req.Filter.RoomTypes, &list) != nil {
			return mxerr.BadJSONf("filter.room_types must be a list of strings and nulls")
		}
		pq.RoomTypes = []string{}
		for _, t := range list {
			if t == nil {
				pq.RoomTypes = append(pq.RoomTypes, "")
			} else {
				pq.RoomTypes = append(pq.RoomTypes, *t)
			}
		}
	}
	return s.publicRooms(w, r, pq)
}

func (s *Service) publicRooms(w http.ResponseWriter, r *http.Request, q PublicRoomsQuery) error {
	if s.p.Directory == nil {
		return errNoDirectory
	}
	out, err := s.p.Directory.PublicRooms(r.Context(), q)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, out)
	return nil
}

// GET /_matrix/federation/v1/hierarchy/{roomId}?suggested_only=
func (s *Service) serveHierarchy(w http.ResponseWriter, r *http.Request, origin string, _ []byte) error {
	if s.p.Directory == nil {
		return errNoDirectory
	}
	roomID, err := s.roomArg(r, origin)
	if err != nil {
		return err
	}
	suggested := false
	if v := r.URL.Query().Get("suggested_only"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return mxerr.InvalidParamf("suggested_only must be true or false")
		}
		suggested = b
	}
	out, err := s.p.Directory.Hierarchy(r.Context(), origin, roomID, suggested)
	if err != nil {
		return err
	}
	mxerr.WriteJSON(w, http.StatusOK, out)
	return nil
}

// PublicRooms asks server for a page of its public room directory: GET
// without a filter, POST with one. The answer is passed on as it came
// (it must be a JSON object).
func (s *Service) PublicRooms(ctx context.Context, server string, q PublicRoomsQuery) (json.RawMessage, error) {
	if !s.enabled {
		return nil, mxerr.Forbid("Federation is not enabled")
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out map[string]json.RawMessage
	var err error
	const path = "/_matrix/federation/v1/publicRooms"
	if q.Term == "" && q.RoomTypes == nil {
		v := url.Values{}
		if q.Limit > 0 {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
		if q.Since != "" {
			v.Set("since", q.Since)
		}
		err = s.Client.Get(ctx, server, path, v, &out)
	} else {
		body := map[string]any{}
		if q.Limit > 0 {
			body["limit"] = q.Limit
		}
		if q.Since != "" {
			body["since"] = q.Since
		}
		filter := map[string]any{}
		if q.Term != "" {
			filter["generic_search_term"] = q.Term
		}
		if q.RoomTypes != nil {
			types := make([]any, len(q.RoomTypes))
			for i, t := range q.RoomTypes {
				if t != "" {
					types[i] = t
				}
			}
			filter["room_types"] = types
		}
		body["filter"] = filter
		err = s.Client.Post(ctx, server, path, body, &out)
	}
	if err != nil {
		return nil, remoteAnswer(err)
	}
	if _, ok := out["chunk"]; !ok {
		return nil, mxerr.New(mxerr.Unknown, "The remote server answered no chunk").WithStatus(http.StatusBadGateway)
	}
	return json.Marshal(out)
}

// Hierarchy asks server for the /hierarchy of a room.
func (s *Service) Hierarchy(ctx context.Context, server, roomID string, suggestedOnly bool) (json.RawMessage, error) {
	if !s.enabled {
		return nil, mxerr.Forbid("Federation is not enabled")
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out map[string]json.RawMessage
	path := "/_matrix/federation/v1/hierarchy/" + url.PathEscape(roomID)
	if err := s.Client.Get(ctx, server, path, url.Values{"suggested_only": {strconv.FormatBool(suggestedOnly)}}, &out); err != nil {
		return nil, remoteAnswer(err)
	}
	if _, ok := out["room"]; !ok {
		return nil, mxerr.New(mxerr.Unknown, "The remote server answered no room").WithStatus(http.StatusBadGateway)
	}
	return json.Marshal(out)
}

// remoteAnswer is remoteToMatrix, but a remote refusal (403) stays a
// refusal for the client.
func remoteAnswer(err error) error {
	var re *RemoteError
	if errors.As(err, &re) && re.Status == http.StatusForbidden {
		return mxerr.Forbid("The remote server refused: %s", re.Message)
	}
	return remoteToMatrix(err)
}
