package signaling

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// maxJoinRequest caps a join request after decompression: an offer with
// many media sections is most of it.
const maxJoinRequest = 1 << 20

// joinParams are a client's settings for its join or resume: from the
// query of /rtc, or from the join_request of /rtc/v1.
type joinParams struct {
	autoSubscribe bool
	clientInfo    *livekit.ClientInfo
	reconnect     bool
	sid           string
	// /rtc/v1 only: tracks announced and the connection's first offer,
	// sent with the join so that publishing needs no extra round trip.
	addTracks []*livekit.AddTrackRequest
	offer     *livekit.SessionDescription
}

// readJoinParams reads the join settings of a /rtc request (v1 false) or
// of a /rtc/v1 request, whose join_request parameter is a base64url
// (padded or not) livekit.WrappedJoinRequest holding a livekit.JoinRequest,
// plain or gzip-compressed. A v1 request without one, or with one that
// does not decode, is refused with 400, as LiveKit's server does.
func readJoinParams(req *http.Request, v1 bool) (*joinParams, error) {
	q := req.URL.Query()
	if !v1 {
		return &joinParams{
			autoSubscribe: q.Get("auto_subscribe") != "0",
			clientInfo:    clientInfo(q.Get),
			reconnect:     q.Get("reconnect") == "1",
			sid:           q.Get("sid"),
		}, nil
	}
	raw := q.Get("join_request")
	if raw == "" {
		return nil, refuse(http.StatusBadRequest, "join_request is required")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot base64 decode wrapped join request")
	}
	wrapped := &livekit.WrappedJoinRequest{}
	if err := proto.Unmarshal(b, wrapped); err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot unmarshal wrapped join request")
	}
	inner := wrapped.JoinRequest
	switch wrapped.Compression {
	case livekit.WrappedJoinRequest_NONE:
	case livekit.WrappedJoinRequest_GZIP:
		if inner, err = gunzip(inner); err != nil {
			return nil, err
		}
	default:
		return nil, refuse(http.StatusBadRequest, "unknown join request compression %d", wrapped.Compression)
	}
	if len(inner) > maxJoinRequest {
		return nil, refuse(http.StatusBadRequest, "join request too large")
	}
	jr := &livekit.JoinRequest{}
	if err := proto.Unmarshal(inner, jr); err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot unmarshal join request")
	}
	ci := jr.ClientInfo
	if ci == nil {
		ci = &livekit.ClientInfo{}
	}
	jp := &joinParams{
		autoSubscribe: jr.GetConnectionSettings().GetAutoSubscribe(),
		clientInfo:    ci,
		reconnect:     jr.Reconnect,
		sid:           jr.ParticipantSid,
		addTracks:     jr.AddTrackRequests,
		offer:         jr.PublisherOffer,
	}
	if jp.offer != nil && jp.offer.Type != "offer" {
		return nil, refuse(http.StatusBadRequest, "the join request's publisher offer is of type %q", jp.offer.Type)
	}
	return jp, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot read compressed join request")
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxJoinRequest+1))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "cannot read compressed join request")
	}
	if len(out) > maxJoinRequest {
		return nil, refuse(http.StatusBadRequest, "join request too large")
	}
	return out, nil
}
