package federation

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/salonhq/salon/homeserver/events"
	"github.com/salonhq/salon/homeserver/route"
	"github.com/salonhq/salon/internal/mxerr"
)

// maxRequestBody bounds an inbound request (a transaction of 50 PDUs of
// 64 KiB and 100 EDUs fits).
const maxRequestBody = 8 << 20

type originKey struct{}

// Origin is the authenticated server of an inbound request.
func Origin(ctx context.Context) string {
	o, _ := ctx.Value(originKey{}).(string)
	return o
}

// authedFunc handles a request whose X-Matrix signature verified; body is
// the request's JSON body (nil when empty).
type authedFunc func(w http.ResponseWriter, r *http.Request, origin string, body []byte) error

// authed checks a request's X-Matrix authorization (Server-Server API,
// "Request Authentication"): a missing or malformed header, another
// destination, an unknown key or a bad signature is 401 M_UNAUTHORIZED; a
// server the allow and deny lists refuse is 403 M_FORBIDDEN.
func (s *Service) authed(h authedFunc) route.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			s.m.refused.WithLabelValues("too_large").Inc()
			return mxerr.New(mxerr.TooLarge, "Request body too large")
		}
		if len(body) > 0 && !json.Valid(body) {
			s.m.refused.WithLabelValues("not_json").Inc()
			return mxerr.New(mxerr.NotJSON, "Content not JSON")
		}
		origin, err := s.authenticate(r, body)
		if err != nil {
			return err
		}
		if len(body) == 0 {
			body = nil
		}
		route.SetUser(r, origin)
		ctx := context.WithValue(r.Context(), originKey{}, origin)
		return h(w, r.WithContext(ctx), origin, body)
	}
}

func (s *Service) authenticate(r *http.Request, body []byte) (string, error) {
	var x XMatrix
	found := false
	for _, h := range r.Header.Values("Authorization") {
		if p, err := ParseXMatrix(h); err == nil {
			x, found = p, true
			break
		}
	}
	if !found {
		s.m.refused.WithLabelValues("no_auth").Inc()
		return "", unauthorized("Missing or malformed X-Matrix authorization")
	}
	if x.Destination != "" && x.Destination != s.p.ServerName {
		s.m.refused.WithLabelValues("wrong_destination").Inc()
		s.log.Info("federation request for another destination", "origin", x.Origin, "destination", x.Destination)
		return "", unauthorized("This server is not %s", x.Destination)
	}
	if x.Origin == s.p.ServerName {
		s.m.refused.WithLabelValues("forged_origin").Inc()
		return "", unauthorized("Requests from this server's own name are refused")
	}
	if !s.policy.Allowed(x.Origin) {
		s.m.refused.WithLabelValues("denied").Inc()
		return "", mxerr.Forbid("Federation with %s is not allowed", x.Origin)
	}
	signed, err := x.signedRequestJSON(r.Method, r.URL.RequestURI(), s.p.ServerName, body)
	if err != nil {
		return "", mxerr.BadJSONf("Malformed request")
	}
	pub, err := s.Keyring.VerifyKey(r.Context(), x.Origin, x.KeyID, s.p.Now().UnixMilli())
	if err != nil {
		if !errors.Is(err, ErrUnknownKey) {
			return "", err
		}
		s.m.refused.WithLabelValues("unknown_key").Inc()
		s.log.Info("federation request signed by an unknown key", "origin", x.Origin, "key", x.KeyID, "err", err)
		return "", unauthorized("Unknown key %s of %s", x.KeyID, x.Origin)
	}
	if err := events.VerifyJSON(signed, x.Origin, x.KeyID, pub); err != nil {
		// The header as signed by origin, with this server as the
		// destination, does not verify: forged, or meant for another.
		s.m.refused.WithLabelValues("bad_signature").Inc()
		s.log.Info("federation request with a bad signature", "origin", x.Origin, "key", x.KeyID)
		return "", unauthorized("Invalid signature")
	}
	// The origin is up: what waits for it need not wait out a backoff.
	s.queue.Reachable(x.Origin)
	return x.Origin, nil
}

// serveKeyQuery is the notary: /_matrix/key/v2/query answers other
// servers' keys (this server's own too), each answer as the server signed
// it plus this server's signature.
func (s *Service) serveKeyQuery(w http.ResponseWriter, r *http.Request) error {
	want := map[string]int64{} // server → minimum_valid_until_ts
	if name := r.PathValue("serverName"); name != "" {
		want[name] = 0
	} else {
		var req struct {
			ServerKeys map[string]map[string]struct {
				MinimumValidUntilTS int64 `json:"minimum_valid_until_ts"`
			} `json:"server_keys"`
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			return mxerr.New(mxerr.TooLarge, "Request body too large")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return mxerr.BadJSONf("Malformed key query")
		}
		if len(req.ServerKeys) > 100 {
			return mxerr.New(mxerr.TooLarge, "At most 100 servers per key query")
		}
		for server, ks := range req.ServerKeys {
			for _, k := range ks {
				want[server] = max(want[server], k.MinimumValidUntilTS)
			}
			if _, ok := want[server]; !ok {
				want[server] = 0
			}
		}
	}
	out := []json.RawMessage{}
	for server, minValid := range want {
		if !events.ValidServerName(server) || !s.policy.Allowed(server) {
			continue
		}
		raw, err := s.Keyring.answerFor(r.Context(), server, minValid)
		if err != nil {
			s.log.Info("notary: no keys for server", "server", server, "err", err)
			continue
		}
		signed, err := events.SignJSON(raw, s.p.ServerName, s.p.Key)
		if err != nil {
			return err
		}
		out = append(out, signed)
	}
	mxerr.WriteJSON(w, http.StatusOK, map[string]any{"server_keys": out})
	return nil
}
